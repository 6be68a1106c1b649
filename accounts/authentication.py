"""``Authorization: Bearer <token>`` for every API endpoint."""

from django.http import HttpRequest
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken, TokenScope, User
from accounts.services import api_token_authenticate

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_secret(header: str) -> str | None:
    """The token in an ``Authorization`` header value, or ``None`` if it is another scheme."""
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        secret = bearer_secret(header)
        if secret is None:
            return None
        if not secret or " " in secret:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; send 'Authorization: Bearer <token>'."
            )
        token = token_checked(
            secret, request, "The API token is unknown, revoked or expired; create a new one."
        )
        return token.user, token

    def authenticate_header(self, request: HttpRequest) -> str:
        return 'Bearer realm="ferry"'


def token_checked(secret: str, request: Request, unknown: str) -> ApiToken:
    """The token ``secret`` names, if it may make ``request``; raises with ``unknown`` as the
    message if there is no such token."""
    token = api_token_authenticate(secret)
    if token is None:
        raise exceptions.AuthenticationFailed(unknown)
    _check_scope(token, request)
    _check_job_token(token, request)
    return token


def current_user(request: Request) -> User:
    """The logged-in user of a view that requires authentication."""
    user = request.user
    if not isinstance(user, User):  # only reachable if a view forgot its permission class
        raise exceptions.NotAuthenticated()
    return user


def _check_scope(token: ApiToken, request: Request) -> None:
    if token.scope == TokenScope.READ and request.method not in SAFE_METHODS:
        raise exceptions.PermissionDenied(
            "This API token is read-only; use a token with the 'write' scope to change things."
        )


def _check_job_token(token: ApiToken, request: Request) -> None:
    """A job's own token works only where a view says it takes one (``accepts_job_tokens``):
    the endpoints that record tracking data, which check it names that job."""
    view = request.parser_context.get("view") if request.parser_context else None
    if token.job_id is not None and not getattr(view, "accepts_job_tokens", False):
        raise exceptions.PermissionDenied(
            f"This token is job {token.job_id}'s own: it only records that job's metrics, "
            "params and tags. Use one of your own tokens for anything else."
        )
