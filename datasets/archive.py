"""A dataset version as a tar stream, written as it is sent.

Each file is read from storage in chunks straight into the response, so the server holds one
chunk at a time however large the version is.
"""

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from blobs.digests import CHUNK
from blobs.models import TreeEntry
from blobs.storage import StorageError, get_storage
from datasets.models import DatasetVersion

BLOCK = 512


def version_tar(version: DatasetVersion) -> Iterator[bytes]:
    storage = get_storage()
    mtime = int(version.created_at.timestamp())
    entries = TreeEntry.objects.filter(tree=version.tree).order_by("path")
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
