"""The upload protocol through the API, against both storage backends.

missing -> PUT straight to storage -> finish -> commit a tree; interrupted uploads resume, and a
digest never stands in for the bytes.
"""

import secrets
from typing import Any

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from blobs.digests import sha256_of_bytes
from blobs.models import Blob, BlobClaim, Tree
from blobs.storage import get_storage
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.support.api_errors import assert_error
from tests.support.uploads import put, send_plan

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("configured_storage")]

MISSING, FINISH, TREES = "/api/v1/blobs/missing", "/api/v1/blobs/finish", "/api/v1/trees"


def described(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"digest": sha256_of_bytes(data), "size": len(data)} for data in files.values()]


def by_digest(files: dict[str, bytes]) -> dict[str, bytes]:
    return {sha256_of_bytes(data): data for data in files.values()}


def upload(client: APIClient, files: dict[str, bytes]) -> dict[str, Any]:
    """The whole protocol, as `ferry data upload` runs it; returns the committed tree."""
    missing = client.post(MISSING, {"blobs": described(files)}, format="json")
    assert missing.status_code == 200, missing.json()
    contents = by_digest(files)
    for plan in missing.json()["missing"]:
        send_plan(plan, contents[plan["digest"]])
    finished = client.post(FINISH, {"blobs": described(files)}, format="json").json()
    assert finished["failed"] == {}
    entries = [
        {"path": path, "digest": sha256_of_bytes(data), "size": len(data)}
        for path, data in files.items()
    ]
    committed = client.post(TREES, {"entries": entries}, format="json")
    assert committed.status_code == 201, committed.json()
    body: dict[str, Any] = committed.json()
    return body


@pytest.fixture
def alice() -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def files() -> dict[str, bytes]:
    return {
        "train/a.csv": secrets.token_bytes(300),
        "train/b.csv": secrets.token_bytes(1),
        "README": b"",
    }


def test_upload_then_commit_a_tree(alice: User, files: dict[str, bytes]) -> None:
    client = client_for(alice)

    tree = upload(client, files)

    assert tree["file_count"] == 3
    assert tree["total_size"] == 301
    assert Tree.objects.filter(digest=tree["digest"]).exists()
    for digest, data in by_digest(files).items():
        with get_storage().open(digest) as stream:
            assert stream.read() == data


def test_a_second_upload_of_the_same_files_sends_nothing(
    alice: User, files: dict[str, bytes]
) -> None:
    client = client_for(alice)
    first = upload(client, files)

    again = client.post(MISSING, {"blobs": described(files)}, format="json").json()

    assert again["missing"] == []
    assert upload(client, files)["digest"] == first["digest"]


def test_another_user_must_send_the_bytes_but_storage_keeps_one_copy(
    alice: User, files: dict[str, bytes]
) -> None:
    upload(client_for(alice), files)
    bob = client_for(UserFactory.create(username="bob"))

    missing = bob.post(MISSING, {"blobs": described(files)}, format="json").json()["missing"]
    assert {plan["digest"] for plan in missing} == set(by_digest(files))
    upload(bob, files)

    assert Blob.objects.count() == 3
    assert BlobClaim.objects.count() == 6


def test_knowing_a_digest_does_not_let_you_commit_its_blob(
    alice: User, files: dict[str, bytes]
) -> None:
    upload(client_for(alice), files)
    mallory = client_for(UserFactory.create(username="mallory"))
    data = files["train/a.csv"]
    entry = {"path": "stolen", "digest": sha256_of_bytes(data), "size": len(data)}

    blob = {"digest": entry["digest"], "size": entry["size"]}
    finished = mallory.post(FINISH, {"blobs": [blob]}, format="json").json()
    committed = mallory.post(TREES, {"entries": [entry]}, format="json")

    assert entry["digest"] in finished["failed"]
    error = assert_error(committed, 400, "missing_blobs")
    assert error["fields"]["missing"] == [entry["digest"]]
    assert Tree.objects.count() == 1


def test_bytes_that_do_not_match_the_digest_are_refused(alice: User) -> None:
    client = client_for(alice)
    digest = sha256_of_bytes(b"the real thing")
    claimed: dict[str, Any] = {"digest": digest, "size": 14}
    plan = client.post(MISSING, {"blobs": [claimed]}, format="json").json()["missing"][0]

    status = put(plan["parts"][0]["url"], plan["parts"][0]["headers"], b"a forgery!!!!!")
    finished = client.post(FINISH, {"blobs": [claimed]}, format="json").json()

    assert status in {400, 403}
    assert digest in finished["failed"]
    assert not Blob.objects.exists()
    assert get_storage().size_of(digest) is None


def test_an_interrupted_multipart_upload_resumes_without_resending_parts(
    alice: User, settings: Settings
) -> None:
    part = get_storage().min_part_size
    settings.FERRY_MULTIPART_THRESHOLD = part
    settings.FERRY_MULTIPART_PART_SIZE = part
    data = secrets.token_bytes(2 * part + 100)
    client = client_for(alice)
    wanted = {"blobs": described({"big.bin": data})}

    first = client.post(MISSING, wanted, format="json").json()["missing"][0]
    assert first["method"] == "multipart"
    assert [p["number"] for p in first["parts"]] == [1, 2, 3]
    send_plan(first, data, only={1})  # ...and the client dies here

    resumed = client.post(MISSING, wanted, format="json").json()["missing"][0]
    assert resumed["parts_done"] == [1]
    assert [p["number"] for p in resumed["parts"]] == [2, 3]
    send_plan(resumed, data)
    finished = client.post(FINISH, wanted, format="json").json()

    assert finished["registered"] == [sha256_of_bytes(data)]
    with get_storage().open(sha256_of_bytes(data)) as stream:
        assert stream.read() == data


def test_finishing_what_was_never_sent_fails_and_records_nothing(alice: User) -> None:
    client = client_for(alice)
    claimed = {"digest": sha256_of_bytes(b"never sent"), "size": 10}

    finished = client.post(FINISH, {"blobs": [claimed]}, format="json").json()

    assert finished["registered"] == []
    assert "upload it again" in finished["failed"][claimed["digest"]]
    assert not Blob.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"blobs": [{"digest": "A" * 64, "size": 1}]}, "blobs.0.digest"),
        ({"blobs": [{"digest": "a" * 64, "size": -1}]}, "blobs.0.size"),
        ({"blobs": [{"digest": "a" * 64, "size": 10**15}]}, "blobs.0.size"),
        ({"blobs": [{"digest": "a" * 64}]}, "blobs.0.size"),
        ({"blobs": "everything"}, "blobs"),
        ({"blobs": [{"digest": "a" * 64, "size": 1}] * 10_001}, "blobs"),
    ],
)
def test_bad_blob_lists_are_refused(alice: User, body: dict[str, Any], field: str) -> None:
    for endpoint in (MISSING, FINISH):
        response = client_for(alice).post(endpoint, body, format="json")

        error = assert_error(response, 400, "invalid")
        assert field in error["fields"], error


@pytest.mark.parametrize(
    ("path", "code"),
    [("../escape", "invalid_manifest"), ("/abs", "invalid_manifest"), ("a//b", "invalid_manifest")],
)
def test_trees_with_unsafe_paths_are_refused(
    alice: User, files: dict[str, bytes], path: str, code: str
) -> None:
    client = client_for(alice)
    upload(client, files)
    data = files["README"]
    entry = {"path": path, "digest": sha256_of_bytes(data), "size": len(data)}

    assert_error(client.post(TREES, {"entries": [entry]}, format="json"), 400, code)
    assert Tree.objects.count() == 1


def test_a_tree_with_a_path_twice_is_refused(alice: User, files: dict[str, bytes]) -> None:
    client = client_for(alice)
    upload(client, files)
    data = files["README"]
    entry = {"path": "same", "digest": sha256_of_bytes(data), "size": len(data)}

    response = client.post(TREES, {"entries": [entry, entry]}, format="json")

    assert_error(response, 400, "invalid_manifest")


def test_the_upload_protocol_needs_a_login(files: dict[str, bytes]) -> None:
    for endpoint in (MISSING, FINISH, TREES):
        assert_error(APIClient().post(endpoint, {}, format="json"), 401, "not_authenticated")
