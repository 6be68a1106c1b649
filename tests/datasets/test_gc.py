"""The garbage collector keeps what versions use and uploads in flight, and removes the rest."""

import io
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from blobs.digests import sha256_of_bytes
from blobs.gc import GRACE, collect_garbage
from blobs.models import Blob, BlobClaim, BlobUpload, Tree
from blobs.storage import StorageError, get_storage
from blobs.tasks import collect_garbage_task
from blobs.uploads import staging_area, upload_area
from tests.blobs.test_upload_api import upload
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("configured_storage")]

LATER = timedelta(hours=1)


@pytest.fixture
def alice_api() -> APIClient:
    client = client_for(UserFactory.create(username="alice"))
    assert client.post("/api/v1/datasets", {"name": "d"}, format="json").status_code == 201
    return client


def commit(client: APIClient, files: dict[str, bytes]) -> int:
    tree = upload(client, files)
    response = client.post("/api/v1/datasets/alice/d/versions", {"tree": tree["digest"]}, "json")
    assert response.status_code == 201, response.json()
    return int(response.json()["number"])


def after_grace() -> datetime:
    return timezone.now() + GRACE + LATER


def stored(data: bytes) -> bool:
    return get_storage().size_of(sha256_of_bytes(data)) is not None


def test_blobs_of_versions_are_kept(alice_api: APIClient) -> None:
    commit(alice_api, {"a": b"kept", "b": b"also kept"})

    collected = collect_garbage(now=after_grace())

    assert (collected.trees, collected.blobs) == (0, 0)
    assert stored(b"kept")
    assert stored(b"also kept")


def test_a_deleted_versions_own_blobs_go_and_shared_ones_stay(alice_api: APIClient) -> None:
    commit(alice_api, {"shared": b"in both", "old": b"only in v1"})
    commit(alice_api, {"shared": b"in both", "new": b"only in v2"})
    assert alice_api.delete("/api/v1/datasets/alice/d/versions/1").status_code == 204

    collected = collect_garbage(now=after_grace())

    assert (collected.trees, collected.blobs) == (1, 1)
    assert not stored(b"only in v1")
    assert stored(b"in both")
    assert stored(b"only in v2")
    assert Tree.objects.count() == 1


def test_nothing_is_removed_within_the_grace_period(alice_api: APIClient) -> None:
    upload(alice_api, {"pending": b"uploaded, not yet committed"})

    collected = collect_garbage(now=timezone.now() + GRACE - LATER)

    assert (collected.trees, collected.blobs) == (0, 0)
    assert stored(b"uploaded, not yet committed")


def test_a_fresh_claim_protects_an_old_unused_blob(alice_api: APIClient) -> None:
    upload(alice_api, {"f": b"old bytes"})
    digest = sha256_of_bytes(b"old bytes")
    Blob.objects.filter(digest=digest).update(created_at=timezone.now() - 2 * GRACE)
    BlobClaim.objects.filter(blob_id=digest).update(created_at=timezone.now() - 2 * GRACE)
    bob = client_for(UserFactory.create(username="bob"))
    upload(bob, {"g": b"old bytes"})  # bob is about to use it

    collected = collect_garbage()

    assert collected.blobs == 0
    assert stored(b"old bytes")


def test_the_periodic_task_collects(alice_api: APIClient) -> None:
    upload(alice_api, {"orphan": b"never committed"})
    Tree.objects.update(created_at=timezone.now() - 2 * GRACE)
    Blob.objects.update(created_at=timezone.now() - 2 * GRACE)
    BlobClaim.objects.update(created_at=timezone.now() - 2 * GRACE)

    assert collect_garbage_task() == {"trees": 1, "blobs": 1, "uploads": 0, "orphans": 0}
    assert not stored(b"never committed")
    assert not BlobClaim.objects.filter(user__username="alice").exists()


def test_bytes_no_row_records_go_after_the_grace_period(alice_api: APIClient) -> None:
    storage = get_storage()
    orphan, recorded = b"sent, never finished", b"finished"
    storage.save(sha256_of_bytes(orphan), io.BytesIO(orphan))
    commit(alice_api, {"f": recorded})

    early = collect_garbage(now=timezone.now() + GRACE - LATER)
    assert early.orphans == 0
    assert stored(orphan)

    late = collect_garbage(now=after_grace())
    assert late.orphans == 1
    assert not stored(orphan)
    assert stored(recorded)  # its row protects it: orphans are only bytes nobody recorded


def test_staged_leftovers_and_abandoned_multipart_uploads_go(
    alice_api: APIClient, settings: Settings
) -> None:
    alice = User.objects.get(username="alice")
    leftover = b"staged, never finished"
    staging_area(alice.pk).save(sha256_of_bytes(leftover), io.BytesIO(leftover))
    part = get_storage().min_part_size
    settings.FERRY_MULTIPART_THRESHOLD = part
    big = {"digest": sha256_of_bytes(b"x" * (part + 1)), "size": part + 1}
    planned = alice_api.post("/api/v1/blobs/missing", {"blobs": [big]}, format="json").json()
    assert planned["missing"][0]["method"] == "multipart"
    upload_row = BlobUpload.objects.get()

    collected = collect_garbage(now=after_grace())

    assert (collected.uploads, collected.orphans) == (1, 1)
    assert staging_area(alice.pk).size_of(sha256_of_bytes(leftover)) is None
    assert not BlobUpload.objects.exists()
    with pytest.raises(StorageError):
        upload_area(upload_row).multipart_parts(upload_row.digest, upload_row.upload_id)
