"""The tus 1.0 endpoint floyd-cli sends a dataset's tarball to (``floyd data upload``), under
/compat/floyd/upload/: core protocol plus the creation extension.

floyd-cli hard-codes where it is (https://upload-v2.floydhub.com/... for ``floyd``,
http://127.0.0.1:1080 for ``floyd-local``); ``ferry floyd-proxy`` puts it there. It
authenticates with HTTP Basic: the ``data_upload_id`` and ``token`` of
``upload_v2_credentials``, which name one upload and open only that one.
"""

import base64
import binascii
from typing import Any

from django.http import HttpRequest
from rest_framework import authentication
from rest_framework import exceptions as drf
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import set_rollback

from accounts.models import User
from compat.floyd.api import FloydView, error
from compat.floyd.data_uploads import (
    max_upload_bytes,
    tus_append,
    tus_create,
    upload_authenticate,
)
from compat.floyd.ids import module_id, parse_module_id
from compat.floyd.models import DataUpload, UploadState
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

TUS_VERSION = "1.0.0"
PATCH_TYPE = "application/offset+octet-stream"
FRESH_CREDENTIALS = "run 'floyd data upload -r' to get fresh ones."


class UploadCredentialsAuthentication(authentication.BaseAuthentication):
    """HTTP Basic with an upload's id and secret; the upload becomes ``request.auth``."""

    def authenticate(self, request: Request) -> tuple[User, DataUpload] | None:
        scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        name, secret = _basic_pair(value.strip())
        try:
            _, number = parse_module_id(name, "upload")
        except NotFound as exc:
            raise drf.AuthenticationFailed(f"{name!r} is no upload; {FRESH_CREDENTIALS}") from exc
        upload = upload_authenticate(number, secret)
        if upload is None:
            raise drf.AuthenticationFailed(
                f"These upload credentials are unknown or expired; {FRESH_CREDENTIALS}"
            )
        return upload.user, upload

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="ferry-upload"'


def _basic_pair(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise drf.AuthenticationFailed("Malformed Basic credentials.") from exc
    name, sep, secret = decoded.partition(":")
    if not sep:
        raise drf.AuthenticationFailed("Malformed Basic credentials: send id:token.")
    return name, secret


class TusView(FloydView):
    authentication_classes = [UploadCredentialsAuthentication]

    def get_permissions(self) -> list[BasePermission]:
        # tus clients discover the server with OPTIONS, before they have credentials.
        return [AllowAny()] if self.request.method == "OPTIONS" else [IsAuthenticated()]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        if response.status_code == 412:  # tus: say which versions would do
            response["Tus-Version"] = TUS_VERSION
        return super().finalize_response(request, response, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        given = request.META.get("HTTP_TUS_RESUMABLE")
        if request.method != "OPTIONS" and given != TUS_VERSION:
            raise _PreconditionFailed(
                f"This server speaks tus {TUS_VERSION}; send 'Tus-Resumable: {TUS_VERSION}'."
            )

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Conflict):
            # tus's own answer to an offset that moved (the FloydHub API sends a conflict as a
            # 400, for floyd-cli to print): the client asks for the offset again.
            set_rollback()
            return error(409, exc.message)
        return super().handle_exception(exc)

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        return Response(
            status=204,
            headers={
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": "creation",
                "Tus-Max-Size": str(max_upload_bytes()),
            },
        )

    def upload(self, request: Request) -> DataUpload:
        upload = request.auth
        assert isinstance(upload, DataUpload), "set by UploadCredentialsAuthentication"
        return upload


class _PreconditionFailed(drf.APIException):
    status_code = 412
    default_detail = "Unsupported tus version."


class TusCreateView(TusView):
    """``POST`` with ``Upload-Length``: the upload the credentials name gets its length."""

    def post(self, request: Request) -> Response:
        upload = self.upload(request)
        if request.META.get("HTTP_UPLOAD_DEFER_LENGTH"):
            raise ValidationFailed("Send Upload-Length: this server needs the length up front.")
        length = _whole_number(request.META.get("HTTP_UPLOAD_LENGTH"), "Upload-Length")
        upload = tus_create(upload, length)
        location = request.build_absolute_uri(module_id("upload", upload.id))
        return Response(status=201, headers={"Location": location})


class TusUploadView(TusView):
    """``HEAD`` (how far it got) and ``PATCH`` (the next bytes) of one upload."""

    def head(self, request: Request, upload_id: str) -> Response:
        upload = self._own(request, upload_id)
        if upload.state == UploadState.FAILED:
            return error(410, f"{upload_id} failed: {upload.error}")
        headers = {"Upload-Offset": str(upload.received)}
        if upload.length is not None:
            headers["Upload-Length"] = str(upload.length)
        return Response(status=200, headers=headers)

    def patch(self, request: Request, upload_id: str) -> Response:
        upload = self._own(request, upload_id)
        if (request.content_type or "").split(";")[0].strip() != PATCH_TYPE:
            return error(415, f"Send the bytes as Content-Type: {PATCH_TYPE}.")
        offset = _whole_number(request.META.get("HTTP_UPLOAD_OFFSET"), "Upload-Offset")
        if not request.META.get("CONTENT_LENGTH"):
            return error(411, "Send a Content-Length with each PATCH.")
        size = _whole_number(request.META.get("CONTENT_LENGTH"), "Content-Length")
        received = tus_append(upload, offset, request.stream or _Empty(), size)
        return Response(status=204, headers={"Upload-Offset": str(received)})

    def _own(self, request: Request, upload_id: str) -> DataUpload:
        upload = self.upload(request)
        if upload_id != module_id("upload", upload.id):
            raise PermissionDenied(
                f"These credentials are for upload-{upload.id}, not {upload_id}."
            )
        return upload


class _Empty:
    def read(self, size: int = -1, /) -> bytes:
        return b""


def _whole_number(value: str | None, header: str) -> int:
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        raise ValidationFailed(f"Send {header} as a whole number of bytes, not {value!r}.")
    return int(value.strip())
