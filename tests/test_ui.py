"""The browser UI's page: served for the UI's own addresses, with the CSRF cookie the UI needs."""

from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

pytestmark = pytest.mark.django_db

PAGE = '<!doctype html><html><body><div id="root"></div><script src="/static/ui/a.js">'


@pytest.fixture
def built_ui(tmp_path: Path, settings: Settings) -> Path:
    (tmp_path / "index.html").write_text(PAGE)
    settings.FERRY_UI_DIR = tmp_path
    return tmp_path


@pytest.mark.parametrize(
    "path", ["/", "/login", "/alice/projects/mnist/3", "/settings/tokens", "/a%20b/x"]
)
def test_ui_addresses_get_the_page_and_a_csrf_cookie(
    client: Client, built_ui: Path, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.content.decode() == PAGE
    assert "csrftoken" in response.cookies
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/static/ui/assets/missing.js", "/compat/mlflow/nothing", "/ws/x"]
)
def test_other_prefixes_keep_their_404(client: Client, built_ui: Path, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.content.decode() != PAGE


def test_the_page_refuses_writes(client: Client, built_ui: Path) -> None:
    response = client.post("/login", {"username": "x"})

    assert response.status_code == 405


def test_an_unbuilt_ui_says_how_to_build_it(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    settings.FERRY_UI_DIR = tmp_path / "dist"

    response = client.get("/")

    assert response.status_code == 503
    assert "npm run build" in response.content.decode()
