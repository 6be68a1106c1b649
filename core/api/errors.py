"""One error body for every failed API request.

Every 4xx answer is ``{"error": {"code": ..., "message": ..., "fields": {...}}}``: ``code`` is
stable for programs, ``message`` says what to change, and ``fields`` maps each offending input
field (dotted for nested values) to its messages.
"""

import logging
from collections.abc import Mapping
from typing import Any, TypedDict

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.errors import DomainError

logger = logging.getLogger(__name__)


class ErrorDetail(TypedDict):
    code: str
    message: str
    fields: dict[str, list[str]]


class ErrorBody(TypedDict):
    error: ErrorDetail


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> ErrorBody:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: map every known failure to the error body; others stay 500s."""
    translated = known_error(exc)
    if translated is None:
        return None
    status, body, headers = translated
    set_rollback()
    return Response(body, status=status, headers=headers)


def known_failure(exc: Exception) -> tuple[int, str] | None:
    """For the compatibility APIs, which answer in their clients' shapes: the status and message
    of a known failure, the request's transaction marked to roll back; None for any other."""
    known = known_error(exc)
    if known is None:
        return None
    status, body, _ = known
    set_rollback()
    return status, body["error"]["message"]


def known_error(exc: Exception) -> tuple[int, ErrorBody, dict[str, str]] | None:
    """The status, body and headers of an answer to a known failure; None for any other."""
    if isinstance(exc, DomainError):
        return exc.status_code, error_body(exc.code, exc.message, exc.fields), {}
    if isinstance(exc, drf.ValidationError):
        fields = flatten_validation_detail(exc.detail)
        return 400, error_body("invalid", _validation_message(fields), fields), {}
    if isinstance(exc, drf.APIException):
        return exc.status_code, _api_exception_body(exc), _api_exception_headers(exc)
    if isinstance(exc, Http404):
        return 404, error_body("not_found", "Not found."), {}
    if isinstance(exc, DjangoPermissionDenied):
        return 403, error_body("permission_denied", "You may not do this."), {}
    if isinstance(exc, RequestDataTooBig):
        return 413, error_body("request_too_large", _too_large_message()), {}
    if isinstance(exc, SuspiciousOperation):
        return 400, error_body("bad_request", str(exc) or "The request was malformed."), {}
    return None


def _api_exception_body(exc: drf.APIException) -> ErrorBody:
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    detail = exc.detail
    message = str(detail) if isinstance(detail, str) else str(exc.default_detail)
    return error_body(str(code), message)


def _api_exception_headers(exc: drf.APIException) -> dict[str, str]:
    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(int(wait))
    return headers


def _too_large_message() -> str:
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than {limit} bytes; send less data per request."


def flatten_validation_detail(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into ``{"a.b.0": ["message", ...]}``."""
    if isinstance(detail, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            for field, messages in flatten_validation_detail(value, path).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list) and any(isinstance(item, Mapping | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            path = f"{prefix}.{index}" if prefix else str(index)
            for field, messages in flatten_validation_detail(item, path).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def _validation_message(fields: Mapping[str, list[str]]) -> str:
    general = fields.get("non_field_errors")
    named = [name for name in fields if name != "non_field_errors"]
    if general and not named:
        return " ".join(general)
    if len(named) == 1:
        return f"{named[0]}: {' '.join(fields[named[0]])}"
    return f"Some fields are invalid: {', '.join(named)}. See 'fields' for what to change."


# Exempt from CSRF: it changes nothing, and the check would answer a cookie-less POST with
# Django's HTML 403 page before this view could say that the path does not exist.
@csrf_exempt
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Unknown paths under /api/ answer in the API's own error format."""
    body = error_body("not_found", f"No API endpoint at {request.path}; see /api/docs/.")
    return JsonResponse(body, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: an unexpected failure still answers in the API's format (and is a bug)."""
    body = error_body("server_error", "The server failed to handle this request; it was logged.")
    return JsonResponse(body, status=500)


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    """handler400: requests Django rejects before routing (bad Host header and the like)."""
    return JsonResponse(error_body("bad_request", "The request was malformed."), status=400)
