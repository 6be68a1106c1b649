"""Blobs as files under one directory: the embedded default.

Uploads go to Ferry itself (``/api/v1/blobs/upload/<token>``) with a signed, expiring token in
place of S3's presigned URL, so clients speak one protocol to both backends. Every write lands
in a temporary file first and is renamed into place only once its digest checks out, so a blob
file is always whole.
"""

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.core import signing

from blobs.digests import CHUNK, Readable, copy_hashing, is_digest
from blobs.storage.base import BlobStorage, Part, PutTarget, StorageError, check_area

UPLOAD_PATH = "/api/v1/blobs/upload/"
_SALT = "ferry.blobs.filesystem.put"


class FilesystemStorage(BlobStorage):
    def __init__(self, root: Path, area: str = "") -> None:
        self.base = root
        self.area_name = check_area(area) if area else ""
        self.root = root / area if area else root
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)
        # One temporary folder for every area: renames out of it never cross file systems.
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def area(self, name: str) -> "FilesystemStorage":
        return FilesystemStorage(self.base, check_area(name))

    def adopt(self, source: BlobStorage, digest: str) -> None:
        if not isinstance(source, FilesystemStorage) or source.base != self.base:
            raise StorageError("can only adopt blobs from another area of the same storage")
        target = self._path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source._path(digest), target)
        except FileNotFoundError as exc:
            raise StorageError(
                f"blob {digest} is not in {source.area_name or 'the store'}"
            ) from exc

    # --- paths ----------------------------------------------------------------------------------

    def _path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise StorageError(f"{digest!r} is not a SHA-256 hex digest")
        return self.root / "blobs" / digest[:2] / digest[2:4] / digest

    def _upload_dir(self, digest: str, upload_id: str) -> Path:
        if not is_digest(digest):
            raise StorageError(f"{digest!r} is not a SHA-256 hex digest")
        if not upload_id.isalnum():
            raise StorageError("malformed upload id")
        return self.root / "uploads" / f"{digest}.{upload_id}"

    # --- reading and writing --------------------------------------------------------------------

    def size_of(self, digest: str) -> int | None:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: str) -> BinaryIO:
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"blob {digest} is not stored") from exc

    def save(self, digest: str, stream: Readable) -> int:
        return self._write_verified(digest, stream, size=None)

    def delete(self, digest: str) -> None:
        self._path(digest).unlink(missing_ok=True)

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        limit = cutoff.timestamp()
        for path in (self.root / "blobs").glob("??/??/*"):
            try:
                written = path.stat().st_mtime
            except FileNotFoundError:  # removed since the listing
                continue
            if written < limit and is_digest(path.name):
                yield path.name

    def verify(self, digest: str, size: int, tag: str | None = None) -> bool:
        _refuse_tag(tag)
        try:
            with self._path(digest).open("rb") as stream:
                actual, length = copy_hashing(stream)
        except FileNotFoundError:
            return False
        return actual == digest and length == size

    def _write_verified(self, digest: str, stream: Readable, size: int | None) -> int:
        target = self._path(digest)
        with tempfile.NamedTemporaryFile(dir=self.tmp, delete=False) as temp:
            try:
                actual, length = copy_hashing(stream, temp)
                temp.flush()
                os.fsync(temp.fileno())
            except BaseException:
                Path(temp.name).unlink(missing_ok=True)
                raise
        if actual != digest or (size is not None and length != size):
            Path(temp.name).unlink(missing_ok=True)
            raise StorageError(
                f"the bytes sent hash to {actual} ({length} bytes), not {digest}"
                + (f" ({size} bytes)" if size is not None else "")
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp.name, target)
        return length

    # --- signed uploads -------------------------------------------------------------------------

    def put_target(
        self, digest: str, size: int, expires_in: int, tag: str | None = None
    ) -> PutTarget:
        _refuse_tag(tag)
        self._path(digest)  # validates the digest
        token = _sign({"a": self.area_name, "d": digest, "s": size}, expires_in)
        return PutTarget(url=f"{UPLOAD_PATH}{token}", headers={})

    def multipart_start(self, digest: str, tag: str | None = None) -> str:
        _refuse_tag(tag)
        upload_id = secrets.token_hex(16)
        self._upload_dir(digest, upload_id).mkdir(parents=True)
        return upload_id

    def multipart_part_target(
        self, digest: str, upload_id: str, number: int, expires_in: int
    ) -> PutTarget:
        if not self._upload_dir(digest, upload_id).is_dir():
            raise StorageError(f"no upload {upload_id} of {digest}")
        token = _sign({"a": self.area_name, "d": digest, "u": upload_id, "n": number}, expires_in)
        return PutTarget(url=f"{UPLOAD_PATH}{token}", headers={})

    def multipart_parts(self, digest: str, upload_id: str) -> list[Part]:
        directory = self._upload_dir(digest, upload_id)
        if not directory.is_dir():
            raise StorageError(f"no upload {upload_id} of {digest}")
        parts = [
            Part(number=int(path.name), etag=path.name, size=path.stat().st_size)
            for path in directory.iterdir()
            if path.name.isdigit()
        ]
        return sorted(parts, key=lambda part: part.number)

    def multipart_complete(self, digest: str, upload_id: str, tag: str | None = None) -> None:
        _refuse_tag(tag)
        directory = self._upload_dir(digest, upload_id)
        parts = self.multipart_parts(digest, upload_id)
        if [part.number for part in parts] != list(range(1, len(parts) + 1)):
            raise StorageError("the parts are not numbered 1..N without gaps")
        with _ConcatenatedParts([directory / str(part.number) for part in parts]) as joined:
            self._write_verified(digest, joined, size=None)
        shutil.rmtree(directory, ignore_errors=True)

    def multipart_abort(self, digest: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(digest, upload_id), ignore_errors=True)

    def download_url(self, digest: str, filename: str, expires_in: int) -> str | None:
        return None

    def receive(self, token: str, stream: Readable) -> None:
        """Accept the body of a PUT to a URL this backend signed."""
        claims = _unsign(token)
        area = self.area(claims["a"]) if claims.get("a") else self
        digest = str(claims["d"])
        if "u" in claims:
            area._receive_part(digest, str(claims["u"]), int(claims["n"]), stream)
        else:
            area._write_verified(digest, stream, size=int(claims["s"]))

    def _receive_part(self, digest: str, upload_id: str, number: int, stream: Readable) -> None:
        directory = self._upload_dir(digest, upload_id)
        if not directory.is_dir():
            raise StorageError(f"no upload {upload_id} of {digest}")
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, prefix=".part") as temp:
            while chunk := stream.read(CHUNK):
                temp.write(chunk)
        os.replace(temp.name, directory / str(number))


def _refuse_tag(tag: str | None) -> None:
    # Uploads here always go through a staging area (direct_uploads is False): a tag would
    # mean the caller expects a guarantee this backend does not give.
    if tag is not None:
        raise StorageError("the filesystem storage takes no direct uploads")


def _sign(claims: dict[str, object], expires_in: int) -> str:
    return signing.dumps({**claims, "exp": int(time.time()) + expires_in}, salt=_SALT)


def _unsign(token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = signing.loads(token, salt=_SALT)
    except signing.BadSignature as exc:
        raise StorageError("the upload URL is not one this server signed") from exc
    if int(claims.get("exp", 0)) < time.time():
        raise StorageError("the upload URL has expired; ask the server for a new one")
    return claims


class _ConcatenatedParts:
    """Reads several part files one after another, as one stream."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = iter(paths)
        self._current: BinaryIO | None = None

    def __enter__(self) -> "_ConcatenatedParts":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._current is not None:
            self._current.close()

    def read(self, size: int = -1, /) -> bytes:
        while True:
            if self._current is None:
                path = next(self._paths, None)
                if path is None:
                    return b""
                self._current = path.open("rb")
            chunk = self._current.read(size)
            if chunk:
                return chunk
            self._current.close()
            self._current = None
