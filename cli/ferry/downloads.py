"""Download one file of a version, or all of them (clone), checking every SHA-256.

A clone reads the version's manifest a page at a time and hands each page's files to a pool
of threads as the page arrives, so bytes flow after one request, not after the whole listing.
A file comes straight from the signed storage URL the manifest gives (no round trip through
Ferry), or from Ferry's file endpoint where there is none (the filesystem storage). Files that
share content travel once and are copied locally; large files come as parallel ranged GETs.
Every file is written to a ``.ferry-partial`` beside its target and renamed into place only
once its SHA-256 matches, so a failure leaves no half files.
"""

import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

import httpx

from ferry.datasets import DatasetRef, Datasets
from ferry.errors import LocalError, NotFound, TransferError
from ferry.trees_remote import MANIFEST_PAGE_SIZE, TreeFiles

MiB = 1024 * 1024
TRANSFER_THREADS = 16
# Files this large (with a storage URL) come as RANGE_SIZE pieces in parallel: one stream of a
# 1 GB file is held to one connection's speed. Module constants, so tests can shrink them.
RANGED_THRESHOLD = 64 * MiB
RANGE_SIZE = 16 * MiB
CHUNK = MiB
# Read the manifest no further ahead of the downloads than this many files: memory stays
# bounded, and no signed URL waits long enough in the queue to expire.
MAX_QUEUED = 2 * MANIFEST_PAGE_SIZE
EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()

Advance = Callable[[int], None]


@dataclass(frozen=True)
class CloneResult:
    full_name: str
    version: int
    directory: Path
    file_count: int
    total_size: int


@dataclass
class _File:
    """One manifest row and where it goes; ``url`` is replaced if its signature expires."""

    path: str
    digest: str
    size: int
    mode: int | None
    url: str | None
    target: Path

    @classmethod
    def of(cls, row: dict[str, Any], target: Path) -> "_File":
        return cls(
            row["path"], row["digest"], int(row["size"]), row.get("mode"), row.get("url"), target
        )


class _Cancelled(Exception):
    """Raised in a job once another job has failed, so that it stops at its next chunk."""


def fetch_to(
    source: TreeFiles,
    row: dict[str, Any],
    target: Path,
    on_bytes: Advance | None = None,
) -> None:
    """Download the file of manifest ``row`` into ``target``, checked against its digest."""
    with _Downloader(source, on_bytes) as downloader:
        downloader.schedule(_File.of(row, target))
        downloader.jobs.wait()


def file_row(source: TreeFiles, path: str, what: str) -> dict[str, Any]:
    """The manifest row of one file: its digest, to check the download against, and its URL.

    One request; a missing version or output is the server's 404, which names it.
    """
    path = path.strip("/")
    for row in source.manifest_page(path, page_size=1)["results"]:
        if row["path"] == path:
            return row
    raise NotFound(f"No file {path} in {what}", status=404, code="not_found")


def safe_target(directory: Path, path: str) -> Path:
    """Where ``path`` goes under ``directory``; never outside it, whatever the server says."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise LocalError(f"Refusing to write {path!r}: it would land outside {directory}")
    return directory.joinpath(*pure.parts)


def clone(
    datasets: Datasets,
    ref: DatasetRef,
    number: int,
    directory: Path,
    progress: Callable[[int], Advance] | None = None,
) -> CloneResult:
    """Download every file of version ``number`` into ``directory``.

    ``progress(total_bytes)`` returns the function to call with each chunk's byte count.
    """
    total = int(datasets.version(ref, number)["size"])  # also: a missing version is a 404 here
    count, size = download_all(datasets.files(ref, number), directory, total, progress)
    return CloneResult(f"{datasets.owner_of(ref)}/{ref.name}", number, directory, count, size)


def download_all(
    source: TreeFiles,
    directory: Path,
    total: int,
    progress: Callable[[int], Advance] | None = None,
    path: str = "",
) -> tuple[int, int]:
    """Every file of ``source`` at or under ``path`` into ``directory``: (files, bytes)."""
    advance = progress(total) if progress is not None else None
    directory.mkdir(parents=True, exist_ok=True)
    first: dict[str, Path] = {}  # by digest: where the one download of that content goes
    copies: list[tuple[_File, Path]] = []
    count = size = 0
    with _Downloader(source, advance) as downloader:
        for page in source.manifest_pages(path):
            for row in page:
                file = _File.of(row, safe_target(directory, row["path"]))
                count, size = count + 1, size + file.size
                if file.digest in first:
                    copies.append((file, first[file.digest]))
                else:
                    first[file.digest] = file.target
                    downloader.schedule(file)
            downloader.jobs.wait(below=MAX_QUEUED)
        downloader.jobs.wait()
        for copy, origin in copies:
            downloader.jobs.submit(_copy, origin, copy, advance)
        downloader.jobs.wait()
    return count, size


# --- the thread pool ----------------------------------------------------------------------------


class _Jobs:
    """A thread pool that counts unfinished jobs and keeps the first failure.

    Jobs may add jobs (a large file's first range schedules the others), so callers wait on
    the count, not on a list of futures. After a failure queued jobs are skipped and running
    ones stop at their next ``check``.
    """

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ferry-download")
        self._changed = threading.Condition()
        self._pending = 0
        self._failure: BaseException | None = None

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        with self._changed:
            if self._failure is not None:
                return
            self._pending += 1
        self._pool.submit(self._run, job, args)

    def check(self) -> None:
        if self._failure is not None:
            raise _Cancelled

    def wait(self, below: int = 1) -> None:
        """Until fewer than ``below`` jobs are unfinished; raises the first failure."""
        with self._changed:
            while self._pending >= below and self._failure is None:
                self._changed.wait()
            if self._failure is not None:
                raise self._failure

    def fail(self, exc: BaseException) -> None:
        with self._changed:
            if self._failure is None:
                self._failure = exc
            self._changed.notify_all()

    def close(self) -> None:
        """Wait for running jobs (stopping, if a failure was recorded); drop queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            self.check()
            job(*args)
        except BaseException as exc:
            self.fail(exc)
        finally:
            with self._changed:
                self._pending -= 1
                self._changed.notify_all()


# --- downloads ----------------------------------------------------------------------------------


class _Downloader:
    """Schedules each file's download on the pool, whole or in ranges, and cleans up after."""

    def __init__(self, source: TreeFiles, advance: Advance | None) -> None:
        self.source = source
        self.advance = advance
        self.jobs = _Jobs(TRANSFER_THREADS)
        self._ranged: list[_RangedFile] = []

    def __enter__(self) -> "_Downloader":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.jobs.fail(exc)  # an interrupt, say: running jobs stop at their next chunk
        self.jobs.close()
        for ranged in self._ranged:
            ranged.discard()  # after a failure, its partial file; after success, nothing

    def schedule(self, file: _File) -> None:
        if file.url is not None and file.size >= RANGED_THRESHOLD:
            self.jobs.submit(self._first_range, file)
        else:
            self.jobs.submit(self._whole, file)

    def _whole(self, file: _File) -> None:
        file.target.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial_of(file.target)
        try:
            with partial.open("wb") as out:
                got = self._stream_into(file, out) if file.size else EMPTY_DIGEST
            _check_digest(file, got)
            _place(partial, file)
        finally:
            partial.unlink(missing_ok=True)

    def _stream_into(self, file: _File, out: IO[bytes]) -> str:
        digest = hashlib.sha256()
        with self._get(file) as response:
            for chunk in response.iter_bytes(CHUNK):
                self.jobs.check()
                digest.update(chunk)
                out.write(chunk)
                self._advance(len(chunk))
        return digest.hexdigest()

    def _first_range(self, file: _File) -> None:
        """Fetch range 0; if the storage honours Range, schedule the others, else take it all."""
        ranged = _RangedFile(file, RANGE_SIZE)
        self._ranged.append(ranged)
        first, last = ranged.span(0)
        with self._get(file, (first, last)) as response:
            if response.status_code == 200:  # Range ignored: this is the whole file
                ranged.as_one_range()
                self._receive(ranged, response, 0, file.size - 1)
                ranged.ready(0)
                return
            _check_range(file, response, first, last)
            self._receive(ranged, response, first, last)
        for index in range(1, ranged.count):
            self.jobs.submit(self._range, ranged, index)
        ranged.ready(0)

    def _range(self, ranged: "_RangedFile", index: int) -> None:
        first, last = ranged.span(index)
        with self._get(ranged.file, (first, last)) as response:
            _check_range(ranged.file, response, first, last)
            self._receive(ranged, response, first, last)
        ranged.ready(index)

    def _receive(
        self, ranged: "_RangedFile", response: httpx.Response, first: int, last: int
    ) -> None:
        offset = first
        for chunk in response.iter_bytes(CHUNK):
            self.jobs.check()
            if offset + len(chunk) > last + 1:
                raise TransferError(f"{ranged.file.path}: the storage sent more than was asked")
            ranged.write(offset, chunk)
            offset += len(chunk)
            self._advance(len(chunk))
        if offset != last + 1:
            raise TransferError(
                f"{ranged.file.path}: the storage sent {offset - first} of {last + 1 - first} "
                f"bytes from byte {first}"
            )

    @contextmanager
    def _get(
        self, file: _File, byte_range: tuple[int, int] | None = None
    ) -> Iterator[httpx.Response]:
        """The file's bytes from its storage URL, or from Ferry where it has none."""
        if file.url is None:
            with self.source.client.download(self.source.file_url(file.path)) as response:
                yield response
            return
        for attempt in (1, 2):
            with self.source.client.stream_url(file.url, byte_range) as response:
                if response.status_code == 403 and attempt == 1:
                    # Signed URLs expire (FERRY_SIGNED_URL_SECONDS); ask for a fresh one, once.
                    file.url = self._fresh_url(file)
                    continue
                if response.status_code >= 400:
                    raise TransferError(
                        f"The storage refused to send {file.path} ({response.status_code})"
                    )
                yield response
                return

    def _fresh_url(self, file: _File) -> str:
        page = self.source.manifest_page(file.path, page_size=1)
        rows = [row for row in page["results"] if row["path"] == file.path]
        if not rows or not rows[0].get("url"):
            raise TransferError(f"The server no longer offers {file.path} for download")
        url: str = rows[0]["url"]
        return url

    def _advance(self, count: int) -> None:
        if self.advance is not None:
            self.advance(count)


class _RangedFile:
    """A large file fetched as ranges in parallel into one partial file of its full size.

    Ranges land in any order; the SHA-256 takes them in file order, fed by whichever thread
    finds the next range written, so hashing overlaps the download instead of following it.
    The thread that hashes the last range checks the digest and renames the file into place.
    """

    def __init__(self, file: _File, range_size: int) -> None:
        self.file = file
        self.range_size = range_size
        self.count = max(1, -(-file.size // range_size))
        self.partial = _partial_of(file.target)
        file.target.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(self._fd, file.size)  # the whole length up front: ranges land anywhere
        except OSError:
            self.discard()
            raise
        self._lock = threading.Lock()  # guards _written
        self._hashing = threading.Lock()  # held by the one thread feeding the hash
        self._written: set[int] = set()
        self._hashed = 0  # ranges hashed so far, from the start
        self._sha = hashlib.sha256()

    def span(self, index: int) -> tuple[int, int]:
        """The first and last byte of range ``index``."""
        first = index * self.range_size
        return first, min(first + self.range_size, self.file.size) - 1

    def as_one_range(self) -> None:
        self.range_size, self.count = max(self.file.size, 1), 1

    def write(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._descriptor(), view, offset)
            view, offset = view[written:], offset + written

    def ready(self, index: int) -> None:
        """Range ``index`` is written: hash what now lies in order; finish after the last."""
        with self._lock:
            self._written.add(index)
        while self._hashing.acquire(blocking=False):
            try:
                self._hash_in_order()
            finally:
                self._hashing.release()
            # A range written while we held the lock found it taken and left the hashing to
            # us: look once more now that the lock is free.
            with self._lock:
                if self._hashed not in self._written:
                    return

    def _hash_in_order(self) -> None:
        while True:
            with self._lock:
                if self._hashed not in self._written:
                    return
            first, last = self.span(self._hashed)
            for offset in range(first, last + 1, CHUNK):
                size = min(CHUNK, last + 1 - offset)
                self._sha.update(os.pread(self._descriptor(), size, offset))
            self._hashed += 1
            if self._hashed == self.count:
                self._finish()

    def _finish(self) -> None:
        _check_digest(self.file, self._sha.hexdigest())
        self._close()
        _place(self.partial, self.file)

    def discard(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)

    def _descriptor(self) -> int:
        if self._fd is None:
            raise _Cancelled
        return self._fd

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --- local files --------------------------------------------------------------------------------


def _copy(source: Path, copy: _File, advance: Advance | None) -> None:
    """A file whose content was downloaded (and checked) already: copied, not fetched."""
    copy.target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_of(copy.target)
    try:
        shutil.copyfile(source, partial)
        os.chmod(partial, _mode_bits(copy.mode))
        partial.replace(copy.target)
    finally:
        partial.unlink(missing_ok=True)
    if advance is not None:
        advance(copy.size)


def _partial_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.ferry-partial")


def _place(partial: Path, file: _File) -> None:
    os.chmod(partial, _mode_bits(file.mode))
    partial.replace(file.target)


def _mode_bits(mode: int | None) -> int:
    return 0o755 if mode == 0o755 else 0o644


def _check_digest(file: _File, got: str) -> None:
    if got != file.digest:
        raise TransferError(f"{file.path} arrived damaged (SHA-256 {got}, not {file.digest})")


def _check_range(file: _File, response: httpx.Response, first: int, last: int) -> None:
    expected = f"bytes {first}-{last}/{file.size}"
    if response.status_code != 206 or response.headers.get("content-range") != expected:
        got = response.headers.get("content-range") or "none"
        raise TransferError(
            f"{file.path}: asked the storage for {expected}, got {response.status_code} "
            f"with Content-Range {got}"
        )
