"""A tree's digest, computed here exactly as the server computes it (``blobs.trees``).

Knowing it before talking to the server lets an unchanged directory be recognised with one
request, and a directory equal to an earlier version be committed without sending its list.
"""

import hashlib
from collections.abc import Iterable

from ferry.local import LocalFile


def canonical_manifest(files: Iterable[LocalFile]) -> bytes:
    """One line per file, sorted by the path's UTF-8 bytes: ``<mode octal> <size> <digest>
    <path>\\n``."""
    ordered = sorted(files, key=lambda f: f.path.encode())
    return "".join(f"{f.mode:o} {f.size} {f.digest} {f.path}\n" for f in ordered).encode()


def tree_digest(files: Iterable[LocalFile]) -> str:
    return hashlib.sha256(canonical_manifest(files)).hexdigest()
