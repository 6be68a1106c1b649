"""`manage.py ferry_bootstrap`, which `make up` runs before starting the servers."""

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from accounts.models import ApiToken, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var_dir(settings: SettingsWrapper, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path


def bootstrap() -> str:
    out = StringIO()
    call_command("ferry_bootstrap", "--url", "http://127.0.0.1:8123", stdout=out)
    return out.getvalue()


def printed_token(output: str) -> str:
    match = re.search(r"API token:\s+(fry_\S+)", output)
    assert match, output
    return match.group(1)


def test_first_run_creates_an_admin_and_a_working_token() -> None:
    output = bootstrap()

    admin = User.objects.get(is_superuser=True)
    token = printed_token(output)
    response = APIClient().get("/api/v1/user", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["username"] == admin.username
    password = re.search(r"password (\S+)", output)
    assert password
    assert admin.check_password(password.group(1))
    assert "http://127.0.0.1:8123/" in output


def test_second_run_prints_the_same_credentials_without_new_users_or_tokens() -> None:
    first = bootstrap()
    second = bootstrap()

    assert printed_token(first) == printed_token(second)
    assert User.objects.count() == 1
    assert ApiToken.objects.count() == 1


def test_a_revoked_token_is_replaced_on_the_next_run(tmp_path: Path) -> None:
    old = printed_token(bootstrap())
    ApiToken.objects.update(revoked_at="2000-01-01T00:00Z")

    new = printed_token(bootstrap())

    assert new != old
    assert ApiToken.objects.active().filter(digest=ApiToken.digest_of(new)).exists()
    assert json.loads((tmp_path / "admin-credentials.json").read_text())["token"] == new


def test_credentials_file_is_private(tmp_path: Path) -> None:
    bootstrap()

    assert (tmp_path / "admin-credentials.json").stat().st_mode & 0o077 == 0


def test_a_changed_password_is_no_longer_printed() -> None:
    bootstrap()
    admin = User.objects.get(is_superuser=True)
    admin.set_password("a brand new secret phrase")
    admin.save()

    output = bootstrap()

    assert "a brand new secret phrase" not in output
    assert "changed since first start" in output
