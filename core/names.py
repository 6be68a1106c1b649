"""Names that appear in addresses such as ``alice/mnist`` and ``acme/datasets/imagenet/3``.

One rule for user, team and project names keeps every address URL-safe and unambiguous.
"""

import re

from django.core.exceptions import ValidationError

NAME_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
NAME_RE = re.compile(rf"^{NAME_PATTERN}\Z")  # \Z: "$" would accept a trailing newline
NAMESPACE_MAX_LENGTH = 39
PROJECT_NAME_MAX_LENGTH = 64

# Names that would shadow a top-level route or read as a keyword in an address.
RESERVED_NAMESPACES = frozenset(
    {
        "admin", "api", "compat", "datasets", "healthz", "jobs", "login", "logout", "me",
        "new", "projects", "settings", "signup", "static", "teams", "user", "users", "ws",
    }
)  # fmt: skip

NAME_RULE = "letters, digits, '.', '_' and '-', starting and ending with a letter or digit"


def validate_name(value: str, max_length: int) -> None:
    if len(value) > max_length:
        raise ValidationError(f"Use at most {max_length} characters.")
    if not NAME_RE.match(value):
        raise ValidationError(f"Use only {NAME_RULE}.")


def validate_namespace(value: str) -> None:
    validate_name(value, NAMESPACE_MAX_LENGTH)
    if value.lower() in RESERVED_NAMESPACES:
        raise ValidationError(f"'{value}' is reserved; choose another name.")


def validate_project_name(value: str) -> None:
    validate_name(value, PROJECT_NAME_MAX_LENGTH)
