"""floyd-cli's code upload, read: every file its own multipart part ``code`` named by its
relative path, and one part ``json`` with the run's settings.

Django's own multipart parser keeps only a file's base name and takes at most
DATA_UPLOAD_MAX_NUMBER_FILES parts, so the parts are read here with its lower-level parser,
each file written under a folder at its checked path as it streams in.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http.multipartparser import (
    FIELD,
    FILE,
    ChunkIter,
    LazyStream,
    MultiPartParserError,
    Parser,
)
from django.utils.http import parse_header_parameters
from rest_framework.request import Request

from blobs.trees import InvalidManifest, check_path
from core.errors import ValidationFailed

MAX_MODULE_JSON = 1024 * 1024
UPLOAD_CHUNK = 64 * 1024


def receive_code(request: Request, folder: Path) -> dict[str, Any]:
    """Write each ``code`` part to its path under ``folder``; the ``json`` part, parsed."""
    _, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    boundary = params.get("boundary", "")
    stream = request.stream
    if not boundary or stream is None:
        raise ValidationFailed("Send the code as multipart/form-data, as floyd-cli does.")
    # Django's own multipart parser keeps only a file's base name and takes at most
    # DATA_UPLOAD_MAX_NUMBER_FILES parts; floyd-cli sends a part for each file, by its path.
    module: dict[str, Any] | None = None
    budget = settings.FERRY_MAX_CODE_BYTES
    try:
        parts = Parser(LazyStream(ChunkIter(stream, UPLOAD_CHUNK)), boundary.encode("ascii"))
        for kind, meta, part in parts:
            disposition = meta.get("content-disposition", ("", {}))[1]
            name = _as_text(disposition.get("name", ""))
            if kind == FILE and name == "code":
                filename = _as_text(disposition.get("filename", ""))
                budget -= _write_code_file(folder, filename, part, budget)
            elif kind == FIELD and name == "json":
                module = _module_json(part.read(MAX_MODULE_JSON + 1))
            else:
                for _ in part:
                    pass  # a part floyd-cli does not send: read past it
    except (MultiPartParserError, UnicodeEncodeError) as exc:
        raise ValidationFailed(f"The code upload is not valid multipart data: {exc}.") from exc
    if module is None:
        raise ValidationFailed("The code upload has no 'json' part with the run's settings.")
    return module


def _as_text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _write_code_file(folder: Path, filename: str, part: Iterator[bytes], budget: int) -> int:
    """Write one uploaded file; how many bytes it had."""
    path = _code_path(filename)
    target = folder / path
    written = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:
            for chunk in part:
                written += len(chunk)
                if written > budget:
                    raise _code_too_large()
                out.write(chunk)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise ValidationFailed(
            f"{path!r} is sent twice, or as both a file and a directory; send each file once."
        ) from exc
    return written


def _code_path(filename: str) -> str:
    # floyd-cli's multipart encoder writes a '"' in a file name as %22 (HTML5's rule).
    path = filename.replace("%22", '"')
    while path.startswith("./"):
        path = path[2:]
    try:
        check_path(path)
    except InvalidManifest as exc:
        raise ValidationFailed(f"Cannot store the file {filename!r}: {exc}") from exc
    return path


def _code_too_large() -> ValidationFailed:
    limit = settings.FERRY_MAX_CODE_BYTES
    return ValidationFailed(
        f"The code is larger than {limit} bytes. Put data in a dataset ('floyd data upload') "
        "and list large files in .floydignore.",
        code="code_too_large",
    )


def _module_json(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_MODULE_JSON:
        raise ValidationFailed(f"The run's settings are over {MAX_MODULE_JSON} bytes.")
    try:
        module = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"The 'json' part is not JSON: {exc}.") from exc
    if not isinstance(module, dict):
        raise ValidationFailed("The 'json' part must be a JSON object.")
    return module
