"""The blob locks: writers of one digest's key wait for each other, others do not."""

import io
import secrets
import threading
import time

import pytest
from django.db import connection

from blobs.digests import sha256_of_bytes
from blobs.gc import _delete_bytes
from blobs.locks import blob_locks, buckets
from blobs.models import Blob
from blobs.storage import get_storage

HOLD_S = 0.5


def digest_in_bucket(bucket: int) -> str:
    return f"{bucket:02x}" + secrets.token_hex(31)


def waited_for(first: str, second: str) -> float:
    """How long a second locker of ``second`` waited while ``first`` was held for HOLD_S."""
    held = threading.Event()
    waited: list[float] = []

    def holder() -> None:
        try:
            with blob_locks([first]):
                held.set()
                time.sleep(HOLD_S)
        finally:
            connection.close()

    def contender() -> None:
        held.wait(10)
        started = time.monotonic()
        try:
            with blob_locks([second]):
                waited.append(time.monotonic() - started)
        finally:
            connection.close()

    threads = [threading.Thread(target=holder), threading.Thread(target=contender)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return waited[0]


def test_buckets_are_sorted_and_few() -> None:
    digests = [digest_in_bucket(b) for b in (200, 3, 200, 17)]

    assert buckets(digests) == [3, 17, 200]
    assert len(buckets(secrets.token_hex(32) for _ in range(5000))) <= 256


@pytest.mark.django_db(transaction=True)
def test_a_digest_in_the_same_bucket_waits() -> None:
    assert waited_for(digest_in_bucket(7), digest_in_bucket(7)) >= HOLD_S * 0.8


@pytest.mark.django_db(transaction=True)
def test_a_digest_in_another_bucket_does_not_wait() -> None:
    assert waited_for(digest_in_bucket(7), digest_in_bucket(8)) < HOLD_S * 0.8


@pytest.mark.django_db
@pytest.mark.usefixtures("configured_storage")
def test_the_collector_keeps_bytes_an_upload_recorded_again() -> None:
    storage = get_storage()
    kept, dropped = secrets.token_bytes(10), secrets.token_bytes(11)
    for data in (kept, dropped):
        storage.save(sha256_of_bytes(data), io.BytesIO(data))
    Blob.objects.create(digest=sha256_of_bytes(kept), size=len(kept))  # recorded meanwhile

    _delete_bytes([sha256_of_bytes(kept), sha256_of_bytes(dropped)])

    assert storage.size_of(sha256_of_bytes(kept)) == len(kept)
    assert storage.size_of(sha256_of_bytes(dropped)) is None
