"""Assertions about the API's error body and about requests that must not write anything."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.sessions.models import Session
from django.db.models import Model

from accounts.models import ApiToken, Membership, Team, User
from projects.models import Project, ProjectMember

# Every table an API request could write to. A token's last-used time is left out: using a token
# stamps it (at most once a minute), and that is bookkeeping, not a change the request made.
WATCHED_MODELS: tuple[type[Model], ...] = (
    User, Team, Membership, ApiToken, Project, ProjectMember, Session,
)  # fmt: skip
IGNORED_COLUMNS = frozenset({"last_used_at"})


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is a ``status`` answer in the API's error format with ``code``.

    Returns the ``error`` object so that a test can look at its ``fields``.
    """
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["fields"], dict), error
    for name, messages in error["fields"].items():
        assert isinstance(name, str), error
        assert isinstance(messages, list), error
        assert messages, error
        assert all(isinstance(message, str) for message in messages), error
    return dict(error)


def database_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of every watched table, so two snapshots show whether anything changed."""
    state: dict[str, list[dict[str, Any]]] = {}
    for model in WATCHED_MODELS:
        columns = [
            field.attname
            for field in model._meta.concrete_fields
            if field.attname not in IGNORED_COLUMNS
        ]
        state[model._meta.label] = list(model._default_manager.order_by("pk").values(*columns))
    return state


@contextmanager
def nothing_written() -> Iterator[None]:
    """Fail unless the block leaves every watched table exactly as it found it."""
    before = database_state()
    yield
    after = database_state()
    changed = [label for label in before if before[label] != after[label]]
    assert not changed, f"the request changed {', '.join(changed)}"
