"""Datasets and their versions through the API, on both storage backends."""

import io
import secrets
import tarfile
from functools import partial
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from datasets.models import Dataset, DatasetVersion
from datasets.services import dataset_version_commit
from tests.blobs.test_upload_api import upload
from tests.conftest import client_for
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.support.api_errors import assert_error
from tests.support.concurrency import at_once

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("configured_storage")]

DATASETS = "/api/v1/datasets"


@pytest.fixture
def alice() -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def alice_api(alice: User) -> APIClient:
    client = client_for(alice)
    created = client.post(DATASETS, {"name": "mnist"}, format="json")
    assert created.status_code == 201, created.json()
    return client


def commit(client: APIClient, files: dict[str, bytes], message: str = "") -> dict[str, Any]:
    tree = upload(client, files)
    response = client.post(
        f"{DATASETS}/alice/mnist/versions", {"tree": tree["digest"], "message": message}, "json"
    )
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def download(client: APIClient, url: str) -> bytes:
    response = client.get(url)
    if response.status_code == 302:  # S3: a presigned URL straight to the bucket
        import urllib.request

        with urllib.request.urlopen(response["Location"], timeout=30) as answer:
            return bytes(answer.read())
    assert response.status_code == 200, response
    return response.getvalue()


def test_versions_keep_their_bytes(alice_api: APIClient) -> None:
    original = {"train/a.csv": secrets.token_bytes(500), "labels.txt": b"0,1,2\n"}
    changed = dict(original, **{"labels.txt": b"0,1,2,3\n"})

    v1 = commit(alice_api, original, "first")
    v2 = commit(alice_api, changed, "more labels")

    assert (v1["number"], v2["number"]) == (1, 2)
    listed = alice_api.get(f"{DATASETS}/alice/mnist/versions").json()
    assert [v["number"] for v in listed["results"]] == [2, 1]
    assert listed["results"][1]["message"] == "first"
    base = f"{DATASETS}/alice/mnist/versions"
    assert download(alice_api, f"{base}/1/files/labels.txt") == b"0,1,2\n"
    assert download(alice_api, f"{base}/2/files/labels.txt") == b"0,1,2,3\n"
    assert download(alice_api, f"{base}/1/files/train/a.csv") == original["train/a.csv"]
    assert alice_api.get(f"{DATASETS}/alice/mnist").json()["latest_version"] == 2


def test_files_are_listed_by_directory(alice_api: APIClient) -> None:
    commit(alice_api, {"a/x": b"1", "a/b/y": b"22", "top": b"333"})
    files = f"{DATASETS}/alice/mnist/versions/1/files"

    top = alice_api.get(files).json()["results"]
    inside = alice_api.get(files, {"path": "a"}).json()["results"]

    assert [(r["name"], r["kind"], r["size"]) for r in top] == [("a", "dir", 3), ("top", "file", 3)]
    assert [(r["path"], r["kind"]) for r in inside] == [("a/b", "dir"), ("a/x", "file")]
    assert_error(alice_api.get(files, {"path": "nope"}), 404, "not_found")


def test_someone_elses_private_dataset_is_hidden(alice_api: APIClient) -> None:
    commit(alice_api, {"f": b"secret"})
    bob = client_for(UserFactory.create(username="bob"))
    base = f"{DATASETS}/alice/mnist"

    for url in (base, f"{base}/versions", f"{base}/versions/1", f"{base}/versions/1/files/f"):
        assert_error(bob.get(url), 404, "not_found")
    assert bob.get(DATASETS).json()["count"] == 0
    assert_error(APIClient().get(base), 404, "not_found")


def test_a_tree_someone_else_uploaded_cannot_become_your_version(alice_api: APIClient) -> None:
    tree = upload(alice_api, {"f": b"alice's data"})
    mallory = client_for(UserFactory.create(username="mallory"))
    mallory.post(DATASETS, {"name": "loot"}, format="json")

    response = mallory.post(
        f"{DATASETS}/mallory/loot/versions", {"tree": tree["digest"]}, format="json"
    )

    assert_error(response, 400, "unknown_tree")
    assert not DatasetVersion.objects.exists()


@pytest.mark.parametrize(("role", "expected"), [(Role.MEMBER, 201), (Role.VIEWER, 403)])
def test_team_members_commit_and_viewers_do_not(role: Role, expected: int) -> None:
    team = TeamFactory.create(name="lab")
    person = UserFactory.create()
    MembershipFactory.create(team=team, user=person, role=role)
    creator = UserFactory.create()
    MembershipFactory.create(team=team, user=creator, role=Role.OWNER)
    client_for(creator).post(DATASETS, {"name": "scans", "owner": "lab"}, format="json")
    client = client_for(person)
    tree = upload(client, {"scan.png": secrets.token_bytes(50)})

    response = client.post(f"{DATASETS}/lab/scans/versions", {"tree": tree["digest"]}, "json")

    assert response.status_code == expected, response.json()


def test_deleting_a_version_leaves_the_others(alice_api: APIClient) -> None:
    commit(alice_api, {"f": b"1"})
    commit(alice_api, {"f": b"2"})

    assert alice_api.delete(f"{DATASETS}/alice/mnist/versions/1").status_code == 204

    assert list(DatasetVersion.objects.values_list("number", flat=True)) == [2]
    assert_error(alice_api.get(f"{DATASETS}/alice/mnist/versions/1"), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tree": "xyz"}, "tree"),
        ({"tree": "a" * 64, "extra": 1}, "extra"),
        ({}, "tree"),
    ],
)
def test_bad_commits_are_refused(alice_api: APIClient, body: dict[str, Any], field: str) -> None:
    response = alice_api.post(f"{DATASETS}/alice/mnist/versions", body, format="json")

    assert field in assert_error(response, 400, "invalid")["fields"]
    assert not DatasetVersion.objects.exists()


@pytest.mark.parametrize("name", ["../x", "a b", "-lead", "é", "x" * 65])
def test_bad_dataset_names_are_refused(alice: User, name: str) -> None:
    response = client_for(alice).post(DATASETS, {"name": name}, format="json")

    assert "name" in assert_error(response, 400, "invalid")["fields"]
    assert not Dataset.objects.exists()


def test_odd_file_paths_answer_404(alice_api: APIClient) -> None:
    commit(alice_api, {"f": b"1"})
    base = f"{DATASETS}/alice/mnist/versions/1/files"

    for path in ("%00", "a%00b", "../f", "nope"):
        assert_error(alice_api.get(f"{base}/{path}"), 404, "not_found")


@pytest.mark.django_db(transaction=True)  # the threads must see each other's commits
def test_concurrent_commits_get_consecutive_numbers(alice_api: APIClient, postgres: None) -> None:
    alice = User.objects.get(username="alice")
    dataset = Dataset.objects.get()
    trees = [upload(alice_api, {"f": bytes([n])})["digest"] for n in range(4)]

    outcomes = at_once(
        *(
            partial(dataset_version_commit, actor=alice, dataset=dataset, tree_digest=t)
            for t in trees
        )
    )

    assert outcomes == ["ok"] * 4
    assert sorted(DatasetVersion.objects.values_list("number", flat=True)) == [1, 2, 3, 4]


def test_a_version_downloads_as_a_tar_stream(alice_api: APIClient) -> None:
    files = {
        "big.bin": secrets.token_bytes(3 * 1024 * 1024 + 5),
        "dir/ünïcode name.txt": b"text",
        "d/" + "long" * 40 + ".txt": b"",
    }
    commit(alice_api, files)

    response = alice_api.get(f"{DATASETS}/alice/mnist/versions/1/tar")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.getvalue()), mode="r:") as archive:
        unpacked = {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive
            if member.isfile()
        }
    assert unpacked == files


def test_the_list_tells_each_datasets_versions_and_latest_size(alice_api: APIClient) -> None:
    commit(alice_api, {"a": b"1"}, "first")
    latest = commit(alice_api, {"a": b"1", "b": b"4567"}, "second")
    alice_api.post(DATASETS, {"name": "empty", "description": "nothing yet"}, format="json")

    rows = {row["name"]: row for row in alice_api.get(DATASETS).json()["results"]}
    detail = alice_api.get(f"{DATASETS}/alice/mnist").json()

    assert rows["mnist"]["version_count"] == 2
    assert rows["mnist"]["latest_version"] == 2
    assert rows["mnist"]["latest_size"] == 5
    assert rows["mnist"]["updated_at"] == latest["created_at"]
    assert (rows["empty"]["version_count"], rows["empty"]["latest_size"]) == (0, None)
    assert rows["empty"]["updated_at"] is None
    summary = ("version_count", "latest_version", "latest_size", "updated_at")
    assert {key: detail[key] for key in summary} == {key: rows["mnist"][key] for key in summary}


def test_the_list_costs_the_same_queries_for_more_datasets(alice_api: APIClient) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    commit(alice_api, {"a": b"1"})
    with CaptureQueriesContext(connection) as few:
        alice_api.get(DATASETS)
    for name in ("two", "three", "four"):
        alice_api.post(DATASETS, {"name": name}, format="json")
    with CaptureQueriesContext(connection) as many:
        assert alice_api.get(DATASETS).json()["count"] == 4

    assert len(many) == len(few)


@pytest.mark.parametrize(
    ("search", "expected"),
    [("MNI", ["mnist"]), ("digits", ["mnist"]), ("alic", ["mnist", "cifar"]), ("zzz", [])],
)
def test_the_list_is_searched_by_name_description_and_owner(
    alice: User, search: str, expected: list[str]
) -> None:
    client = client_for(alice)
    client.post(DATASETS, {"name": "mnist", "description": "Handwritten digits"}, format="json")
    client.post(DATASETS, {"name": "cifar"}, format="json")

    rows = client.get(DATASETS, {"search": search}).json()["results"]

    assert [row["name"] for row in rows] == expected
