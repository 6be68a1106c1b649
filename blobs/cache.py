"""A host's local cache of blobs, and trees laid out from it.

An agent keeps every blob it has fetched under ``<cache>/<aa>/<digest>``, read-only, checked
against its SHA-256 on the way in. Laying out a tree fetches only the blobs the cache lacks (in
parallel, straight from the storage) and then hard-links each file from the cache, so an input
used before costs no download and no copy: a 10,000-file dataset is 10,000 links.

Hard links share the cached file, so a tree laid out by linking must be mounted read-only (the
sandbox does that); code, which jobs may change, is copied instead.
"""

import errno
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from blobs.digests import copy_hashing
from blobs.models import Tree
from blobs.storage import BlobStorage, StorageError, get_storage

FETCH_THREADS = 8


@dataclass(frozen=True)
class CachedFile:
    path: str
    digest: str
    size: int
    mode: int


@dataclass(frozen=True)
class LayoutResult:
    files: int
    fetched: int  # blobs that were not cached
    fetched_bytes: int


class BlobCache:
    def __init__(self, root: Path, storage: BlobStorage | None = None) -> None:
        self.root = root
        self.storage = storage or get_storage()
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path_of(digest).exists()

    def fetch(self, digest: str, size: int) -> None:
        """Bring one blob into the cache, checked; a no-op if it is there."""
        target = self.path_of(digest)
        if target.exists():
            return
        partial = self.tmp / f"{digest}.{os.getpid()}.{id(self)}.partial"
        try:
            with self.storage.open(digest) as source, partial.open("wb") as out:
                actual, length = copy_hashing(source, out)
            if actual != digest or length != size:
                raise StorageError(f"blob {digest} came back as {actual} ({length} bytes)")
            os.chmod(partial, 0o444)  # cached bytes are never changed in place
            target.parent.mkdir(exist_ok=True)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def layout(self, files: list[CachedFile], directory: Path, *, link: bool) -> LayoutResult:
        """Make ``directory`` hold ``files``: hard links into the cache, or copies."""
        missing = {f.digest: f.size for f in files if not self.has(f.digest)}
        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            list(pool.map(lambda item: self.fetch(*item), missing.items()))
        directory.mkdir(parents=True, exist_ok=True)
        made: set[Path] = {directory}
        for file in files:
            target = _inside(directory, file.path)
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            self._place(file, target, link)
        return LayoutResult(len(files), len(missing), sum(missing.values()))

    def _place(self, file: CachedFile, target: Path, link: bool) -> None:
        source = self.path_of(file.digest)
        if link:
            try:
                os.link(source, target)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # the job's directory is on another file system
                    raise
        shutil.copyfile(source, target)
        os.chmod(target, 0o755 if file.mode == 0o755 else 0o644)


def tree_files(tree: Tree) -> list[CachedFile]:
    rows = tree.entries.values_list("path", "blob_id", "size", "mode")
    return [CachedFile(path, digest, size, mode) for path, digest, size, mode in rows]


def _inside(directory: Path, path: str) -> Path:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:  # trees are checked on the way in; twice
        raise StorageError(f"refusing to lay out {path!r} outside {directory}")
    return directory.joinpath(*pure.parts)
