"""The local side of a dataset directory: which files, their modes, and their SHA-256s.

Hashes are cached in ``<dir>/.ferry/hashes.json`` keyed by (path, size, mtime_ns), so a second
upload of a large unchanged tree reads nothing.
"""

import fnmatch
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import LocalError

FERRY_DIR = ".ferry"
SKIPPED_DIRS = {".git", FERRY_DIR}
HASH_CACHE = "hashes.json"
CHUNK = 1024 * 1024
HASH_THREADS = 8
# A file changed twice within the filesystem's timestamp granularity keeps its mtime; entries
# this fresh are hashed again next time instead of trusted from the cache (as git does).
RACY_NS = 2_000_000_000
MODE_EXECUTABLE, MODE_REGULAR = 0o755, 0o644


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative, with forward slashes
    size: int
    mode: int
    digest: str


@dataclass(frozen=True)
class Candidate:
    path: str
    absolute: Path
    size: int
    mtime_ns: int
    mode: int


@dataclass(frozen=True)
class Scan:
    files: list[LocalFile]
    skipped_links: list[str]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def ignore_patterns(root: Path) -> list[str]:
    """``.ferryignore`` if there is one, else ``.gitignore``: simple fnmatch patterns."""
    for name in (".ferryignore", ".gitignore"):
        path = root / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            # Negations ("!x") are not supported yet: skipping them only uploads more, never less.
            return [s for s in (line.strip() for line in lines) if s and s[0] not in "#!"]
    return []


def is_ignored(path: str, is_dir: bool, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern:  # anchored at the root, as in .gitignore
            if fnmatch.fnmatchcase(path, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def candidates(root: Path) -> tuple[list[Candidate], list[str]]:
    """The files to upload, and the symlinks skipped; a symlink out of ``root`` is an error."""
    root = root.resolve()
    patterns = ignore_patterns(root)
    found: list[Candidate] = []
    links: list[str] = []
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(directory)
        relative_dir = here.relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else f"{relative_dir}/"
        kept = []
        for name in sorted(dirnames):
            path = prefix + name
            if name in SKIPPED_DIRS or is_ignored(path, True, patterns):
                continue
            if (here / name).is_symlink():
                _check_link(root, here / name, path)
                links.append(path)
            else:
                kept.append(name)
        dirnames[:] = kept  # os.walk descends only into these
        for name in sorted(filenames):
            path = prefix + name
            absolute = here / name
            info = absolute.lstat()
            if is_ignored(path, False, patterns):
                continue
            if stat.S_ISLNK(info.st_mode):
                _check_link(root, absolute, path)
                links.append(path)
            elif stat.S_ISREG(info.st_mode):
                mode = MODE_EXECUTABLE if info.st_mode & 0o111 else MODE_REGULAR
                found.append(Candidate(path, absolute, info.st_size, info.st_mtime_ns, mode))
    return found, links


def _check_link(root: Path, link: Path, path: str) -> None:
    target = link.resolve()
    if target != root and root not in target.parents:
        raise LocalError(
            f"{path} is a symlink to {os.readlink(link)}, outside the directory; "
            "Ferry uploads no files from outside it (copy the file in, or remove the link)"
        )


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def scan(root: Path, on_bytes: Callable[[int], None] | None = None) -> Scan:
    """Every file under ``root`` with its digest, from the cache where it is still good."""
    found, links = candidates(root)
    cache = _read_cache(root)
    started_ns = time.time_ns()

    def digest_of(candidate: Candidate) -> str:
        cached = cache.get(candidate.path)
        key = (candidate.size, candidate.mtime_ns)
        if cached and (cached.get("size"), cached.get("mtime_ns")) == key:
            return str(cached["digest"])
        return sha256_file(candidate.absolute, on_bytes)

    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        digests = list(pool.map(digest_of, found))
    files = [LocalFile(c.path, c.size, c.mode, d) for c, d in zip(found, digests, strict=True)]
    fresh = {
        c.path: {"size": c.size, "mtime_ns": c.mtime_ns, "digest": d}
        for c, d in zip(found, digests, strict=True)
        if started_ns - c.mtime_ns > RACY_NS
    }
    _write_cache(root, fresh)
    return Scan(files, links)


def _read_cache(root: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((root / FERRY_DIR / HASH_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a missing or damaged cache only costs a rehash
    return data if isinstance(data, dict) else {}


def _write_cache(root: Path, entries: dict[str, dict[str, object]]) -> None:
    directory = root / FERRY_DIR
    directory.mkdir(exist_ok=True)
    temporary = directory / f"{HASH_CACHE}.tmp"
    temporary.write_text(json.dumps(entries), encoding="utf-8")
    temporary.replace(directory / HASH_CACHE)  # never leave half a cache behind


def find_link(start: Path, name: str) -> tuple[dict[str, str], Path] | None:
    """The link file ``.ferry/<name>`` of ``start`` or its nearest parent, and that directory:
    how a directory remembers its dataset or project (``ferry data init``, ``ferry init``)."""
    for directory in (start, *start.parents):
        path = directory / FERRY_DIR / name
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8")), directory
    return None


def write_link(directory: Path, name: str, body: dict[str, str]) -> None:
    (directory / FERRY_DIR).mkdir(exist_ok=True)
    (directory / FERRY_DIR / name).write_text(json.dumps(body, indent=2) + "\n", "utf-8")
