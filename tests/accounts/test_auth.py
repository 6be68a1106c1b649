"""Signing up, logging in and out with a session cookie, CSRF, and what anonymous callers hear."""

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_create
from tests.factories import PASSWORD, TeamFactory
from tests.support.api_errors import assert_error, nothing_written

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/user"
TEAMS = "/api/v1/teams"
STRONG = "a long, odd passphrase"


def signup_body(**overrides: str) -> dict[str, str]:
    return {"username": "dave", "email": "dave@example.com", "password": STRONG, **overrides}


def log_in(client: APIClient, username: str = "alice", password: str = PASSWORD) -> Any:
    return client.post(LOGIN, {"username": username, "password": password}, format="json")


# --- sign-up ------------------------------------------------------------------------------------


def test_signup_creates_the_user_and_logs_them_in(api_client: APIClient) -> None:
    response = api_client.post(SIGNUP, signup_body(), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["username"] == "dave"
    assert "password" not in response.json()
    user = User.objects.get(username="dave")
    assert user.check_password(STRONG)
    assert not user.is_staff
    assert not user.is_superuser
    me = api_client.get(ME)
    assert me.status_code == 200
    assert me.json()["username"] == "dave"


def test_signup_is_refused_when_turned_off(api_client: APIClient, settings: Settings) -> None:
    settings.FERRY_SIGNUP_ENABLED = False

    with nothing_written():
        response = api_client.post(SIGNUP, signup_body(), format="json")

    assert_error(response, 403, "signup_disabled")
    assert_error(api_client.get(ME), 401, "not_authenticated")


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Xy7!", id="too-short"),
        pytest.param("password1", id="common"),
        pytest.param("4815162342108", id="all-digits"),
        pytest.param("dave@example", id="like-the-email"),
    ],
)
def test_weak_password_is_refused(api_client: APIClient, password: str) -> None:
    with nothing_written():
        response = api_client.post(SIGNUP, signup_body(password=password), format="json")

    error = assert_error(response, 400, "invalid")
    assert list(error["fields"]) == ["password"]


@pytest.mark.parametrize("username", ["alice", "ALICE", "Alice", "aLiCe"])
def test_username_taken_ignoring_case_is_refused(
    api_client: APIClient, alice: User, username: str
) -> None:
    with nothing_written():
        response = api_client.post(SIGNUP, signup_body(username=username), format="json")

    error = assert_error(response, 400, "name_taken")
    assert "username" in error["fields"]


def test_username_may_not_take_a_team_name(api_client: APIClient) -> None:
    TeamFactory.create(name="acme")

    with nothing_written():
        response = api_client.post(SIGNUP, signup_body(username="Acme"), format="json")

    error = assert_error(response, 400, "name_taken")
    assert "username" in error["fields"]


@pytest.mark.parametrize("username", ["admin", "api", "Admin", "API", "settings", "ws", "me"])
def test_reserved_usernames_are_refused(api_client: APIClient, username: str) -> None:
    with nothing_written():
        response = api_client.post(SIGNUP, signup_body(username=username), format="json")

    error = assert_error(response, 400, "invalid")
    assert "reserved" in " ".join(error["fields"]["username"])


# --- sessions -----------------------------------------------------------------------------------


def test_login_starts_a_session_that_authenticates_api_calls(
    api_client: APIClient, alice: User
) -> None:
    assert_error(api_client.get(ME), 401, "not_authenticated")

    response = log_in(api_client)

    assert response.status_code == 200, response.json()
    assert response.json()["username"] == "alice"
    assert django_settings.SESSION_COOKIE_NAME in api_client.cookies
    me = api_client.get(ME)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("alice", "wrong horse battery staple", id="wrong-password"),
        pytest.param("alice", PASSWORD.upper(), id="password-in-the-wrong-case"),
        pytest.param("nobody", PASSWORD, id="unknown-user"),
    ],
)
def test_wrong_credentials_are_refused_alike(
    api_client: APIClient, alice: User, username: str, password: str
) -> None:
    with nothing_written():
        response = log_in(api_client, username, password)

    error = assert_error(response, 400, "invalid_credentials")
    assert error["message"] == "Wrong username or password."  # the same whatever was wrong
    assert_error(api_client.get(ME), 401, "not_authenticated")


def test_deactivated_user_cannot_log_in(api_client: APIClient, alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_active=False)

    with nothing_written():
        response = log_in(api_client)

    assert_error(response, 400, "invalid_credentials")


def test_logout_ends_the_session(api_client: APIClient, alice: User) -> None:
    log_in(api_client)
    assert Session.objects.count() == 1

    response = api_client.post(LOGOUT)

    assert response.status_code == 204
    assert Session.objects.count() == 0
    assert_error(api_client.get(ME), 401, "not_authenticated")


# A session cookie is the client's to forge. One Django never issued must read as no session:
# "\000" in a quoted cookie unquotes to NUL, which PostgreSQL refuses to look up (a 500).
# core.sessions, the configured SESSION_ENGINE, refuses such keys.
FORGED_SESSION_COOKIES = {
    "quoted-nul": '"' + "\\000" * 32 + '"',
    "quoted-nul-then-letters": '"abcdefgh\\000"',
}
HARMLESS_SESSION_COOKIES = {
    "upper-case": "A" * 32,
    "path": "../../../../etc/passwd",
    "5000-characters": "a" * 5000,
    "sql": "' OR '1'='1",
}


@pytest.mark.parametrize(
    "cookie", FORGED_SESSION_COOKIES.values(), ids=FORGED_SESSION_COOKIES.keys()
)
def test_forged_session_cookie_is_no_session(
    api_client: APIClient, alice: User, cookie: str
) -> None:
    forged = f"{django_settings.SESSION_COOKIE_NAME}={cookie}"

    with nothing_written():
        me = api_client.get(ME, HTTP_COOKIE=forged)
    body = {"username": "alice", "password": PASSWORD}
    login = api_client.post(LOGIN, body, format="json", HTTP_COOKIE=forged)

    assert_error(me, 401, "not_authenticated")
    assert login.status_code == 200, login.json()


@pytest.mark.parametrize(
    "cookie", HARMLESS_SESSION_COOKIES.values(), ids=HARMLESS_SESSION_COOKIES.keys()
)
def test_unknown_session_cookie_is_no_session(api_client: APIClient, cookie: str) -> None:
    api_client.cookies[django_settings.SESSION_COOKIE_NAME] = cookie

    with nothing_written():
        response = api_client.get(ME)

    assert_error(response, 401, "not_authenticated")


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.fixture
def browser(alice: User) -> APIClient:
    """alice, logged in with a session cookie, on a client that enforces CSRF like a browser."""
    client = APIClient(enforce_csrf_checks=True)
    assert log_in(client).status_code == 200
    return client


def csrf_token(client: APIClient) -> str:
    return str(client.cookies[django_settings.CSRF_COOKIE_NAME].value)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"HTTP_X_CSRFTOKEN": "x" * 32}, id="wrong-token"),
    ],
)
def test_session_write_without_the_csrf_token_is_refused(
    browser: APIClient, header: dict[str, str]
) -> None:
    browser.credentials(**header)

    with nothing_written():
        response = browser.post(TEAMS, {"name": "vision"}, format="json")

    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]


def test_session_write_with_the_csrf_token_is_accepted(browser: APIClient) -> None:
    response = browser.post(
        TEAMS, {"name": "vision"}, format="json", HTTP_X_CSRFTOKEN=csrf_token(browser)
    )

    assert response.status_code == 201, response.json()


def test_session_reads_need_no_csrf_token(browser: APIClient) -> None:
    assert browser.get(ME).status_code == 200


def test_logout_needs_the_csrf_token(browser: APIClient) -> None:
    refused = browser.post(LOGOUT)

    assert_error(refused, 403, "permission_denied")
    assert browser.get(ME).status_code == 200  # still logged in
    done = browser.post(LOGOUT, HTTP_X_CSRFTOKEN=csrf_token(browser))
    assert done.status_code == 204


def test_bearer_token_writes_need_no_csrf_token(alice: User) -> None:
    # CSRF rides on cookies a browser sends by itself; a bearer header is never sent that way.
    client = APIClient(enforce_csrf_checks=True)
    secret = api_token_create(user=alice, name="cli").secret
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = client.post(TEAMS, {"name": "vision"}, format="json")

    assert response.status_code == 201, response.json()


# --- anonymous callers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ME), ("get", "/api/v1/user/tokens"), ("post", TEAMS), ("post", LOGOUT)],
)
def test_anonymous_caller_gets_401_with_a_challenge(
    api_client: APIClient, method: str, path: str
) -> None:
    with nothing_written():
        response = getattr(api_client, method)(path)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="ferry"'


def test_password_guessing_is_throttled(api_client: APIClient, alice: User) -> None:
    guess = {"username": "alice", "password": "not it"}
    answers = [api_client.post(LOGIN, guess, format="json").status_code for _ in range(20)]

    throttled = api_client.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json")

    assert set(answers) == {400}
    error = assert_error(throttled, 429, "throttled")
    assert "second" in error["message"]
    assert int(throttled["Retry-After"]) > 0
    assert "_auth_user_id" not in api_client.session
