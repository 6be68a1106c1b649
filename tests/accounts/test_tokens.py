"""API tokens: shown once, stored as a digest, scoped, revocable, expiring, paginated."""

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from pytest_django.fixtures import DjangoAssertNumQueries
from rest_framework.test import APIClient

from accounts.models import ApiToken, TokenScope, User
from accounts.services import api_token_create, api_token_for_job
from jobs.services import external_run_create
from projects.services import project_create
from tests.factories import UserFactory
from tests.support.api_errors import assert_error, nothing_written

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/user/tokens"
ME = "/api/v1/user"


def create_token(client: APIClient, **body: Any) -> dict[str, Any]:
    response = client.post(TOKENS, {"name": "laptop", **body}, format="json")
    assert response.status_code == 201, response.json()
    return dict(response.json())


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def later() -> datetime:
    """A moment a day ahead, for tests that move the clock; nothing in them happens before it."""
    return timezone.now().replace(microsecond=0) + timedelta(days=1)


# --- the secret ---------------------------------------------------------------------------------


def test_new_token_shows_its_secret_once_and_then_only_a_prefix(alice_client: APIClient) -> None:
    created = create_token(alice_client)

    secret = created["token"]
    assert secret.startswith("fry_")
    assert len(secret) > 40
    assert secret.startswith(created["prefix"])
    listed = alice_client.get(TOKENS)
    assert listed.status_code == 200
    assert secret not in listed.content.decode()
    rows = {row["id"]: row for row in listed.json()["results"]}
    assert rows[created["id"]]["prefix"] == created["prefix"]
    for row in rows.values():
        assert "token" not in row
        assert "digest" not in row


def test_token_is_stored_only_as_its_digest(alice_client: APIClient) -> None:
    created = create_token(alice_client)

    secret = created["token"]
    row = ApiToken.objects.filter(id=created["id"]).values().get()
    assert row["digest"] != secret
    assert row["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.values())


def test_bearer_token_authenticates_api_calls(alice_client: APIClient) -> None:
    client = bearer(create_token(alice_client)["token"])

    me = client.get(ME)
    created = client.post("/api/v1/teams", {"name": "vision"}, format="json")

    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert created.status_code == 201, created.json()


def test_scheme_name_is_case_insensitive(alice: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {api_token_create(user=alice, name='x').secret}")

    assert client.get(ME).status_code == 200


# --- the end of a token -------------------------------------------------------------------------


def test_revoked_token_is_refused(alice_client: APIClient) -> None:
    created = create_token(alice_client)
    client = bearer(created["token"])
    assert client.get(ME).status_code == 200

    revoked = alice_client.delete(f"{TOKENS}/{created['id']}")

    assert revoked.status_code == 204
    response = client.get(ME)
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Bearer realm="ferry"'
    row = next(r for r in alice_client.get(TOKENS).json()["results"] if r["id"] == created["id"])
    assert row["active"] is False
    assert row["revoked_at"] is not None


def test_revoking_twice_is_404(alice_client: APIClient) -> None:
    created = create_token(alice_client)
    alice_client.delete(f"{TOKENS}/{created['id']}")

    with nothing_written():
        again = alice_client.delete(f"{TOKENS}/{created['id']}")

    assert_error(again, 404, "not_found")


def test_another_users_token_cannot_be_revoked(alice_client: APIClient) -> None:
    bobs = api_token_create(user=UserFactory.create(username="bob"), name="bob's laptop")

    with nothing_written():
        response = alice_client.delete(f"{TOKENS}/{bobs.token.id}")

    assert_error(response, 404, "not_found")
    assert bearer(bobs.secret).get(ME).json()["username"] == "bob"
    listed = alice_client.get(TOKENS).json()["results"]
    assert bobs.token.id not in {row["id"] for row in listed}


def test_token_expires_after_its_days(alice_client: APIClient, later: datetime) -> None:
    with time_machine.travel(later, tick=False):
        created = create_token(alice_client, expires_in_days=1)
    client = bearer(created["token"])

    with time_machine.travel(later + timedelta(days=1) - timedelta(seconds=1), tick=False):
        assert client.get(ME).status_code == 200
    with time_machine.travel(later + timedelta(days=1), tick=False):
        assert_error(client.get(ME), 401, "authentication_failed")


def test_token_expires_at_its_time(alice_client: APIClient, later: datetime) -> None:
    created = create_token(alice_client, expires_at=later.isoformat())
    client = bearer(created["token"])

    assert client.get(ME).status_code == 200
    with time_machine.travel(later, tick=False):
        assert_error(client.get(ME), 401, "authentication_failed")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", id="long-past"),
        pytest.param({"expires_at": "not a time"}, "expires_at", id="not-a-time"),
        pytest.param({"expires_at": "2030-02-30T00:00:00Z"}, "expires_at", id="no-such-day"),
        pytest.param({"expires_at": "10000-01-01T00:00:00Z"}, "expires_at", id="year-10000"),
        pytest.param({"expires_at": "0001-01-01T00:00:00+14:00"}, "expires_at", id="before-year-1"),
        pytest.param({"expires_at": 1_900_000_000}, "expires_at", id="unix-seconds"),
        pytest.param({"expires_in_days": 0}, "expires_in_days", id="zero-days"),
        pytest.param({"expires_in_days": -1}, "expires_in_days", id="negative-days"),
        pytest.param({"expires_in_days": 3651}, "expires_in_days", id="over-ten-years"),
        pytest.param({"expires_in_days": 10**30}, "expires_in_days", id="huge-days"),
        pytest.param({"expires_in_days": 1.5}, "expires_in_days", id="fractional-days"),
        pytest.param({"expires_in_days": True}, "expires_in_days", id="bool-days"),
        pytest.param({"expires_in_days": "soon"}, "expires_in_days", id="word-days"),
        pytest.param({"expires_in_days": [1]}, "expires_in_days", id="list-days"),
        pytest.param(
            {"expires_in_days": 1, "expires_at": "2100-01-01T00:00:00Z"},
            "non_field_errors",
            id="both-kinds-of-expiry",
        ),
    ],
)
def test_bad_expiry_is_refused(alice_client: APIClient, body: dict[str, Any], field: str) -> None:
    with nothing_written():
        response = alice_client.post(TOKENS, {"name": "laptop", **body}, format="json")

    error = assert_error(response, 400, "invalid")
    assert field in error["fields"], error


def test_expiry_a_moment_ago_is_refused(alice_client: APIClient) -> None:
    moment_ago = timezone.now() - timedelta(seconds=1)

    with nothing_written():
        response = alice_client.post(
            TOKENS, {"name": "laptop", "expires_at": moment_ago.isoformat()}, format="json"
        )

    error = assert_error(response, 400, "invalid")
    assert "expires_at" in error["fields"]


# --- last use -----------------------------------------------------------------------------------


def test_last_used_at_is_written_on_use_at_most_once_a_minute(alice: User, later: datetime) -> None:
    issued = api_token_create(user=alice, name="cli")
    client = bearer(issued.secret)
    assert issued.token.last_used_at is None

    def last_used_after_a_request_at(moment: datetime) -> datetime | None:
        with time_machine.travel(moment, tick=False):
            assert client.get(ME).status_code == 200
        return ApiToken.objects.get(id=issued.token.id).last_used_at

    assert last_used_after_a_request_at(later) == later
    assert last_used_after_a_request_at(later + timedelta(seconds=30)) == later
    assert last_used_after_a_request_at(later + timedelta(seconds=59)) == later
    minute_on = later + timedelta(seconds=60)
    assert last_used_after_a_request_at(minute_on) == minute_on


def test_refused_token_is_not_stamped_as_used(alice: User) -> None:
    issued = api_token_create(user=alice, name="cli")
    ApiToken.objects.filter(id=issued.token.id).update(revoked_at=timezone.now())

    assert_error(bearer(issued.secret).get(ME), 401, "authentication_failed")

    assert ApiToken.objects.get(id=issued.token.id).last_used_at is None


# --- scope --------------------------------------------------------------------------------------


@pytest.fixture
def reader(alice: User) -> APIClient:
    return bearer(api_token_create(user=alice, name="dashboard", scope=TokenScope.READ).secret)


def test_read_only_token_can_read(reader: APIClient) -> None:
    assert reader.get(ME).status_code == 200
    assert reader.get(TOKENS).status_code == 200
    assert reader.get("/api/v1/teams").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("post", "/api/v1/teams", {"name": "vision"}, id="create-team"),
        pytest.param("post", "/api/v1/projects", {"name": "mnist"}, id="create-project"),
        pytest.param("post", TOKENS, {"name": "escalate"}, id="mint-a-write-token"),
        pytest.param("delete", f"{TOKENS}/1", None, id="revoke-a-token"),
        pytest.param("post", "/api/v1/auth/logout", None, id="log-out"),
    ],
)
def test_read_only_token_cannot_write(
    reader: APIClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    with nothing_written():
        response = getattr(reader, method)(path, body, format="json")

    error = assert_error(response, 403, "permission_denied")
    assert "read-only" in error["message"]


# --- malformed credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code"),
    [
        pytest.param("Bearer", "authentication_failed", id="scheme-only"),
        pytest.param("Bearer   ", "authentication_failed", id="scheme-and-spaces"),
        pytest.param("Bearer a b", "authentication_failed", id="two-words"),
        pytest.param("Bearer fry_abc def", "authentication_failed", id="secret-with-a-space"),
        pytest.param("Bearer fry_unknown", "authentication_failed", id="unknown-secret"),
        pytest.param("Bearer " + "x" * 10_000, "authentication_failed", id="10000-characters"),
        pytest.param("Bearer fry_\u00e9\u00e8", "authentication_failed", id="latin-1-secret"),
        pytest.param("Basic YWxpY2U6cGFzc3dvcmQ=", "not_authenticated", id="basic-scheme"),
        pytest.param("Token abc", "not_authenticated", id="other-scheme"),
        pytest.param("", "not_authenticated", id="empty"),
    ],
)
def test_malformed_authorization_header_is_401(alice: User, header: str, code: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    with nothing_written():
        response = client.get(ME)

    assert_error(response, 401, code)
    assert response["WWW-Authenticate"] == 'Bearer realm="ferry"'


# --- the list -----------------------------------------------------------------------------------


def test_tokens_list_is_paginated_and_shows_only_your_own(
    alice: User, alice_client: APIClient
) -> None:
    for index in range(4):
        api_token_create(user=alice, name=f"machine {index}")
    api_token_create(user=UserFactory.create(username="bob"), name="bob's")

    first = alice_client.get(f"{TOKENS}?page_size=3")
    second = alice_client.get(first.json()["next"])

    assert set(first.json()) == {"count", "next", "previous", "results"}
    assert first.json()["count"] == 5  # four here and the one alice_client sends
    assert len(first.json()["results"]) == 3
    assert first.json()["previous"] is None
    assert len(second.json()["results"]) == 2
    assert second.json()["next"] is None
    assert second.json()["previous"] is not None
    names = {row["name"] for row in first.json()["results"] + second.json()["results"]}
    assert names == {"machine 0", "machine 1", "machine 2", "machine 3", "test"}


def test_tokens_list_leaves_out_the_tokens_of_jobs(alice: User, alice_client: APIClient) -> None:
    job = external_run_create(
        actor=alice, project=project_create(actor=alice, name="mnist"), name="run"
    )
    api_token_for_job(job)

    response = alice_client.get(TOKENS)

    assert [row["name"] for row in response.json()["results"]] == ["test"]
    assert ApiToken.objects.filter(user=alice, job=job).count() == 1


def test_tokens_list_costs_the_same_queries_however_many_tokens(
    alice: User, alice_client: APIClient, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    alice_client.get(TOKENS)  # stamps the client's token as used, a write later calls skip
    for index in range(20):
        api_token_create(user=alice, name=f"machine {index}")

    # The token and its user, the count, the page.
    with django_assert_num_queries(3):
        response = alice_client.get(TOKENS)

    assert response.json()["count"] == 21
