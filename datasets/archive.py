"""A dataset version (or any tree: a job's code) as a tar stream, written as it is sent.

Each file is read from storage in chunks straight into the response, so the server holds one
chunk at a time however large the version is.
"""

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from blobs.digests import CHUNK
from blobs.models import Tree, TreeEntry
from blobs.storage import StorageError, get_storage
from datasets.models import DatasetVersion

BLOCK = 512


def version_tar(version: DatasetVersion) -> Iterator[bytes]:
    return tree_tar(version.tree, int(version.created_at.timestamp()))


def tree_tar(tree: Tree, mtime: int, under: str = "") -> Iterator[bytes]:
    """The files of ``tree`` as a tar stream, or only those inside the directory ``under``
    (kept at their paths in the tree)."""
    storage = get_storage()
    entries = TreeEntry.objects.filter(tree=tree).order_by("path")
    if under:
        entries = entries.filter(path__startswith=f"{under.strip('/')}/")
    for entry in entries.iterator(chunk_size=1000):
        yield _header(entry, mtime)
        yield from _body(storage.open(entry.blob_id), entry)
        yield b"\0" * (-entry.size % BLOCK)
    yield b"\0" * (2 * BLOCK)  # the end-of-archive marker


def _header(entry: TreeEntry, mtime: int) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.size = entry.size
    info.mode = entry.mode
    info.mtime = mtime
    # PAX carries long and non-ASCII paths exactly.
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _body(stream: BinaryIO, entry: TreeEntry) -> Iterator[bytes]:
    sent = 0
    with stream:
        while chunk := stream.read(CHUNK):
            sent += len(chunk)
            yield chunk
    if sent != entry.size:
        # A short archive would unpack as if whole; break the response instead.
        raise StorageError(f"{entry.path}: storage returned {sent} of {entry.size} bytes")
