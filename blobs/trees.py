"""Tree manifests: the rules for paths, and the canonical form a tree's digest is taken of."""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from blobs.digests import is_digest

MAX_PATH_LENGTH = 4096
MAX_SEGMENT_LENGTH = 255
FILE_MODES = frozenset({0o644, 0o755})


class InvalidManifest(ValueError):
    """A manifest breaks a rule; the message names the path and what to change."""


@dataclass(frozen=True)
class Entry:
    path: str
    digest: str
    size: int
    mode: int = 0o644


def check_path(path: str) -> None:
    """Refuse paths that could escape the tree or mean different things on different systems."""
    if not path:
        raise InvalidManifest("A path is empty.")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidManifest(f"{path[:80]!r}…: paths may be at most {MAX_PATH_LENGTH} long.")
    if path.startswith("/"):
        raise InvalidManifest(f"{path!r}: paths are relative to the tree; drop the leading '/'.")
    if "\\" in path:
        raise InvalidManifest(f"{path!r}: separate directories with '/', not '\\'.")
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise InvalidManifest(f"{path!r}: paths may not contain control characters.")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidManifest(f"{path!r}: paths must be valid Unicode.") from exc
    for segment in path.split("/"):
        _check_segment(path, segment)


def _check_segment(path: str, segment: str) -> None:
    if segment in ("", ".", ".."):
        raise InvalidManifest(
            f"{path!r}: empty, '.' and '..' path segments are not allowed; "
            "send normalised relative paths."
        )
    if len(segment.encode()) > MAX_SEGMENT_LENGTH:
        raise InvalidManifest(f"{path!r}: a name may be at most {MAX_SEGMENT_LENGTH} bytes.")


def check_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Check every entry and the set as a whole; return them in canonical (path) order."""
    listed = list(entries)
    for entry in listed:
        check_path(entry.path)  # first: sorting encodes the paths
    ordered = sorted(listed, key=lambda entry: entry.path.encode())
    seen: set[str] = set()
    for entry in ordered:
        if not is_digest(entry.digest):
            raise InvalidManifest(f"{entry.path!r}: the digest must be 64 lowercase hex digits.")
        if entry.size < 0:
            raise InvalidManifest(f"{entry.path!r}: the size may not be negative.")
        if entry.mode not in FILE_MODES:
            raise InvalidManifest(f"{entry.path!r}: the mode must be 644 or 755 (octal).")
        if entry.path in seen:
            raise InvalidManifest(f"{entry.path!r} appears twice.")
        seen.add(entry.path)
    _check_no_file_is_a_directory(seen)
    return ordered


def _check_no_file_is_a_directory(paths: set[str]) -> None:
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in paths:
                raise InvalidManifest(f"{parent!r} is a file, so {path!r} cannot be inside it.")


def canonical_manifest(entries: Iterable[Entry]) -> bytes:
    """One line per file, sorted by path: ``<mode octal> <size> <digest> <path>\\n``.

    Paths come last and may not contain newlines, so the form is unambiguous.
    """
    lines = (
        f"{entry.mode:o} {entry.size} {entry.digest} {entry.path}\n"
        for entry in check_entries(entries)
    )
    return "".join(lines).encode()


def tree_digest(entries: Iterable[Entry]) -> str:
    return hashlib.sha256(canonical_manifest(entries)).hexdigest()
