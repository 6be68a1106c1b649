"""Helpers for API URL patterns."""

from core.names import NAME_PATTERN

# Path segments that name a user, team or project. A segment that breaks the naming rule never
# reaches a view (and so never reaches a query): it falls through to the API's JSON 404.
NAME = NAME_PATTERN


def api(pattern: str) -> str:
    r"""Anchor an API route and accept it with or without a trailing slash.

    ``\Z``, not ``$``: ``$`` also matches before a final newline, which would let
    ``teams/acme%0A`` reach the view for ``acme``.
    """
    return rf"^{pattern}/?\Z"
