"""SHA-256 digests: how blobs are named."""

import hashlib
import re
from typing import Protocol

DIGEST_RE = re.compile(r"^[0-9a-f]{64}\Z")
CHUNK = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.match(value))


def copy_hashing(source: Readable, target: Writable | None = None) -> tuple[str, int]:
    """Read ``source`` to its end (copying it to ``target``); return its hex digest and length."""
    hasher = hashlib.sha256()
    length = 0
    while chunk := source.read(CHUNK):
        hasher.update(chunk)
        length += len(chunk)
        if target is not None:
            target.write(chunk)
    return hasher.hexdigest(), length


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
