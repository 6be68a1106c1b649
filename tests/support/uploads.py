"""The client side of the upload protocol, as the tests drive it."""

import urllib.error
import urllib.request
from typing import Any

from django.test import Client


def put(url: str, headers: dict[str, str], data: bytes) -> int:
    """PUT ``data`` as a client would: to Ferry itself (a path) or straight to the S3 service."""
    if url.startswith("/"):
        response = Client().put(
            url, data=data, content_type="application/octet-stream", headers=headers
        )
        return response.status_code
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def send_plan(plan: dict[str, Any], data: bytes, only: set[int] | None = None) -> None:
    """Send the parts of one blob's upload plan (``only`` those numbers, if given)."""
    for part in plan["parts"]:
        if only is not None and part["number"] not in only:
            continue
        chunk = data[part["offset"] : part["offset"] + part["size"]]
        status = put(part["url"], part["headers"], chunk)
        assert status == 200, (status, plan["digest"], part["number"])
