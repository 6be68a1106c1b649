"""Uploads straight into the store (S3): bytes travel once, yet a digest is never a key.

A blob the store lacks is PUT by the client straight to its shared key, signed with the SHA-256
(S3 refuses other bytes) and the uploader's tag (which only the server can make). Finishing
counts an upload only for the user whose tag the stored bytes carry.
"""

import secrets
from typing import Any

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from blobs.digests import sha256_of_bytes
from blobs.models import Blob, BlobClaim
from blobs.storage import get_storage
from blobs.uploads import staging_area
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.support.uploads import put, send_plan

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.parametrize("configured_storage", ["s3"], indirect=True),
]

MISSING, FINISH = "/api/v1/blobs/missing", "/api/v1/blobs/finish"


def blob(data: bytes) -> dict[str, Any]:
    return {"digest": sha256_of_bytes(data), "size": len(data)}


def plan_for(client: APIClient, data: bytes) -> dict[str, Any]:
    missing = client.post(MISSING, {"blobs": [blob(data)]}, format="json").json()["missing"]
    assert len(missing) == 1
    plan: dict[str, Any] = missing[0]
    return plan


def finish(client: APIClient, data: bytes) -> dict[str, Any]:
    body: dict[str, Any] = client.post(FINISH, {"blobs": [blob(data)]}, format="json").json()
    return body


def stored_bytes(data: bytes) -> bytes:
    with get_storage().open(sha256_of_bytes(data)) as stream:
        return stream.read()


@pytest.fixture
def alice(configured_storage: str) -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def bob(configured_storage: str) -> User:
    return UserFactory.create(username="bob")


@pytest.fixture
def big(settings: Settings) -> bytes:
    """Bytes large enough to go as a multipart upload of three parts."""
    part = get_storage().min_part_size
    settings.FERRY_MULTIPART_THRESHOLD = part
    settings.FERRY_MULTIPART_PART_SIZE = part
    return secrets.token_bytes(2 * part + 10)


def test_a_new_blob_goes_straight_to_the_store(alice: User) -> None:
    client = client_for(alice)
    data = secrets.token_bytes(500)

    plan = plan_for(client, data)
    send_plan(plan, data)
    finished = finish(client, data)

    assert "/staging/" not in plan["parts"][0]["url"]
    assert finished == {"registered": [sha256_of_bytes(data)], "failed": {}}
    assert stored_bytes(data) == data
    assert staging_area(alice.pk).size_of(sha256_of_bytes(data)) is None
    assert BlobClaim.objects.filter(user=alice, blob_id=sha256_of_bytes(data)).exists()


def test_a_blob_the_store_holds_is_proven_through_staging(alice: User, bob: User) -> None:
    data = secrets.token_bytes(500)
    send_plan(plan_for(client_for(alice), data), data)
    finish(client_for(alice), data)

    plan = plan_for(client_for(bob), data)
    send_plan(plan, data)
    finished = finish(client_for(bob), data)

    assert "/staging/" in plan["parts"][0]["url"]
    assert finished["registered"] == [sha256_of_bytes(data)]
    assert staging_area(bob.pk).size_of(sha256_of_bytes(data)) is None  # dropped, not kept
    assert BlobClaim.objects.filter(blob_id=sha256_of_bytes(data)).count() == 2


def test_someone_elses_direct_upload_does_not_count_for_you(alice: User, bob: User) -> None:
    data = secrets.token_bytes(500)
    theirs, mine = client_for(alice), client_for(bob)
    plan_for(mine, data)  # bob knows the digest, and gets a target too: but not the bytes

    send_plan(plan_for(theirs, data), data)
    stolen = finish(mine, data)

    assert stolen["registered"] == []
    assert "upload it again" in stolen["failed"][sha256_of_bytes(data)]
    assert not Blob.objects.exists()
    assert finish(theirs, data)["registered"] == [sha256_of_bytes(data)]
    assert not BlobClaim.objects.filter(user=bob).exists()


def test_a_direct_target_cannot_be_used_with_another_tag(alice: User, bob: User) -> None:
    data = secrets.token_bytes(500)
    bobs = plan_for(client_for(bob), data)["parts"][0]
    alices = plan_for(client_for(alice), data)["parts"][0]

    mixed = put(bobs["url"], alices["headers"], data)

    assert mixed == 403
    assert get_storage().size_of(sha256_of_bytes(data)) is None


def test_a_direct_upload_that_lands_after_another_still_counts(alice: User, bob: User) -> None:
    data = secrets.token_bytes(500)
    alices, bobs = plan_for(client_for(alice), data), plan_for(client_for(bob), data)
    send_plan(bobs, data)
    assert finish(client_for(bob), data)["registered"] == [sha256_of_bytes(data)]

    send_plan(alices, data)  # the same bytes again, now under alice's tag
    finished = finish(client_for(alice), data)

    assert finished["registered"] == [sha256_of_bytes(data)]
    assert BlobClaim.objects.filter(blob_id=sha256_of_bytes(data)).count() == 2
    assert stored_bytes(data) == data


def test_a_direct_multipart_upload_is_joined_in_place(alice: User, big: bytes) -> None:
    client = client_for(alice)

    plan = plan_for(client, big)
    send_plan(plan, big)
    finished = finish(client, big)

    assert plan["method"] == "multipart"
    assert finished["registered"] == [sha256_of_bytes(big)]
    assert stored_bytes(big) == big


def test_a_direct_multipart_upload_of_other_bytes_leaves_nothing(alice: User, big: bytes) -> None:
    client = client_for(alice)

    send_plan(plan_for(client, big), secrets.token_bytes(len(big)))
    finished = finish(client, big)

    assert finished["registered"] == []
    assert sha256_of_bytes(big) in finished["failed"]
    assert not Blob.objects.exists()
    assert get_storage().size_of(sha256_of_bytes(big)) is None


def test_a_direct_multipart_upload_is_not_joined_over_a_stored_blob(
    alice: User, bob: User, big: bytes
) -> None:
    started = plan_for(client_for(alice), big)  # alice starts first...
    send_plan(plan_for(client_for(bob), big), big)  # ...but bob finishes first
    assert finish(client_for(bob), big)["registered"] == [sha256_of_bytes(big)]

    send_plan(started, secrets.token_bytes(len(big)))  # alice's parts are not even right
    finished = finish(client_for(alice), big)

    assert "finished first" in finished["failed"][sha256_of_bytes(big)]
    assert stored_bytes(big) == big
    again = plan_for(client_for(alice), big)
    assert "/staging/" in again["parts"][0]["url"]
    send_plan(again, big)
    assert finish(client_for(alice), big)["registered"] == [sha256_of_bytes(big)]
