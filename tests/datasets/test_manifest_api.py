"""A version's flat file manifest, with download URLs, on both storage backends."""

import secrets
import urllib.request
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from blobs.digests import sha256_of_bytes
from tests.conftest import client_for
from tests.datasets.test_datasets_api import DATASETS, commit
from tests.factories import UserFactory
from tests.support.api_errors import assert_error

pytestmark = pytest.mark.django_db

MANIFEST = f"{DATASETS}/alice/mnist/versions/1/manifest"


@pytest.fixture
def alice() -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def alice_api(alice: User, configured_storage: str) -> APIClient:
    client = client_for(alice)
    created = client.post(DATASETS, {"name": "mnist"}, format="json")
    assert created.status_code == 201, created.json()
    return client


def every_page(client: APIClient, url: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    page = client.get(url, params).json()
    rows: list[dict[str, Any]] = page["results"]
    while page["next"]:
        page = client.get(page["next"]).json()
        rows.extend(page["results"])
    return rows


def test_the_manifest_lists_every_file_by_path_across_pages(
    alice_api: APIClient, configured_storage: str
) -> None:
    files = {
        "z/deep/er/w.bin": secrets.token_bytes(300),
        "a/x": b"1",
        "a/b/y": b"22",
        "top": b"333",
        "a/b/copy": b"22",
    }
    commit(alice_api, files)

    first = alice_api.get(MANIFEST, {"page_size": 2}).json()
    rows = every_page(alice_api, MANIFEST, {"page_size": 2})

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert [row["path"] for row in rows] == sorted(files)
    for row in rows:
        data = files[row["path"]]
        assert row["name"] == row["path"].rsplit("/", 1)[-1]
        assert (row["kind"], row["size"], row["mode"]) == ("file", len(data), 0o644)
        assert row["digest"] == sha256_of_bytes(data)
        if configured_storage == "s3":
            with urllib.request.urlopen(row["url"], timeout=30) as answer:
                assert answer.read() == data  # straight from the bucket, no Ferry in between
        else:
            assert row["url"] is None  # the client uses files/<path> instead


def test_the_manifest_narrows_to_a_file_or_a_directory(alice_api: APIClient) -> None:
    commit(alice_api, {"a/x": b"1", "a/b/y": b"22", "ab": b"3", "top": b"333"})

    def paths(path: str) -> list[str]:
        return [row["path"] for row in every_page(alice_api, MANIFEST, {"path": path})]

    assert paths("a") == ["a/b/y", "a/x"]  # not "ab": a directory, not a name prefix
    assert paths("/a/b/") == ["a/b/y"]
    assert paths("top") == ["top"]
    assert paths("nope") == []  # an empty answer: only a missing version is a 404


def test_a_manifest_page_holds_up_to_1000_rows(alice_api: APIClient) -> None:
    commit(alice_api, {f"f/{n:04d}": b"same" for n in range(1001)})

    page = alice_api.get(MANIFEST, {"page_size": 1000}).json()
    last = alice_api.get(page["next"]).json()

    assert (page["count"], len(page["results"]), len(last["results"])) == (1001, 1000, 1)
    assert last["results"][0]["path"] == "f/1000"
    # The directory listing keeps the limit of every other list.
    files = f"{DATASETS}/alice/mnist/versions/1/files"
    assert len(alice_api.get(files, {"path": "f", "page_size": "1000"}).json()["results"]) == 200


def test_a_page_costs_the_same_queries_however_many_rows_it_holds(alice_api: APIClient) -> None:
    commit(alice_api, {f"f{n}": bytes([n]) for n in range(30)})

    def queries(page_size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = alice_api.get(MANIFEST, {"page_size": page_size})
        assert len(response.json()["results"]) == page_size
        return len(captured)

    assert queries(2) == queries(30)


def test_someone_elses_private_manifest_is_hidden(alice_api: APIClient) -> None:
    commit(alice_api, {"f": b"secret"})
    bob = client_for(UserFactory.create(username="bob"))

    assert_error(bob.get(MANIFEST), 404, "not_found")
    assert_error(APIClient().get(MANIFEST), 404, "not_found")
    assert alice_api.get(MANIFEST).status_code == 200


def test_the_manifest_of_a_missing_version_names_it(alice_api: APIClient) -> None:
    commit(alice_api, {"f": b"1"})

    error = assert_error(
        alice_api.get(f"{DATASETS}/alice/mnist/versions/7/manifest"), 404, "not_found"
    )

    assert error["message"] == "alice/datasets/mnist has no version 7."


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "lots"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"page": "first"}, "page"),
        ({"path": "x" * 5000}, "path"),
    ],
)
def test_bad_manifest_queries_are_refused(
    alice_api: APIClient, params: dict[str, str], field: str
) -> None:
    commit(alice_api, {"f": b"1"})

    error = assert_error(alice_api.get(MANIFEST, params), 400, "invalid")

    assert list(error["fields"]) == [field]
