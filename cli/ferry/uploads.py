"""Upload a directory as a new dataset version.

hash (cached) -> is it the latest version, or a tree the server knows? -> ask which blobs are
missing -> PUT their parts in parallel, finishing each batch of blobs as soon as its bytes are
sent -> commit the tree -> commit the version. Interrupted anywhere, running it again sends only
what the server still lacks.
"""

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.blobs import FINISH_BATCH, Blobs
from ferry.datasets import DatasetRef, Datasets
from ferry.errors import LocalError, Refused, TransferError
from ferry.local import LocalFile, Scan, scan
from ferry.trees import tree_digest

TRANSFER_THREADS = 8
# Finish requests overlap the uploads still running: the server checks one batch of blobs
# while the next is on its way.
FINISH_THREADS = 2


@dataclass(frozen=True)
class UploadResult:
    full_name: str
    version: int
    file_count: int
    total_size: int
    bytes_sent: int
    skipped_links: list[str]
    unchanged: bool = False


@dataclass(frozen=True)
class Part:
    digest: str
    path: Path
    offset: int
    size: int
    url: str
    headers: dict[str, str]


def plan_parts(root: Path, files: list[LocalFile], plans: list[dict[str, Any]]) -> list[Part]:
    """Each part to PUT, read from any one local file holding that blob's bytes; the parts of
    large blobs first, so that the server's check of them overlaps the small files' upload."""
    source = {f.digest: root / f.path for f in files}
    ordered = sorted(plans, key=lambda plan: plan["method"] != "multipart")
    return [
        Part(plan["digest"], source[plan["digest"]], p["offset"], p["size"], p["url"], p["headers"])
        for plan in ordered
        for p in plan["parts"]
    ]


def tree_entries(files: list[LocalFile]) -> list[dict[str, Any]]:
    return [{"path": f.path, "digest": f.digest, "size": f.size, "mode": f.mode} for f in files]


def read_part(part: Part) -> bytes:
    with part.path.open("rb") as handle:
        handle.seek(part.offset)
        data = handle.read(part.size)
    if len(data) != part.size:
        raise TransferError(f"{part.path} changed while uploading; run the upload again")
    return data


class Sender:
    """Sends the parts of the planned blobs and asks the server to finish each blob once all
    its parts are sent: large blobs one by one, small ones in batches."""

    def __init__(
        self, blobs: Blobs, plans: list[dict[str, Any]], finisher: ThreadPoolExecutor
    ) -> None:
        self.blobs = blobs
        self.finisher = finisher
        self.plans = {plan["digest"]: plan for plan in plans}
        self.left = {plan["digest"]: len(plan["parts"]) for plan in plans}
        self.ready: list[dict[str, Any]] = []
        self.finishing: list[Future[dict[str, str]]] = []
        self.lock = threading.Lock()
        for digest, count in self.left.items():
            if count == 0:  # a resumed multipart upload whose parts all arrived before
                self._sent(digest)

    def part_sent(self, part: Part) -> None:
        with self.lock:
            self.left[part.digest] -= 1
            if self.left[part.digest] == 0:
                self._sent(part.digest)

    def _sent(self, digest: str) -> None:
        plan = self.plans[digest]
        blob = {"digest": digest, "size": plan["size"]}
        if plan["method"] == "multipart":
            self._finish([blob])
            return
        self.ready.append(blob)
        if len(self.ready) >= FINISH_BATCH:
            self._finish(self.ready)
            self.ready = []

    def _finish(self, batch: list[dict[str, Any]]) -> None:
        self.finishing.append(self.finisher.submit(self.blobs.finish, batch))

    def failures(self) -> dict[str, str]:
        """Once every part is sent: finish the rest, wait, and say which blobs failed."""
        with self.lock:
            if self.ready:
                self._finish(self.ready)
                self.ready = []
        failed: dict[str, str] = {}
        for future in self.finishing:
            failed.update(future.result())
        return failed


def send_missing(
    blobs: Blobs,
    root: Path,
    files: list[LocalFile],
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> int:
    """Upload the blobs of ``files`` the server lacks; returns the bytes sent."""
    unique = {f.digest: f.size for f in files}
    plans = blobs.missing([{"digest": d, "size": s} for d, s in unique.items()])
    parts = plan_parts(root, files, plans)
    total = sum(p.size for p in parts)
    advance = progress(total) if progress is not None else None
    with (
        ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as pool,
        ThreadPoolExecutor(max_workers=FINISH_THREADS) as finisher,
    ):
        sender = Sender(blobs, plans, finisher)

        def send(part: Part) -> None:
            blobs.client.put_bytes(part.url, part.headers, read_part(part))
            if advance is not None:
                advance(part.size)
            sender.part_sent(part)

        list(pool.map(send, parts))  # list(): re-raise the first failure here
        failed = sender.failures()
    if failed:
        digest, problem = next(iter(failed.items()))
        path = next(f.path for f in files if f.digest == digest)
        raise TransferError(f"The server did not accept {path}: {problem}")
    return total


def commit_known_tree(
    datasets: Datasets, ref: DatasetRef, digest: str, message: str
) -> dict[str, Any] | None:
    """Commit a tree the server may know already (an earlier version's); None if it does not."""
    try:
        return datasets.commit_version(ref, digest, message)
    except Refused as exc:
        if exc.code == "unknown_tree":
            return None
        raise


def upload_directory(
    datasets: Datasets,
    ref: DatasetRef,
    root: Path,
    message: str = "",
    *,
    on_scanned: Callable[[Scan], None] | None = None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> UploadResult:
    """``progress(total_bytes)`` returns the function to call with each part's byte count.

    A directory equal to the latest version makes no new version (``unchanged`` is true).
    """
    local = scan(root)
    if on_scanned is not None:
        on_scanned(local)
    digest = tree_digest(local.files)
    full_name = f"{datasets.owner_of(ref)}/{ref.name}"

    def result(version: dict[str, Any], sent: int, unchanged: bool = False) -> UploadResult:
        return UploadResult(
            full_name=full_name,
            version=int(version["number"]),
            file_count=len(local.files),
            total_size=local.total_size,
            bytes_sent=sent,
            skipped_links=local.skipped_links,
            unchanged=unchanged,
        )

    latest = datasets.latest_version(ref)
    if latest is not None and latest["tree"] == digest:
        return result(latest, 0, unchanged=True)
    known = commit_known_tree(datasets, ref, digest, message)
    if known is not None:
        return result(known, 0)
    blobs = Blobs(datasets.client)
    sent = send_missing(blobs, root, local.files, progress)
    tree = blobs.create_tree(tree_entries(local.files))
    return result(datasets.commit_version(ref, tree["digest"], message), sent)


@dataclass(frozen=True)
class CodeSnapshot:
    tree: str
    file_count: int
    total_size: int
    bytes_sent: int


def upload_code(
    blobs: Blobs,
    root: Path,
    max_bytes: int,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> CodeSnapshot:
    """Snapshot ``root`` as a tree (honouring .ferryignore, else .gitignore), sending only what
    the server lacks; refuse, naming the largest files, if it is over ``max_bytes``."""
    local = scan(root)
    if local.total_size > max_bytes:
        largest = sorted(local.files, key=lambda f: f.size, reverse=True)[:5]
        names = ", ".join(f"{f.path} ({f.size} bytes)" for f in largest)
        raise LocalError(
            f"The code in {root} is {local.total_size} bytes, over the {max_bytes} allowed. "
            f"The largest files: {names}. Put data in a dataset (`ferry data upload`) and list "
            "it in .ferryignore."
        )
    sent = send_missing(blobs, root, local.files, progress)
    tree = blobs.create_tree(tree_entries(local.files))
    return CodeSnapshot(str(tree["digest"]), len(local.files), local.total_size, sent)
