"""A host's blob cache: fetch once, check, then lay trees out by linking (or copying code)."""

import io
import os
import secrets
from pathlib import Path

import pytest

from blobs.cache import BlobCache, CachedFile
from blobs.digests import sha256_of_bytes
from blobs.storage import StorageError, get_storage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("configured_storage")]


def stored(data: bytes) -> str:
    digest = sha256_of_bytes(data)
    get_storage().save(digest, io.BytesIO(data))
    return digest


def files_of(contents: dict[str, bytes], mode: int = 0o644) -> list[CachedFile]:
    return [CachedFile(path, stored(data), len(data), mode) for path, data in contents.items()]


def test_an_input_is_fetched_once_then_linked(tmp_path: Path) -> None:
    contents = {
        "a.bin": secrets.token_bytes(1000),
        "deep/b.bin": secrets.token_bytes(10),
        "same": b"",
    }
    files = files_of(contents)
    cache = BlobCache(tmp_path / "cache")

    first = cache.layout(files, tmp_path / "job1", link=True)
    second = cache.layout(files, tmp_path / "job2", link=True)

    assert (first.fetched, second.fetched) == (3, 0)
    for path, data in contents.items():
        assert (tmp_path / "job2" / path).read_bytes() == data
    linked = (tmp_path / "job2" / "a.bin").stat()
    assert linked.st_ino == (tmp_path / "job1" / "a.bin").stat().st_ino
    assert linked.st_mode & 0o222 == 0  # the cache's bytes cannot be written through a link


def test_code_is_copied_with_its_mode(tmp_path: Path) -> None:
    files = files_of({"run.sh": b"#!/bin/sh\necho hi\n"}, mode=0o755)
    cache = BlobCache(tmp_path / "cache")

    cache.layout(files, tmp_path / "code", link=False)

    script = tmp_path / "code" / "run.sh"
    assert script.stat().st_mode & 0o777 == 0o755
    assert script.stat().st_ino != cache.path_of(files[0].digest).stat().st_ino


def test_damaged_bytes_never_enter_the_cache(tmp_path: Path) -> None:
    data = secrets.token_bytes(100)
    digest = stored(data)
    cache = BlobCache(tmp_path / "cache")

    with pytest.raises(StorageError, match="came back as"):
        cache.layout([CachedFile("x", digest, len(data) + 1, 0o644)], tmp_path / "job", link=True)

    assert not cache.has(digest)
    assert os.listdir(cache.tmp) == []


def test_paths_outside_the_directory_are_refused(tmp_path: Path) -> None:
    files = [CachedFile("../escape", stored(b"x"), 1, 0o644)]

    with pytest.raises(StorageError, match="outside"):
        BlobCache(tmp_path / "cache").layout(files, tmp_path / "job", link=True)

    assert not (tmp_path / "escape").exists()
