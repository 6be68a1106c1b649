"""Upload a directory as a new dataset version.

hash (cached) -> ask which blobs are missing -> PUT their parts in parallel -> finish ->
commit the tree -> commit the version. Interrupted anywhere, running it again sends only what
the server still lacks.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.blobs import Blobs
from ferry.datasets import DatasetRef, Datasets
from ferry.errors import TransferError
from ferry.local import LocalFile, Scan, scan

TRANSFER_THREADS = 8


@dataclass(frozen=True)
class UploadResult:
    full_name: str
    version: int
    file_count: int
    total_size: int
    bytes_sent: int
    skipped_links: list[str]


@dataclass(frozen=True)
class Part:
    path: Path
    offset: int
    size: int
    url: str
    headers: dict[str, str]


def plan_parts(root: Path, files: list[LocalFile], plans: list[dict[str, Any]]) -> list[Part]:
    """Each part to PUT, read from any one local file holding that blob's bytes."""
    source = {f.digest: root / f.path for f in files}
    return [
        Part(source[plan["digest"]], p["offset"], p["size"], p["url"], p["headers"])
        for plan in plans
        for p in plan["parts"]
    ]


def read_part(part: Part) -> bytes:
    with part.path.open("rb") as handle:
        handle.seek(part.offset)
        data = handle.read(part.size)
    if len(data) != part.size:
        raise TransferError(f"{part.path} changed while uploading; run the upload again")
    return data


def upload_directory(
    datasets: Datasets,
    ref: DatasetRef,
    root: Path,
    message: str = "",
    *,
    on_scanned: Callable[[Scan], None] | None = None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> UploadResult:
    """``progress(total_bytes)`` returns the function to call with each part's byte count."""
    blobs = Blobs(datasets.client)
    local = scan(root)
    if on_scanned is not None:
        on_scanned(local)
    unique = {f.digest: f.size for f in local.files}
    wanted = [{"digest": d, "size": s} for d, s in unique.items()]
    parts = plan_parts(root, local.files, blobs.missing(wanted))
    total = sum(p.size for p in parts)
    advance = progress(total) if progress is not None else None

    def send(part: Part) -> None:
        datasets.client.put_bytes(part.url, part.headers, read_part(part))
        if advance is not None:
            advance(part.size)

    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as pool:
        # list(): re-raise the first failure here, in the caller's thread
        list(pool.map(send, parts))
    failed = blobs.finish(wanted)
    if failed:
        digest, problem = next(iter(failed.items()))
        path = next(f.path for f in local.files if f.digest == digest)
        raise TransferError(f"The server did not accept {path}: {problem}")
    entries = [
        {"path": f.path, "digest": f.digest, "size": f.size, "mode": f.mode} for f in local.files
    ]
    tree = blobs.create_tree(entries)
    version = datasets.commit_version(ref, tree["digest"], message)
    return UploadResult(
        full_name=f"{datasets.owner_of(ref)}/{ref.name}",
        version=int(version["number"]),
        file_count=int(tree["file_count"]),
        total_size=int(tree["total_size"]),
        bytes_sent=total,
        skipped_links=local.skipped_links,
    )
