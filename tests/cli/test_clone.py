"""`ferry data clone` and `get` against a live server, on both storage backends.

The server and the storage are real; spies on the CLI's own client only record which
requests it makes (and, where a test says so, change what it asks for).
"""

import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ferry import downloads
from ferry.client import FerryClient
from ferry.trees_remote import TreeFiles

from blobs.digests import sha256_of_bytes
from blobs.storage import get_storage
from blobs.storage.filesystem import FilesystemStorage
from blobs.storage.s3 import S3Storage
from tests.cli.conftest import Ferry

pytestmark = pytest.mark.django_db(transaction=True)

StreamUrl = Callable[..., AbstractContextManager[httpx.Response]]


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def upload(ferry: Ferry, workdir: Path, files: dict[str, bytes]) -> None:
    write(workdir, files)
    assert ferry("data", "init", "mnist").code == 0
    uploaded = ferry("data", "upload")
    assert uploaded.code == 0, uploaded


def partial_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(".ferry-partial")]


def damage(digest: str, size: int) -> None:
    """Replace a stored blob's bytes with others of the same length, behind Ferry's back."""
    storage = get_storage()
    wrong = secrets.token_bytes(size)
    if isinstance(storage, S3Storage):
        storage.client.put_object(Bucket=storage.bucket, Key=storage.key(digest), Body=wrong)
    else:
        assert isinstance(storage, FilesystemStorage)
        storage._path(digest).write_bytes(wrong)


RANGE = 64 * 1024


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files from 100 kB come in 64 KiB ranges, so that tests need no 64 MiB files."""
    monkeypatch.setattr(downloads, "RANGED_THRESHOLD", 100_000)
    monkeypatch.setattr(downloads, "RANGE_SIZE", RANGE)


@pytest.fixture
def storage_gets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int] | None]:
    """The byte range of every GET the CLI makes straight to the storage (None: whole file)."""
    calls: list[tuple[int, int] | None] = []
    original = FerryClient.stream_url

    def spy(
        self: FerryClient, url: str, byte_range: tuple[int, int] | None = None
    ) -> AbstractContextManager[httpx.Response]:
        calls.append(byte_range)
        return original(self, url, byte_range)

    monkeypatch.setattr(FerryClient, "stream_url", spy)
    return calls


@pytest.fixture
def ferry_gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every download the CLI asks Ferry's file endpoint for."""
    calls: list[str] = []
    original = FerryClient.download

    def spy(self: FerryClient, path: str) -> AbstractContextManager[httpx.Response]:
        calls.append(path)
        return original(self, path)

    monkeypatch.setattr(FerryClient, "download", spy)
    return calls


def test_files_of_equal_content_are_downloaded_once_and_copied(
    logged_in: Ferry,
    workdir: Path,
    tmp_path: Path,
    configured_storage: str,
    storage_gets: list[tuple[int, int] | None],
    ferry_gets: list[str],
) -> None:
    same = secrets.token_bytes(5000)
    files = {
        "a/one.bin": same, "b/two.bin": same, "c/d/three.bin": same,
        "other.bin": secrets.token_bytes(700), "empty": b"", "also-empty": b"",
    }  # fmt: skip
    upload(logged_in, workdir, files)
    os.chmod(workdir / "b" / "two.bin", 0o755)
    assert logged_in("data", "upload").code == 0  # version 2: two.bin is executable

    cloned = logged_in("data", "clone", "mnist/2", "-p", str(tmp_path / "out"), "--json")

    assert cloned.code == 0, cloned
    result = json.loads(cloned.out)
    assert (result["file_count"], result["total_size"]) == (6, 3 * 5000 + 700)
    for path, data in files.items():
        assert (tmp_path / "out" / path).read_bytes() == data
    assert stat.S_IMODE((tmp_path / "out" / "b" / "two.bin").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "a" / "one.bin").stat().st_mode) == 0o644
    # One request for the shared content, one for other.bin, none for the empty files.
    requests = storage_gets if configured_storage == "s3" else ferry_gets
    assert len(requests) == 2, requests
    assert partial_files(tmp_path / "out") == []


@pytest.mark.usefixtures("small_ranges")
def test_a_large_file_comes_in_parallel_ranges(
    logged_in: Ferry,
    workdir: Path,
    tmp_path: Path,
    configured_storage: str,
    storage_gets: list[tuple[int, int] | None],
) -> None:
    big = secrets.token_bytes(300_001)
    upload(logged_in, workdir, {"big.bin": big, "small.bin": b"small"})

    cloned = logged_in("data", "clone", "mnist", "-p", str(tmp_path / "out"))

    assert cloned.code == 0, cloned
    assert (tmp_path / "out" / "big.bin").read_bytes() == big
    assert (tmp_path / "out" / "small.bin").read_bytes() == b"small"
    if configured_storage == "s3":
        starts = range(0, len(big), RANGE)
        expected = [(start, min(start + RANGE, len(big)) - 1) for start in starts]
        assert sorted(r for r in storage_gets if r is not None) == expected
        assert storage_gets.count(None) == 1  # small.bin, whole
    else:
        assert storage_gets == []  # no storage URLs: Ferry streams each file whole
    assert partial_files(tmp_path / "out") == []


@pytest.mark.parametrize("configured_storage", ["s3"], indirect=True)  # only URLs take ranges
@pytest.mark.usefixtures("small_ranges")
def test_storage_that_ignores_range_gets_one_stream(
    logged_in: Ferry,
    workdir: Path,
    tmp_path: Path,
    configured_storage: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[int, int] | None] = []
    original = FerryClient.stream_url

    def without_range(
        self: FerryClient, url: str, byte_range: tuple[int, int] | None = None
    ) -> AbstractContextManager[httpx.Response]:
        asked.append(byte_range)
        return original(self, url)  # the Range header never reaches the storage: it sends 200

    monkeypatch.setattr(FerryClient, "stream_url", without_range)
    big = secrets.token_bytes(300_001)
    upload(logged_in, workdir, {"big.bin": big})

    cloned = logged_in("data", "clone", "mnist", "-p", str(tmp_path / "out"))

    assert cloned.code == 0, cloned
    assert (tmp_path / "out" / "big.bin").read_bytes() == big
    assert asked == [(0, RANGE - 1)]  # the first range's 200 carried the whole file


@pytest.mark.parametrize("ranged", [False, True], ids=["whole", "ranged"])
@pytest.mark.usefixtures("small_ranges")
def test_a_damaged_download_fails_cleanly_and_leaves_no_partial_file(
    logged_in: Ferry,
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ranged: bool,
) -> None:
    if not ranged:
        monkeypatch.setattr(downloads, "RANGED_THRESHOLD", 10**9)
    data = secrets.token_bytes(300_001)
    upload(logged_in, workdir, {"data/bad.bin": data, "good.txt": b"fine"})
    damage(sha256_of_bytes(data), len(data))

    cloned = logged_in("data", "clone", "mnist", "-p", str(tmp_path / "out"))

    assert cloned.code == 1, cloned
    assert re.fullmatch(
        r"ferry: data/bad\.bin arrived damaged \(SHA-256 [0-9a-f]{64}, not "
        + sha256_of_bytes(data)
        + r"\)\n",
        cloned.err,
    ), cloned.err
    assert not (tmp_path / "out" / "data" / "bad.bin").exists()
    assert partial_files(tmp_path / "out") == []


@pytest.mark.parametrize("configured_storage", ["s3"], indirect=True)  # only S3 gives URLs
def test_an_expired_storage_url_is_asked_for_again(
    logged_in: Ferry,
    workdir: Path,
    tmp_path: Path,
    configured_storage: str,
    monkeypatch: pytest.MonkeyPatch,
    storage_gets: list[tuple[int, int] | None],
) -> None:
    original = TreeFiles.manifest_pages

    def spoilt(self: TreeFiles, *args: Any, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        for page in original(self, *args, **kwargs):
            # A signature the storage refuses with 403, as it refuses an expired one.
            yield [{**row, "url": row["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")}
                   for row in page]  # fmt: skip

    monkeypatch.setattr(TreeFiles, "manifest_pages", spoilt)
    files = {"a.bin": secrets.token_bytes(100), "b.bin": secrets.token_bytes(200)}
    upload(logged_in, workdir, files)

    cloned = logged_in("data", "clone", "mnist", "-p", str(tmp_path / "out"))

    assert cloned.code == 0, cloned
    for path, data in files.items():
        assert (tmp_path / "out" / path).read_bytes() == data
    assert len(storage_gets) == 4  # each file: refused once, then fetched with a fresh URL


def test_get_of_a_missing_version_says_so(logged_in: Ferry, workdir: Path) -> None:
    upload(logged_in, workdir, {"labels.txt": b"0,1\n"})

    got = logged_in("data", "get", "mnist/7", "labels.txt")
    cloned = logged_in("data", "clone", "mnist/7")

    assert (got.code, got.err) == (1, "ferry: alice/datasets/mnist has no version 7.\n")
    assert (cloned.code, cloned.err) == (1, "ferry: alice/datasets/mnist has no version 7.\n")
    assert not (workdir / "labels.txt.ferry-partial").exists()


def test_get_fetches_one_file_in_two_requests(
    logged_in: Ferry, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(logged_in, workdir, {"deep/dir/labels.txt": b"0,1\n", "deep/other": b"x"})
    requests: list[str] = []
    for name in ("request", "download", "stream_url"):
        original = getattr(FerryClient, name)

        def spy(
            self: FerryClient, *args: Any, _name: str = name, _original: Any = original, **kw: Any
        ) -> Any:
            requests.append(_name)
            return _original(self, *args, **kw)

        monkeypatch.setattr(FerryClient, name, spy)

    got = logged_in("data", "get", "alice/mnist/1", "deep/dir/labels.txt", "-o", "l.txt")

    assert got.code == 0, got
    assert (workdir / "l.txt").read_bytes() == b"0,1\n"
    # The file's manifest row, then its bytes (from the storage, or from Ferry).
    assert requests in (["request", "stream_url"], ["request", "download"]), requests
    missing = logged_in("data", "get", "alice/mnist/1", "deep/dir")
    assert (missing.code, missing.err) == (1, "ferry: No file deep/dir in version 1\n")
