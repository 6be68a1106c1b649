"""One suite that every blob storage backend must pass: the filesystem and real S3."""

import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blobs.digests import sha256_of_bytes
from blobs.storage import BlobStorage, PutTarget, StorageError, get_storage
from blobs.storage.filesystem import FilesystemStorage
from blobs.storage.s3 import S3Settings, S3Storage
from tests.support.uploads import put as put_bytes

MiB = 1024 * 1024


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStorage]:
    if request.param == "filesystem":
        backend = FilesystemStorage(tmp_path / "storage")
        # Uploads are received by Ferry's own view, which serves the configured backend.
        settings = request.getfixturevalue("settings")
        settings.FERRY_STORAGE = "filesystem"
        settings.FERRY_STORAGE_DIR = backend.root
        get_storage.cache_clear()
        yield backend
        get_storage.cache_clear()
        return
    server = request.getfixturevalue("s3")
    yield S3Storage(
        S3Settings(
            endpoint_url=server.endpoint_url,
            bucket=server.bucket,
            access_key=server.access_key,
            secret_key=server.secret_key,
            region=server.region,
            prefix=f"test-{secrets.token_hex(4)}/",  # each test its own corner of the bucket
        )
    )


def put(target: PutTarget, data: bytes) -> int:
    return put_bytes(target.url, target.headers, data)


def blob(size: int) -> tuple[str, bytes]:
    data = secrets.token_bytes(size)
    return sha256_of_bytes(data), data


def test_save_then_read_back(storage: BlobStorage) -> None:
    digest, data = blob(1000)

    assert storage.size_of(digest) is None
    assert storage.save(digest, io.BytesIO(data)) == 1000

    assert storage.size_of(digest) == 1000
    with storage.open(digest) as stream:
        assert stream.read() == data
    assert storage.verify(digest, 1000)


def test_save_refuses_bytes_of_another_digest(storage: BlobStorage) -> None:
    digest, _ = blob(100)

    with pytest.raises(StorageError, match="hash"):
        storage.save(digest, io.BytesIO(b"something else"))

    assert storage.size_of(digest) is None


def test_delete_removes_and_tolerates_absence(storage: BlobStorage) -> None:
    digest, data = blob(10)
    storage.save(digest, io.BytesIO(data))

    storage.delete(digest)
    storage.delete(digest)

    assert storage.size_of(digest) is None
    assert not storage.verify(digest, 10)


@pytest.mark.django_db
def test_signed_put_stores_the_blob(storage: BlobStorage) -> None:
    digest, data = blob(4096)

    assert put(storage.put_target(digest, len(data), expires_in=60), data) == 200

    assert storage.verify(digest, len(data))


@pytest.mark.django_db
def test_signed_put_of_other_bytes_is_refused_and_stores_nothing(storage: BlobStorage) -> None:
    digest, data = blob(4096)
    _, other = blob(4096)

    assert put(storage.put_target(digest, len(data), expires_in=60), other) == 400

    assert storage.size_of(digest) is None


def test_verify_notices_a_wrong_size(storage: BlobStorage) -> None:
    digest, data = blob(100)
    storage.save(digest, io.BytesIO(data))

    assert not storage.verify(digest, 99)


@pytest.mark.django_db
def test_multipart_upload_resumes_from_the_parts_already_sent(storage: BlobStorage) -> None:
    part_size = storage.min_part_size
    data = secrets.token_bytes(2 * part_size + 1234)
    digest = sha256_of_bytes(data)
    chunks = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    upload_id = storage.multipart_start(digest)

    first = storage.multipart_part_target(digest, upload_id, 1, expires_in=60)
    assert put(first, chunks[0]) == 200
    # ...the client is interrupted here; on restart it asks what is already there.
    done = {part.number for part in storage.multipart_parts(digest, upload_id)}
    assert done == {1}
    for number, chunk in enumerate(chunks, start=1):
        if number not in done:
            target = storage.multipart_part_target(digest, upload_id, number, expires_in=60)
            assert put(target, chunk) == 200
    storage.multipart_complete(digest, upload_id)

    assert storage.verify(digest, len(data))


@pytest.mark.django_db
def test_multipart_of_wrong_bytes_never_becomes_the_blob(storage: BlobStorage) -> None:
    data = secrets.token_bytes(storage.min_part_size + 10)
    digest = sha256_of_bytes(b"what the client claimed")
    upload_id = storage.multipart_start(digest)
    assert put(storage.multipart_part_target(digest, upload_id, 1, expires_in=60), data) == 200

    with pytest.raises(StorageError, match="hash"):
        storage.multipart_complete(digest, upload_id)

    assert storage.size_of(digest) is None


def test_multipart_with_a_missing_part_is_refused(storage: BlobStorage) -> None:
    digest, _ = blob(10)
    upload_id = storage.multipart_start(digest)

    storage.multipart_abort(digest, upload_id)

    with pytest.raises(StorageError):
        storage.multipart_parts(digest, upload_id)


@pytest.mark.parametrize("digest", ["../../etc/passwd", "A" * 64, "a" * 63, ""])
def test_digests_must_be_sha256_hex(storage: BlobStorage, digest: str) -> None:
    with pytest.raises(StorageError, match="digest"):
        storage.size_of(digest)
    with pytest.raises(StorageError, match="digest"):
        storage.multipart_start(digest)
    with pytest.raises(StorageError, match="digest"):
        storage.put_target(digest, 1, expires_in=60)


@pytest.mark.django_db
def test_areas_keep_blobs_apart_until_adopted(storage: BlobStorage) -> None:
    digest, data = blob(2048)
    staging = storage.area("staging/42")

    assert put(staging.put_target(digest, len(data), expires_in=60), data) == 200

    assert staging.verify(digest, len(data))
    assert storage.size_of(digest) is None
    storage.adopt(staging, digest)
    assert storage.verify(digest, len(data))
    assert staging.size_of(digest) is None


@pytest.mark.django_db
def test_multipart_uploads_work_in_an_area(storage: BlobStorage) -> None:
    data = secrets.token_bytes(storage.min_part_size + 7)
    digest = sha256_of_bytes(data)
    staging = storage.area("staging/7")
    upload_id = staging.multipart_start(digest)
    first, rest = data[: storage.min_part_size], data[storage.min_part_size :]

    assert put(staging.multipart_part_target(digest, upload_id, 1, expires_in=60), first) == 200
    assert put(staging.multipart_part_target(digest, upload_id, 2, expires_in=60), rest) == 200
    staging.multipart_complete(digest, upload_id)

    assert staging.verify(digest, len(data))
    assert storage.size_of(digest) is None


@pytest.mark.parametrize("name", ["", "../x", "Staging", "a//b", "/a", "a/"])
def test_area_names_are_checked(storage: BlobStorage, name: str) -> None:
    with pytest.raises(StorageError, match="area"):
        storage.area(name)


def test_adopting_an_absent_blob_is_refused(storage: BlobStorage) -> None:
    digest, _ = blob(10)

    with pytest.raises(StorageError):
        storage.adopt(storage.area("staging/1"), digest)


def test_stored_before_lists_an_areas_own_blobs_by_age(storage: BlobStorage) -> None:
    digest, data = blob(100)
    staged, staged_data = blob(101)
    storage.save(digest, io.BytesIO(data))
    storage.area("staging/7").save(staged, io.BytesIO(staged_data))
    now = datetime.now(UTC)

    assert list(storage.stored_before(now + timedelta(minutes=5))) == [digest]
    assert list(storage.stored_before(now - timedelta(minutes=5))) == []
    assert list(storage.area("staging/7").stored_before(now + timedelta(minutes=5))) == [staged]
