"""Typed errors. Every failure the SDK reports is a FerryError; the CLI turns it into one line."""

from typing import Any


class FerryError(Exception):
    """Base of every error the SDK raises on purpose; ``message`` is fit to show a person."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLoggedIn(FerryError):
    """No token, or the server refused it."""


class ApiError(FerryError):
    """The server answered with an error body: ``{"error": {"code", "message", "fields"}}``."""

    def __init__(
        self, message: str, *, status: int, code: str, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields = fields or {}


class NotFound(ApiError):
    """The thing does not exist, or the user may not see it (the server does not say which)."""


class Refused(ApiError):
    """The server understood and said no: invalid input, forbidden, a conflict."""


class TransferError(FerryError):
    """Bytes did not get to or from the storage intact."""


class LocalError(FerryError):
    """Something about the local files stops the command (a symlink out of the tree, say)."""
