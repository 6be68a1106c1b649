"""Domain errors: services raise these, and one API exception handler turns them into JSON.

Each error carries an HTTP status and a stable machine-readable ``code``; the message is written
for a person and says what to change.
"""

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        fields: Mapping[str, Sequence[str]] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = {name: list(msgs) for name, msgs in (fields or {}).items()}
        if code is not None:
            self.code = code


class ValidationFailed(DomainError):
    """The request is well-formed but a value breaks a rule (a taken name, a weak password)."""


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
