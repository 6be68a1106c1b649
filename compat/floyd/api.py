"""What every view of the FloydHub API shares: floyd-cli's credentials and its error bodies.

floyd-cli sends ``Authorization: apikey <key>`` (after ``floyd login -k <key>``); a Ferry API
token is that key. Errors come as ``{"message": ...}``, which the CLI prints for a 400, 403 or
429; a 401 makes it ask the user to log in again, a 404 reads as "not found".
"""

from typing import Any

from rest_framework import authentication
from rest_framework import exceptions as drf
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication, current_user, token_checked
from accounts.models import ApiToken, User
from core.api.errors import known_failure
from core.errors import ValidationFailed

# The release this API was modelled on; floyd-cli refuses to run against a server whose
# minimum is above its own version, and nags when the latest is.
CLI_VERSION = "0.11.17"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: apikey <Ferry API token>``, as floyd-cli sends it."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != "apikey":
            return None
        token = token_checked(
            key.strip(), request,
            "This API key is unknown, revoked or expired: make a Ferry API token and run "
            "'floyd login -k <token>'.",
        )  # fmt: skip
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return "apikey"


class FloydView(APIView):
    """A view of the FloydHub API: floyd-cli's key or a Ferry bearer token; floyd's errors."""

    authentication_classes = [ApiKeyAuthentication, BearerTokenAuthentication]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            return error(401, str(exc.detail))
        failure = known_failure(exc)
        if failure is None:
            raise exc
        status, message = failure
        # floyd-cli prints the message of a 400 but only the status code of a 409 (a conflict:
        # deleting a running job), so a conflict goes out as a 400.
        return error(400 if status == 409 else status, message)

    def user(self, request: Request) -> User:
        return current_user(request)

    def body(self, request: Request) -> dict[str, Any]:
        data = request.data
        if not isinstance(data, dict):
            raise ValidationFailed("The request body must be a JSON object.")
        return data


def error(status: int, message: str) -> Response:
    return Response({"message": message}, status=status)
