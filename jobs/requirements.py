"""A job's ``ferry_requirements.txt``, installed before its command and kept for the next run.

FloydHub installed ``floyd_requirements.txt`` from the job's code before running it; Ferry reads
``ferry_requirements.txt`` first and FloydHub's name otherwise. The packages are installed once
per (executor, image, pip arguments, file content) into ``FERRY_AGENT_DIR/deps/<sha256>``, which
every later job with the same key gets read-only at ``/ferry/deps``, on its ``PYTHONPATH``:

- the install is a job of its own, run by the job's executor in the job's image (so compiled
  wheels match the Python that imports them), with the network on and only a fresh directory
  writable, at ``/ferry/deps``: pip installs ``--target`` there;
- it installs into a temporary directory that is renamed into place only when pip succeeded, so
  a cache directory is always complete, and a failed install leaves nothing behind;
- a lock file per key makes two jobs that need the same packages install them once: the second
  waits for the first and then uses its directory.

The cache is pruned (``prune_deps_cache``) when the agent starts and after each install: entries
no job used for ``FERRY_DEPS_CACHE_MAX_AGE_DAYS`` go, then the least recently used while the
entries take more than ``FERRY_DEPS_CACHE_MAX_GB``. Next to each entry ``<key>`` are its lock file
``<key>.lock``, whose modification time is the entry's last use, and ``<key>.users/``, a record
per job directory the entry was given to. An entry stays while one of those directories exists:
a job's directory lasts as long as the job may run, across restarts of its agent (the local
executor's and Docker's jobs outlive it), which a lock held by the agent would not.

The install runs ``python3 -m pip`` in the image: Ferry's images have it; on the local executor
it is the host's ``python3``, which needs pip (Debian: ``apt-get install python3-pip``).
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from django.conf import settings

from jobs.executors import Executor, ExecutorError, Exit, JobSpec, Mount, Resources

REQUIREMENTS_FILES = ("ferry_requirements.txt", "floyd_requirements.txt")  # first found wins
DEPS_TARGET = "/ferry/deps"  # $FERRY_DEPS in the job
DEPS_DIR = "deps"  # under the agent's directory
# Enough for pip to build an sdist; the install takes no GPU even for a GPU job.
INSTALL_RESOURCES = Resources(cpus=2, memory_mb=4096)
TAIL_BYTES = 3000  # how much of pip's output a failure quotes
LOCK_POLL_S = 0.5
KEY = re.compile(r"[0-9a-f]{64}")  # an entry's name: see deps_key
INSTALL_PREFIX = ".install-"  # + key + "-" + random: an install under way
PRUNE_PREFIX = ".prune-"  # + key + "-" + random: an entry being removed
# A temporary install directory this old was left by an agent that died installing.
STALE_INSTALL_S = 24 * 3600
PRUNE_THREAD = "ferry-deps-prune"

logger = logging.getLogger(__name__)

Log = Callable[[bytes], None]


class RequirementsFailed(Exception):
    """The requirements could not be installed; the message says which file, how pip ended and
    the end of what it printed."""


def requirements_file(code_dir: Path) -> Path | None:
    """The requirements file the job's code holds, or None (none, or one naming nothing)."""
    for name in REQUIREMENTS_FILES:
        path = code_dir / name
        # Not through a link: the agent reads this file, and a link could point at its secrets.
        if path.is_file() and not path.is_symlink():
            return path if _names_something(path.read_bytes()) else None
    return None


def _names_something(content: bytes) -> bool:
    lines = (line.split(b"#", 1)[0].strip() for line in content.splitlines())
    return any(lines)


def install_command(requirements_name: str, pip_args: Sequence[str]) -> str:
    """The shell command that installs the requirements file into the deps directory.

    Paths come from the variables every backend sets ($FERRY_CODE, $FERRY_DEPS): they are
    /ferry/... in a container or sandbox and host paths on the unsandboxed local executor.
    """
    args = " ".join(shlex.quote(arg) for arg in pip_args)
    return (
        "python3 -m pip install --no-cache-dir --disable-pip-version-check --no-input "
        f'--target "$FERRY_DEPS" -r "$FERRY_CODE"/{shlex.quote(requirements_name)} {args}'
    ).rstrip()


def deps_key(executor: Executor, image: str | None, pip_args: Sequence[str], content: bytes) -> str:
    """What decides the installed packages: the interpreter that runs pip (the executor and its
    image), where pip looks (its arguments), and the requirements themselves."""
    header = json.dumps([executor.name, image or "", list(pip_args)]).encode()
    return hashlib.sha256(header + b"\n" + content).hexdigest()


def ensure_requirements(
    executor: Executor,
    *,
    image: str | None,
    code_dir: Path,
    agent_dir: Path,
    log: Log,
    pip_args: Sequence[str] | None = None,
    timeout_s: int | None = None,
    used_by: Path | None = None,
) -> Mount | None:
    """The job's installed requirements as a read-only mount at /ferry/deps, installing them
    first if no earlier job did; None if its code has no requirements file.

    ``log`` gets what the install prints (and a line saying when the cache served instead);
    while pip is quiet, or another job installs the same, it gets ``b""`` at least once a
    second: a chance to heartbeat the job.
    ``pip_args`` (default ``FERRY_PIP_ARGS``) go to pip; ``timeout_s`` (default
    ``FERRY_REQUIREMENTS_TIMEOUT_S``) bounds the install. ``used_by``, the job's directory, keeps
    the entry from being pruned for as long as it exists. Raises RequirementsFailed.
    """
    source = requirements_file(code_dir)
    if source is None:
        return None
    args = tuple(settings.FERRY_PIP_ARGS if pip_args is None else pip_args)
    content = source.read_bytes()
    root = agent_dir / DEPS_DIR
    deps = root / deps_key(executor, image, args, content)
    earlier = deps.is_dir()
    root.mkdir(parents=True, exist_ok=True)
    installed = False
    # A reuse takes the lock too, for a moment: else a pruner could remove the entry between
    # this look and the record that the job uses it.
    with _locked(_lock_path(deps), log):
        if deps.is_dir():
            how = "installed by an earlier job" if earlier else "installed by another job meanwhile"
            log(f"[ferry] {source.name}: {how}, reused\n".encode())
        else:
            timeout = settings.FERRY_REQUIREMENTS_TIMEOUT_S if timeout_s is None else timeout_s
            _install(executor, image, source, args, deps, log, timeout)
            installed = True
        _record_use(deps, used_by)
    if installed:
        prune_deps_cache_soon(agent_dir)
    return Mount(source=deps, target=DEPS_TARGET, read_only=True)


def with_requirements(executor: Executor, spec: JobSpec, *, agent_dir: Path, log: Log) -> JobSpec:
    """``spec`` with its requirements installed (see ``ensure_requirements``) and mounted at
    /ferry/deps, first on its PYTHONPATH after the SDK; ``spec`` itself if it has none."""
    deps = ensure_requirements(
        executor,
        image=spec.image,
        code_dir=spec.code_dir,
        agent_dir=agent_dir,
        log=log,
        used_by=spec.workdir,
    )
    if deps is None:
        return spec
    # replace() checks the new spec as a fresh one would be checked.
    return dataclasses.replace(
        spec, mounts=[*spec.mounts, deps], python_paths=(deps.target, *spec.python_paths)
    )


def prune_deps_cache(
    agent_dir: Path, *, max_bytes: int, max_age_s: float, now: float | None = None
) -> list[Path]:
    """Remove what the requirements cache under ``agent_dir`` can do without; returns the
    directories removed.

    First the entries unused for longer than ``max_age_s``, then the least recently used while
    the entries take more than ``max_bytes`` of disk; then the install directories of agents
    that died installing (a day old), what an interrupted prune left, and the lock files of
    keys without an entry. An entry in use stays, and counts as used ``now`` (seconds since the
    epoch): one whose job directory still exists (see ``ensure_requirements``), or whose lock
    someone holds (an install or a lookup). Does nothing while another prune of it runs.
    """
    root = agent_dir / DEPS_DIR
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    with _pruning(root) as alone:
        if not alone:
            return []
        return _prune_entries(root, max_bytes, max_age_s, now) + _prune_leftovers(root, now)


def prune_deps_cache_soon(agent_dir: Path) -> threading.Thread:
    """``prune_deps_cache`` with the limits of the settings, in a thread of its own: it reads
    every entry and may delete gigabytes, which no job's start should wait for."""
    thread = threading.Thread(
        target=_prune_as_set, args=(agent_dir,), name=PRUNE_THREAD, daemon=True
    )
    thread.start()
    return thread


def _prune_as_set(agent_dir: Path) -> None:
    try:
        prune_deps_cache(
            agent_dir,
            max_bytes=int(settings.FERRY_DEPS_CACHE_MAX_GB * 10**9),
            max_age_s=settings.FERRY_DEPS_CACHE_MAX_AGE_DAYS * 24 * 3600,
        )
    except Exception:  # uncaught, it would reach only the thread's stderr
        logger.exception("pruning the requirements cache under %s failed", agent_dir)


@contextlib.contextmanager
def _locked(path: Path, log: Log) -> Iterator[None]:
    while (lock := _try_lock(path)) is None:
        log(b"")  # another job installs the same: wait, heartbeating as pip would
        time.sleep(LOCK_POLL_S)
    with lock:  # closing it unlocks
        yield


def _try_lock(path: Path) -> TextIO | None:
    """The lock file at ``path``, open and locked exclusively; None while another holds it."""
    # flock belongs to the open file, so threads of one agent exclude each other as processes
    # do.
    while True:
        lock = path.open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return None
        if _is_at(lock, path):
            return lock
        # A pruner removed the file while we waited on it: whoever opens the path now gets
        # another file, so holding this one excludes nobody.
        lock.close()


def _is_at(lock: TextIO, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(lock.fileno())
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def _lock_path(deps: Path) -> Path:
    return deps.with_name(f"{deps.name}.lock")


def _users_path(deps: Path) -> Path:
    return deps.with_name(f"{deps.name}.users")


def _record_use(deps: Path, used_by: Path | None, now: float | None = None) -> None:
    """Stamp the entry's last use; ``used_by`` keeps it while it exists. The caller holds the
    key's lock."""
    now = time.time() if now is None else now
    os.utime(_lock_path(deps), (now, now))
    if used_by is not None:
        users = _users_path(deps)
        users.mkdir(exist_ok=True)
        where = str(used_by.absolute())
        (users / hashlib.sha256(where.encode()).hexdigest()[:16]).write_text(where)


def _in_use(deps: Path) -> bool:
    """Whether a job directory the entry was given to still exists; the records of those gone
    are dropped. The caller holds the key's lock."""
    users = _users_path(deps)
    alive = False
    for record in users.iterdir() if users.is_dir() else []:
        if Path(record.read_text()).is_dir():
            alive = True
        else:
            record.unlink()
    return alive


def _install(
    executor: Executor,
    image: str | None,
    source: Path,
    pip_args: tuple[str, ...],
    deps: Path,
    log: Log,
    timeout_s: int,
) -> None:
    """Run pip as a job of ``executor``, then move what it installed to ``deps``."""
    log(f"[ferry] {source.name}: installing (kept for later runs with the same file)\n".encode())
    prefix = f"{INSTALL_PREFIX}{deps.name}-"
    # Left by an agent that died installing; nobody else installs this key while we hold its lock.
    for stale in deps.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=deps.parent))
    try:
        spec = _install_spec(work, deps.name, image, source, pip_args, timeout_s)
        ended, tail = _run(executor, spec, source.name, log)
        if not ended.succeeded:
            raise RequirementsFailed(_failure(source.name, ended, timeout_s, tail))
        installed = work / "deps"
        installed.chmod(0o755)  # read by jobs of any user; pip wrote the rest with its umask
        installed.rename(deps)  # atomic: the cache directory is whole or absent
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"[ferry] {source.name}: installed\n".encode())


def _install_spec(
    work: Path,
    key: str,
    image: str | None,
    source: Path,
    pip_args: tuple[str, ...],
    timeout_s: int,
) -> JobSpec:
    # Only the requirements file is shown to pip: the cache is keyed on its bytes, so nothing
    # else of this job's code may change what gets installed.
    (work / "code").mkdir()
    shutil.copyfile(source, work / "code" / source.name)
    # The backend makes it writable for the user it runs the install as, as it does a job's
    # output (the docker executor hands it to the container's user).
    installed = work / "deps"
    installed.mkdir()
    return JobSpec(
        job_id=f"deps-{key[:16]}-{secrets.token_hex(4)}",
        image=image,
        command=install_command(source.name, pip_args),
        workdir=work,
        mounts=[Mount(source=installed, target=DEPS_TARGET, read_only=False)],
        env={},
        resources=INSTALL_RESOURCES,
        max_runtime_s=timeout_s,
        network=True,
    )


def _run(executor: Executor, spec: JobSpec, name: str, log: Log) -> tuple[Exit, bytes]:
    """Run ``spec`` to its end, passing its output to ``log``; how it ended, and the output's
    last TAIL_BYTES."""
    try:
        handle = executor.launch(spec)
    except (ExecutorError, OSError, ValueError) as exc:
        raise RequirementsFailed(f"Installing {name} could not start: {exc}") from exc
    try:
        tail = _stream(executor.logs(handle), log)
        ended = executor.wait(handle)
        assert ended is not None  # no timeout given: wait returns once it ended
    finally:
        executor.cleanup(handle)
    return ended, tail


def _stream(chunks: Iterable[bytes], log: Log) -> bytes:
    tail = b""
    for chunk in chunks:
        # Empty ones too (at least one a second while pip is quiet): a long install must not
        # stop the agent heartbeating its job, or the reaper would count the job lost.
        log(chunk)
        tail = (tail + chunk)[-TAIL_BYTES:]
    return tail


def _failure(name: str, ended: Exit, timeout_s: int, tail: bytes) -> str:
    if ended.timed_out:
        how = f"pip ran longer than {timeout_s} s (FERRY_REQUIREMENTS_TIMEOUT_S) and was stopped"
    elif ended.code is not None:
        how = f"pip exited with code {ended.code}"
    elif ended.signal is not None:
        how = f"pip was killed by signal {ended.signal}"
    else:
        how = "pip's end was not recorded"
    lines = tail.decode(errors="replace").rstrip().splitlines()[-20:]
    shown = "\n".join(lines) if lines else "(pip printed nothing)"
    return f"Installing {name} failed: {how}. The end of its output:\n{shown}"


@contextlib.contextmanager
def _pruning(root: Path) -> Iterator[bool]:
    """Whether this is the only prune of the cache at ``root``: two would race to remove the
    same leftovers. The directory itself is the lock, so there is no file to leave behind."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        yield alone
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True)
class _Entry:
    path: Path
    used_at: float
    size: int


def _entries(root: Path) -> list[_Entry]:
    """The cache's entries, least recently used first."""
    found = [
        _Entry(path, _used_at(path), _disk_bytes(path))
        for path in root.iterdir()
        if KEY.fullmatch(path.name) and path.is_dir()
    ]
    return sorted(found, key=lambda entry: entry.used_at)


def _used_at(deps: Path) -> float:
    try:
        return _lock_path(deps).stat().st_mtime
    except FileNotFoundError:  # not made by ensure_requirements: its install is its last use
        return deps.stat().st_mtime


def _disk_bytes(path: Path) -> int:
    """What ``path`` takes on disk, as ``du`` counts it: an install is many small files, each
    taking whole blocks."""
    total = path.lstat().st_blocks * 512
    for parent, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            total += os.lstat(os.path.join(parent, name)).st_blocks * 512
    return total


def _prune_entries(root: Path, max_bytes: int, max_age_s: float, now: float) -> list[Path]:
    entries = _entries(root)
    total = sum(entry.size for entry in entries)
    removed = []
    for entry in entries:
        idle_s = now - entry.used_at
        if idle_s > max_age_s:
            why = f"unused for {idle_s / 86400:.1f} days"
        elif total > max_bytes:
            why = (
                f"the least recently used (unused for {idle_s / 86400:.1f} days) while the "
                f"cache took {total / 10**9:.2f} GB of its {max_bytes / 10**9:.2f} GB"
            )
        else:
            break  # the rest were used later, and they fit
        if _remove_entry(entry, now):
            total -= entry.size
            removed.append(entry.path)
            logger.info("removed %s from the requirements cache: %s", entry.path, why)
    return removed


def _remove_entry(entry: _Entry, now: float) -> bool:
    """Remove ``entry`` unless it is in use (then it counts as used ``now``)."""
    lock_path = _lock_path(entry.path)
    lock = _try_lock(lock_path)
    if lock is None:
        return False  # installed or looked up right now
    with lock:
        if _used_at(entry.path) != entry.used_at:
            return False  # used since the scan
        if _in_use(entry.path):
            _record_use(entry.path, None, now)  # so that it is not the first to go once free
            return False
        aside = entry.path.with_name(f"{PRUNE_PREFIX}{entry.path.name}-{secrets.token_hex(4)}")
        # Atomic: a lookup finds the entry whole or not at all, never half deleted.
        entry.path.rename(aside)
        shutil.rmtree(_users_path(entry.path), ignore_errors=True)
        lock_path.unlink()  # while locked: see _try_lock
    shutil.rmtree(aside, ignore_errors=True)
    return True


def _prune_leftovers(root: Path, now: float) -> list[Path]:
    removed = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(PRUNE_PREFIX):
            # An entry renamed aside by a prune that ended before removing it: nothing uses it,
            # and no other prune runs.
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s, which an interrupted prune left", path)
            removed.append(path)
        elif path.name.startswith(INSTALL_PREFIX) and _remove_stale_install(path, now):
            logger.info("removed %s, which an agent left dying mid-install", path)
            removed.append(path)
        elif path.suffix == ".lock" and KEY.fullmatch(path.stem):
            _remove_orphan_lock(path)
    return removed


def _remove_stale_install(work: Path, now: float) -> bool:
    if now - work.lstat().st_mtime <= STALE_INSTALL_S:
        return False
    deps = work.with_name(work.name.removeprefix(INSTALL_PREFIX)[:64])
    lock = _try_lock(_lock_path(deps))
    if lock is None:
        return False  # still installing: a long install, not a dead one
    with lock:
        shutil.rmtree(work, ignore_errors=True)
        _forget(deps)
    return True


def _remove_orphan_lock(lock_path: Path) -> None:
    deps = lock_path.with_suffix("")
    if deps.exists():
        return
    lock = _try_lock(lock_path)
    if lock is not None:
        with lock:
            _forget(deps)


def _forget(deps: Path) -> None:
    """Remove the lock file and records of a key without an entry (its install failed, or
    died). The caller holds the key's lock."""
    if not deps.exists():  # looked at again: it may have been installed meanwhile
        shutil.rmtree(_users_path(deps), ignore_errors=True)
        _lock_path(deps).unlink(missing_ok=True)
