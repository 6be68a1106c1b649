"""The contract every blob storage backend keeps.

Blobs are stored under their SHA-256 digest and never change. Clients upload straight to the
storage through URLs the server signs (a single PUT for small blobs, a multipart upload for
large ones), so the bytes do not pass through Django when the backend is S3. Before a blob is
used the server checks that the stored bytes have the claimed digest and size (``verify``).
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from blobs.digests import Readable


@dataclass(frozen=True)
class Part:
    """A finished part of a multipart upload."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class PutTarget:
    """Where and how to PUT some bytes: the URL and the headers the request must carry."""

    url: str
    headers: dict[str, str]


class StorageError(Exception):
    """The storage refused or failed an operation; the message says which and why."""


class BlobStorage(ABC):
    #: Parts are at least this large, except the last (S3's own minimum).
    min_part_size = 5 * 1024 * 1024
    #: Whether clients may upload straight to this area's keys: true where the storage itself
    #: refuses bytes that do not match the signed digest, and records the signed ``tag`` of
    #: whoever wrote them (which ``verify`` checks). Otherwise uploads go to a staging area
    #: first and are adopted from there.
    direct_uploads: bool = False

    @abstractmethod
    def size_of(self, digest: str) -> int | None:
        """The stored blob's size, or None if it is not stored."""

    @abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A readable stream of the blob; raises StorageError if it is not stored."""

    @abstractmethod
    def save(self, digest: str, stream: Readable) -> int:
        """Store ``stream`` as ``digest``, server side; refuses bytes of another digest."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the blob; removing an absent blob is not an error."""

    @abstractmethod
    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        """The digests of blobs in this area (not its sub-areas) last written before
        ``cutoff``: what the garbage collector looks through for bytes nothing recorded."""

    @abstractmethod
    def verify(self, digest: str, size: int, tag: str | None = None) -> bool:
        """True if the stored bytes are exactly ``size`` long and hash to ``digest`` (and, if
        ``tag`` is given, were written by the upload signed with that tag)."""

    @abstractmethod
    def put_target(
        self, digest: str, size: int, expires_in: int, tag: str | None = None
    ) -> PutTarget:
        """A signed single-request upload of the whole blob; ``tag`` only if direct_uploads."""

    @abstractmethod
    def multipart_start(self, digest: str, tag: str | None = None) -> str:
        """Begin a multipart upload of ``digest``; returns its upload id."""

    @abstractmethod
    def multipart_part_target(
        self, digest: str, upload_id: str, number: int, expires_in: int
    ) -> PutTarget:
        """A signed upload of part ``number`` (1-based)."""

    @abstractmethod
    def multipart_parts(self, digest: str, upload_id: str) -> list[Part]:
        """The parts uploaded so far, by number: what a resumed upload need not send again."""

    @abstractmethod
    def multipart_complete(self, digest: str, upload_id: str, tag: str | None = None) -> None:
        """Join the uploaded parts, in order, into the blob (started with ``tag``, if any).

        Raises StorageError, and stores nothing, if the joined bytes do not hash to ``digest``.
        """

    @abstractmethod
    def multipart_abort(self, digest: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts."""

    @abstractmethod
    def download_url(self, digest: str, filename: str, expires_in: int) -> str | None:
        """A signed URL that serves the blob, or None where Django must stream it itself."""

    @abstractmethod
    def area(self, name: str) -> "BlobStorage":
        """The same storage, but keeping its blobs apart under ``name`` (e.g. a user's staging
        area); ``name`` is made of lowercase letters, digits, '-', '_' and '/'."""

    @abstractmethod
    def adopt(self, source: "BlobStorage", digest: str) -> None:
        """Move ``digest`` from ``source``, another area of this storage, into this one."""


AREA_RE = re.compile(r"^[a-z0-9_-]+(?:/[a-z0-9_-]+)*\Z")


def check_area(name: str) -> str:
    if not AREA_RE.match(name):
        raise StorageError(f"{name!r} is not a valid storage area name")
    return name
