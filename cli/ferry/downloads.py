"""Download one file of a version, or all of them (clone), checking every SHA-256."""

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ferry.datasets import DatasetRef, Datasets
from ferry.errors import LocalError, TransferError

TRANSFER_THREADS = 8


@dataclass(frozen=True)
class CloneResult:
    full_name: str
    version: int
    directory: Path
    file_count: int
    total_size: int


def fetch(
    datasets: Datasets,
    ref: DatasetRef,
    number: int,
    path: str,
    out: IO[bytes],
    on_bytes: Callable[[int], None] | None = None,
) -> str:
    """Write one file's bytes to ``out``; returns their SHA-256."""
    digest = hashlib.sha256()
    with datasets.client.download(datasets.file_url(ref, number, path)) as response:
        for chunk in response.iter_bytes():
            digest.update(chunk)
            out.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def fetch_to(
    datasets: Datasets,
    ref: DatasetRef,
    number: int,
    row: dict[str, Any],
    target: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Download into ``target`` via a temporary file, so a failure leaves no half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.ferry-partial")
    try:
        with partial.open("wb") as out:
            got = fetch(datasets, ref, number, row["path"], out, on_bytes)
        expected = row.get("digest")
        if expected and got != expected:
            raise TransferError(f"{row['path']} arrived damaged (SHA-256 {got}, not {expected})")
        os.chmod(partial, 0o755 if row.get("mode") == 0o755 else 0o644)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


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
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> CloneResult:
    rows = list(datasets.walk(ref, number))
    targets = [(row, safe_target(directory, row["path"])) for row in rows]
    total = sum(int(row["size"]) for row in rows)
    advance = progress(total) if progress is not None else None
    directory.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[dict[str, Any], Path]) -> None:
        fetch_to(datasets, ref, number, item[0], item[1], advance)

    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as pool:
        list(pool.map(one, targets))  # re-raises the first failure here
    return CloneResult(f"{datasets.owner_of(ref)}/{ref.name}", number, directory, len(rows), total)
