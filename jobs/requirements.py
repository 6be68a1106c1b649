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

The install runs ``python3 -m pip`` in the image: Ferry's images have it; on the local executor
it is the host's ``python3``, which needs pip (Debian: ``apt-get install python3-pip``).
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from django.conf import settings

from jobs.executors import Executor, ExecutorError, Exit, JobSpec, Mount, Resources

REQUIREMENTS_FILES = ("ferry_requirements.txt", "floyd_requirements.txt")  # first found wins
DEPS_TARGET = "/ferry/deps"  # $FERRY_DEPS in the job
DEPS_DIR = "deps"  # under the agent's directory
# Enough for pip to build an sdist; the install takes no GPU even for a GPU job.
INSTALL_RESOURCES = Resources(cpus=2, memory_mb=4096)
TAIL_BYTES = 3000  # how much of pip's output a failure quotes
LOCK_POLL_S = 0.5

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
) -> Mount | None:
    """The job's installed requirements as a read-only mount at /ferry/deps, installing them
    first if no earlier job did; None if its code has no requirements file.

    ``log`` gets what the install prints (and a line saying when the cache served instead);
    while pip is quiet, or another job installs the same, it gets ``b""`` at least once a
    second: a chance to heartbeat the job.
    ``pip_args`` (default ``FERRY_PIP_ARGS``) go to pip; ``timeout_s`` (default
    ``FERRY_REQUIREMENTS_TIMEOUT_S``) bounds the install. Raises RequirementsFailed.
    """
    source = requirements_file(code_dir)
    if source is None:
        return None
    args = tuple(settings.FERRY_PIP_ARGS if pip_args is None else pip_args)
    content = source.read_bytes()
    root = agent_dir / DEPS_DIR
    deps = root / deps_key(executor, image, args, content)
    mount = Mount(source=deps, target=DEPS_TARGET, read_only=True)
    if deps.is_dir():
        log(f"[ferry] {source.name}: installed by an earlier job, reused\n".encode())
        return mount
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{deps.name}.lock", log):
        if deps.is_dir():  # installed by the job we waited for
            log(f"[ferry] {source.name}: installed by another job meanwhile, reused\n".encode())
            return mount
        timeout = settings.FERRY_REQUIREMENTS_TIMEOUT_S if timeout_s is None else timeout_s
        _install(executor, image, source, args, deps, log, timeout)
    return mount


def with_requirements(executor: Executor, spec: JobSpec, *, agent_dir: Path, log: Log) -> JobSpec:
    """``spec`` with its requirements installed (see ``ensure_requirements``) and mounted at
    /ferry/deps, first on its PYTHONPATH after the SDK; ``spec`` itself if it has none."""
    deps = ensure_requirements(
        executor, image=spec.image, code_dir=spec.code_dir, agent_dir=agent_dir, log=log
    )
    if deps is None:
        return spec
    # replace() checks the new spec as a fresh one would be checked.
    return dataclasses.replace(
        spec, mounts=[*spec.mounts, deps], python_paths=(deps.target, *spec.python_paths)
    )


@contextlib.contextmanager
def _locked(path: Path, log: Log) -> Iterator[None]:
    # flock belongs to the open file, so threads of one agent exclude each other as processes
    # do. The file stays: removing it could let a third job lock a new file while one waits.
    with path.open("a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                log(b"")  # another job installs the same: wait, heartbeating as pip would
                time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    prefix = f".install-{deps.name}-"
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
