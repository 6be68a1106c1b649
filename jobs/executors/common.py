"""What the backends whose jobs outlive their launcher share: the job's environment, the
detached process that watches each job, the lease it enforces, and the exit record it leaves.

Each such backend keeps a state directory per job. A watcher process (the local supervisor,
the docker watchdog) holds an exclusive ``flock`` on a lock file there while it lives, which is
how any other process tells a watched job from one whose watcher died (no pid that could be
reused), and writes ``exit.json`` before it ends.
"""

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

from jobs.executors.base import (
    Executor,
    ExecutorError,
    Exit,
    Handle,
    JobNotFound,
    JobSpec,
    LaunchError,
    Mount,
)
from jobs.executors.logs import follow

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",  # so a Python job's prints reach the logs as they happen
}
KEEPALIVE_CHECK_S = 1.0  # the most a watcher waits between looks at the lease
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --- the job's environment --------------------------------------------------------------------


STATE_DIR = ".executor"  # inside the job's workdir: see StateDir


@dataclass(frozen=True)
class StateDir:
    """A job's state directory (``<workdir>/.executor``), the same on every backend: what the
    job printed, how it ended, the markers of why, and the lock its watcher holds while it
    lives (how another process tells a watched job from one whose watcher died)."""

    root: Path

    @property
    def log(self) -> Path:
        return self.root / "output.log"

    @property
    def exit(self) -> Path:
        return self.root / "exit.json"

    @property
    def stopped(self) -> Path:
        return self.root / "stop-requested"

    @property
    def timed_out(self) -> Path:
        return self.root / "timed-out"

    @property
    def lock(self) -> Path:
        return self.root / "watcher.lock"

    @property
    def keepalive(self) -> Path:
        """The lease: its agent touches it while it watches the job."""
        return self.root / "keepalive"

    @property
    def tmp(self) -> Path:
        """The local backend's private /tmp."""
        return self.root / "tmp"

    @property
    def sdk(self) -> Path:
        """On the PYTHONPATH of a local job without a sandbox: holds a link named ``ferry``."""
        return self.root / "sdk"


# After SIGKILL a job ends at once unless stuck in the kernel (a dead NFS server, say).
KILL_WAIT_S = 30.0


class WatchedJob(Protocol):
    """A launched job as a backend with a watcher process sees it, from any process."""

    @property
    def paths(self) -> StateDir: ...

    def ended(self) -> Exit | None: ...

    def signal(self, signum: int) -> None: ...


class WatchedExecutor(Executor):
    """The part of the contract that backends whose every job has a watcher process (writing
    the job's ``StateDir``) share: the log from its file, the end from its record, stop by
    signals with a marker so the end is recorded as stopped."""

    @abstractmethod
    def _job(self, handle: Handle) -> WatchedJob:
        """The job ``handle`` names; JobNotFound once it was cleaned up."""

    def _new_state_dir(self, spec: JobSpec) -> StateDir:
        """The job's state directory, made now: a job is launched once in its workdir, with
        every mount there to be mounted."""
        for mount in spec.mounts:
            if not mount.source.is_dir():
                raise LaunchError(
                    f"{mount.target} cannot be mounted: {mount.source} is no directory."
                )
        paths = StateDir(spec.workdir / STATE_DIR)
        try:
            paths.root.mkdir(parents=True)
        except FileExistsError:
            raise LaunchError(f"Job {spec.job_id} was launched in {spec.workdir} before.") from None
        return paths

    def logs(self, handle: Handle) -> Iterator[bytes]:
        job = self._job(handle)
        return follow(job.paths.log, finished=lambda: job.ended() is not None)

    def wait(self, handle: Handle, timeout: float | None = None) -> Exit | None:
        return wait_for(self._job(handle).ended, timeout)

    def stop(self, handle: Handle, grace_s: float) -> None:
        try:
            job = self._job(handle)
        except JobNotFound:
            return  # cleaned up: it ended long ago
        if (ended := job.ended()) is not None:
            self._stop_ended(job, ended)
            return
        job.paths.stopped.touch()
        job.signal(signal.SIGTERM)
        if self.wait(handle, grace_s) is not None:
            return
        job.signal(signal.SIGKILL)
        if self.wait(handle, KILL_WAIT_S) is None:
            raise ExecutorError(f"Job {handle.job_id} still runs {KILL_WAIT_S:.0f}s after SIGKILL.")

    def _stop_ended(self, job: WatchedJob, ended: Exit) -> None:
        """Stop, for a job already ended: nothing to do, unless the backend's jobs can run on
        after their watcher died (then ``ended`` is lost: code None)."""


def job_env(
    spec: JobSpec,
    code: str,
    tmp: str,
    mounts: Callable[[Mount], str],
    sdk: str | None = None,
    gpus: tuple[int, ...] | None = None,
) -> dict[str, str]:
    """A clean environment: the basics, then the spec's, then what Ferry decides, which the
    spec cannot override (a job never sees GPUs it was not given). ``mounts`` says where the
    job finds a mount; ``sdk``: the directory holding the ferry package, first on the job's
    PYTHONPATH, then ``spec.python_paths``, then the job's own. ``gpus``: the job's GPUs as it
    numbers them (by default the host's indices; a container sees its own from 0)."""
    env = {**BASE_ENV, "HOME": tmp, "TMPDIR": tmp, **spec.env}
    by_target = {mount.target: mount for mount in spec.mounts}
    ours = [sdk, *(mounts(by_target[target]) for target in spec.python_paths)]
    if any(ours):
        env["PYTHONPATH"] = ":".join(filter(None, [*ours, spec.env.get("PYTHONPATH")]))
    visible = spec.resources.gpus if gpus is None else gpus
    env.update(
        FERRY_JOB_ID=spec.job_id,
        FERRY_CODE=code,
        # Empty, never unset, without GPUs: unset would let CUDA see every GPU there is.
        CUDA_VISIBLE_DEVICES=",".join(str(index) for index in visible),
        # CUDA counts fastest-first unless told otherwise; the allocation counts as NVML does.
        CUDA_DEVICE_ORDER="PCI_BUS_ID",
    )
    env.update({mount.env_name: mounts(mount) for mount in spec.mounts})
    return env


def sdk_package() -> Path | None:
    """The directory of the ``ferry`` package this process would import, which jobs are shown;
    None where there is none (the SDK is a convenience: a job runs without it)."""
    spec = importlib.util.find_spec("ferry")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        return None
    package = Path(locations[0]).resolve()
    # A namespace package (a stray ferry/ directory without __init__) is not the SDK.
    return package if (package / "__init__.py").is_file() else None


# --- the watcher process ----------------------------------------------------------------------


def python_main(module: str, function: str) -> str:
    """``python -I -c`` code for a watcher that runs ``module.function()`` from this checkout,
    whatever the launcher's working directory and PYTHONPATH. It imports first, then waits on
    stdin for its job (``become_watcher``): so it can be started before there is a job."""
    return (
        f"import sys; sys.path.insert(0, {str(_PROJECT_ROOT)!r}); "
        f"from {module} import {function}; "
        f"from jobs.executors.common import become_watcher; become_watcher() and {function}()"
    )


def become_watcher() -> bool:
    """In a watcher started ahead of its job: wait for the job's state directory and log (the
    first line on stdin), then live in them: the log takes this process's output, the state
    directory is its working directory and ``sys.argv[1]``, the reply fd ``sys.argv[2]``.
    False where stdin closed first: no job came, and the process should end."""
    line = sys.stdin.buffer.readline()
    if not line:
        return False
    job = json.loads(line)
    log = os.open(job["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(job["state_dir"])
    sys.argv[1:] = [job["state_dir"], sys.argv[1]]
    return True


class _Spares:
    """One idle watcher per watcher program, started ahead of the job that will need it.

    A watcher's interpreter and imports take a tenth of a second or more, which the launcher
    would otherwise wait for on every job. The spare waits, imported, for its job on stdin; a
    new one is started once the launch it served is over, so that it starts while the job runs.
    A spare whose launcher dies sees its stdin close and ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        os.register_at_fork(after_in_child=self._forget)

    def take(self, main: str) -> tuple[subprocess.Popen[bytes], int]:
        """A watcher for ``main`` and the fd it answers on: the spare if it is alive."""
        with self._lock:
            spare = self._ready.pop(main, None)
        if spare is not None:
            if spare[0].poll() is None:
                return spare
            self._close(spare)
        return self._start(main)

    def refill(self, main: str) -> None:
        """Start the next spare for ``main``, unless one waits already."""
        with self._lock:
            if main in self._ready:
                return
        spare = self._start(main)
        with self._lock:
            if main not in self._ready:
                self._ready[main] = spare
                return
        self._close(spare)

    @staticmethod
    def _start(main: str) -> tuple[subprocess.Popen[bytes], int]:
        reply_read, reply_write = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", main, str(reply_write)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # until its job's log takes over
                stderr=subprocess.DEVNULL,
                pass_fds=(reply_write,),
                start_new_session=True,  # not ours to lose: it survives this process
                cwd="/",
            )
        except BaseException:
            os.close(reply_read)
            raise
        finally:
            os.close(reply_write)
        # Reap it when it ends, so no zombie lingers in a long-lived agent.
        threading.Thread(target=process.wait, name="ferry-watcher-reaper", daemon=True).start()
        return process, reply_read

    @staticmethod
    def _close(spare: tuple[subprocess.Popen[bytes], int]) -> None:
        """Let a spare go: its stdin closes empty, and it ends without doing anything."""
        process, replies = spare
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        os.close(replies)

    def _forget(self) -> None:
        """In a forked child: the parent's spares are the parent's (this copy of their pipes
        closes, theirs stays)."""
        self._lock = threading.Lock()
        spares, self._ready = self._ready, {}
        for spare in spares.values():
            self._close(spare)


_SPARES = _Spares()


class Watcher:
    """A detached watcher process (see ``python_main``) that outlives its launcher. It is
    started before it is needed, or was waiting already (``_Spares``), so that its interpreter
    starts while the launcher prepares the job; it is told its state directory and log at
    once, and ``send`` then gives it its plan on stdin (so secrets never touch disk) and
    returns its one-line JSON reply, sent once the job runs or failed to start. Its own output
    goes to the job's log, where a crash shows."""

    def __init__(self, main: str, state_dir: Path, log: Path) -> None:
        self._main = main
        self._process, self._replies = _SPARES.take(main)
        assert self._process.stdin is not None
        job = {"state_dir": str(state_dir), "log": str(log)}
        with contextlib.suppress(BrokenPipeError):  # it died: send() says so
            self._process.stdin.write(json.dumps(job).encode() + b"\n")
            self._process.stdin.flush()

    def send(self, plan: Mapping[str, object]) -> dict[str, Any]:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError), self._process.stdin:
            self._process.stdin.write(json.dumps(plan).encode())
        with os.fdopen(self._replies, "rb") as replies:
            line = replies.readline()  # ends when the watcher answers or dies
        _SPARES.refill(self._main)
        if not line:
            return {"error": "it ended before starting the job"}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def abandon(self) -> None:
        """No plan after all: its stdin closes empty, and it ends without doing anything."""
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        os.close(self._replies)


def start_watcher(
    main: str, state_dir: Path, log: Path, plan: Mapping[str, object]
) -> dict[str, Any]:
    """Start a watcher and give it ``plan`` at once; its reply (see ``Watcher``)."""
    return Watcher(main, state_dir, log).send(plan)


def answer(fd: int, reply: Mapping[str, object]) -> None:
    """The watcher's one answer to its launcher."""
    with os.fdopen(fd, "wb") as stream:
        stream.write(json.dumps(reply).encode() + b"\n")


def hold_lock(path: Path) -> None:
    """Take the watcher's lock for the rest of this process's life: its fd is never closed
    (and never collected), so the lock goes only when the process does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)


def lock_held(path: Path) -> bool:
    """Whether a watcher still holds ``path``: it holds an exclusive lock until it ends."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: probes never block probes
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# --- the exit record --------------------------------------------------------------------------


class ExitRecord(TypedDict):
    code: int | None
    signal: int | None
    timed_out: bool
    stopped: bool
    oom_killed: bool


def write_exit(path: Path, record: ExitRecord) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    partial.replace(path)  # readers see the whole record or none


def read_exit(path: Path) -> Exit | None:
    try:
        record: ExitRecord = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return Exit(
        record["code"],
        record["signal"],
        timed_out=record["timed_out"],
        stopped=record["stopped"],
        oom_killed=record.get("oom_killed", False),  # absent in records of older versions
    )


def wait_for(ended: Callable[[], Exit | None], timeout: float | None) -> Exit | None:
    """``ended()`` once it says how the job ended, or None after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while (exit_ := ended()) is None:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        time.sleep(delay if left is None else min(delay, left))
        # Capped low: a job's end is noticed within 20 ms, which is most of what Ferry adds to
        # a short job; a check is a stat and one flock attempt.
        delay = min(delay * 2, 0.02)
    return exit_


# --- the keepalive lease ----------------------------------------------------------------------


def lease_expired(lease: Path, keepalive_s: float, ended: threading.Event) -> bool:
    """Block until the job ends (False) or ``lease`` has not changed for ``keepalive_s`` (True).
    Counted on this process's monotonic clock from when a change was seen, not from the mtime
    itself: a wall clock set forward (NTP) must not stop a watched job."""
    seen, since = _mtime_ns(lease), time.monotonic()
    while not ended.wait(min(KEEPALIVE_CHECK_S, keepalive_s / 4)):
        if (mtime := _mtime_ns(lease)) != seen:
            seen, since = mtime, time.monotonic()
        elif time.monotonic() - since >= keepalive_s:
            return True
    return False


def unwatched(keepalive_s: float) -> str:
    """What the log says of a job stopped for want of keepalives."""
    return f"stopped: nothing watched this job for {keepalive_s:g} s (its agent is gone)"


def renew_lease(lease: Path) -> None:
    # Only an existing lease is renewed: cleanup may remove it at any moment.
    with contextlib.suppress(FileNotFoundError):
        os.utime(lease)


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


# --- the log ----------------------------------------------------------------------------------


def say(log: Path, message: str) -> None:
    """Add a line of Ferry's own to the job's log, on a line of its own even if the job is
    half-way through one. One write to a file opened for appending, as every writer of the
    log has it: it lands whole, between the job's writes, never inside one."""
    fd = os.open(log, os.O_RDWR | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        mid_line = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, b"\n" * mid_line + f"[ferry] {message}\n".encode())
    finally:
        os.close(fd)


def tail(path: Path, size: int = 2000) -> str:
    with path.open("rb") as stream:
        stream.seek(max(0, stream.seek(0, os.SEEK_END) - size))
        return stream.read().decode(errors="replace")
