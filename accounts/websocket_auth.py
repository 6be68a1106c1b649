"""Websocket authentication: an API token in the ``Authorization`` header, else the session.

Browsers cannot set headers on a websocket, so the UI relies on its session cookie; the CLI
sends its token in the header. A token in the URL's query string is deliberately not accepted:
URLs end up in access logs. Only cookie-authenticated connections have their Origin checked: a
cookie is sent by the browser to any site's page that opens the socket (cross-site websocket
hijacking), while a token must be known to be sent. Non-browser clients send no Origin at all.
"""

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from accounts.authentication import bearer_secret
from accounts.models import User
from accounts.services import api_token_authenticate

Scope = dict[str, Any]


def _token_from_scope(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return bearer_secret(value.decode("latin-1"))
    return None


@database_sync_to_async
def _user_for_token(secret: str) -> User | AnonymousUser:
    # Websocket messages only read, so a token of either scope will do.
    token = api_token_authenticate(secret)
    return token.user if token is not None else AnonymousUser()


class TokenOrSessionAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_stack = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        secret = _token_from_scope(scope)
        if secret is None:
            return await self.session_stack(scope, receive, send)
        scope = dict(scope, user=await _user_for_token(secret))
        return await self.inner(scope, receive, send)
