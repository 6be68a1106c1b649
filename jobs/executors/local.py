"""The ``local`` executor: each job a process tree on this machine, in a bubblewrap sandbox
where ``bwrap`` works.

A job runs as ``launch() → supervisor → [bwrap →] /bin/sh -c COMMAND``. The supervisor is a
small Python process in its own session, so the job outlives the process that launched it and
any process can find it again from the handle's state (the job's directory and process group):

- it starts the command in a session (and process group) of its own, everything the job writes
  going to one log file, which ``logs()`` follows;
- it enforces the max runtime, then, when the command ends, kills what the job left behind (as
  the end of a container would) and writes ``exit.json``;
- where the spec sets ``keepalive_s``, it stops the job once the lease file (``keepalive``,
  touched by ``keepalive()``) has not changed for that long: its agent is gone, and the server
  has freed the job's GPUs;
- it holds an exclusive ``flock`` on ``watcher.lock`` while it lives, which is how another
  process tells a running job from one whose supervisor died (no pid that could be reused).

``stop()`` writes a marker (so the end is recorded as stopped), then signals the process group.

The job's Python finds the Ferry SDK (the ``ferry`` package this process imports) on its
``PYTHONPATH``: bound read-only at /ferry/sdk/ferry in the sandbox, linked from the state
directory (``sdk/ferry``) without one.

With bwrap the job sees /usr, /etc and friends read-only, its mounts at /ferry/... and
/floyd/..., a private /tmp, no capabilities, and no network when the spec says so. Without it
the job runs on the host as the agent's user: mounts are the host paths named by FERRY_* vars,
and nothing stops it writing to its inputs — see ``Executor.sandboxed``.
"""

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, TypedDict

from jobs.executors.base import (
    CODE_TARGET,
    DEFAULT_STOP_GRACE_S,
    FLOYD_CODE_TARGET,
    SDK_TARGET,
    ExecutorError,
    Exit,
    Handle,
    JobNotFound,
    JobSpec,
    LaunchError,
    Mount,
)
from jobs.executors.common import (
    ExitRecord,
    StateDir,
    WatchedExecutor,
    answer,
    hold_lock,
    job_env,
    lease_expired,
    lock_held,
    python_main,
    read_exit,
    renew_lease,
    say,
    sdk_package,
    start_watcher,
    tail,
    unwatched,
    write_exit,
)

SANDBOX_TMP = "/tmp"
SANDBOX_START_S = 60.0  # mounting can stall on a slow filesystem, but not for ever
_SUPERVISOR_MAIN = python_main("jobs.executors.local", "supervise")


class _Plan(TypedDict):
    """What the supervisor runs; sent on its stdin, so secrets in the env never touch disk."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    sandboxed: bool
    max_runtime_s: int | None
    keepalive_s: float | None
    grace_s: float


class LocalExecutor(WatchedExecutor):
    name = "local"

    def __init__(
        self, sandbox: bool | None = None, timeout_grace_s: float = DEFAULT_STOP_GRACE_S
    ) -> None:
        """``sandbox``: None uses bwrap where it works; True insists on it; False never uses it."""
        problem = bwrap_problem() if sandbox is not False else None
        if sandbox and problem:
            raise ExecutorError(f"No sandbox for the local executor: {problem}")
        self._sandbox = problem is None if sandbox is None else sandbox
        self._timeout_grace_s = timeout_grace_s

    @property
    def sandboxed(self) -> bool:
        return self._sandbox

    @classmethod
    def available(cls) -> bool:
        return os.name == "posix" and Path("/bin/sh").exists()

    def launch(self, spec: JobSpec) -> Handle:
        if not spec.network and not self._sandbox:
            raise ValueError(
                "This job must run without network, which the local executor can only enforce "
                "in a sandbox: install bubblewrap, or run it on the docker executor."
            )
        paths = self._new_state_dir(spec)
        paths.tmp.mkdir()
        paths.keepalive.touch()  # the lease runs from now
        spec.code_dir.mkdir(exist_ok=True)
        sdk = sdk_package()
        try:
            if sdk is not None and not self._sandbox:
                paths.sdk.mkdir()
                (paths.sdk / "ferry").symlink_to(sdk, target_is_directory=True)
            pgid = _start_supervisor(paths, self._plan(spec, paths, sdk))
        except BaseException:
            shutil.rmtree(paths.root, ignore_errors=True)  # so it can be launched again
            raise
        return Handle(self.name, spec.job_id, {"state_dir": str(paths.root), "pgid": pgid})

    def cleanup(self, handle: Handle) -> None:
        try:
            job = self._job(handle)
        except JobNotFound:
            return
        self.stop(handle, grace_s=0)
        shutil.rmtree(job.paths.root, ignore_errors=True)

    def keepalive(self, handle: Handle) -> None:
        try:
            job = self._job(handle)
        except JobNotFound:
            return
        renew_lease(job.paths.keepalive)

    def process_id(self, handle: Handle) -> int | None:
        # The command leads its own process group: its pid is the group's id.
        pgid = handle.data.get("pgid")
        return pgid if isinstance(pgid, int) else None

    def _job(self, handle: Handle) -> "_Job":
        self.check_handle(handle)
        state_dir, pgid = handle.data.get("state_dir"), handle.data.get("pgid")
        if not isinstance(state_dir, str) or not isinstance(pgid, int):
            raise ValueError(f"Not a local job's handle: {handle.to_state()!r}")
        job = _Job(StateDir(Path(state_dir)), pgid)
        if not job.paths.exit.exists() and not job.paths.lock.exists():
            raise JobNotFound(f"No local job {handle.job_id} at {state_dir} (cleaned up?).")
        return job

    def _plan(self, spec: JobSpec, paths: StateDir, sdk: Path | None) -> _Plan:
        shell = ["/bin/sh", "-c", spec.command]
        if self._sandbox:
            argv = [*sandbox_args(spec, paths.tmp, sdk), "--", *shell]
            sdk_path = str(SDK_TARGET) if sdk else None
            env = job_env(spec, str(CODE_TARGET), SANDBOX_TMP, _in_sandbox, sdk_path)
        else:
            argv = shell
            sdk_path = str(paths.sdk) if sdk else None
            env = job_env(spec, str(spec.code_dir), str(paths.tmp), _on_host, sdk_path)
        return {
            "argv": argv,
            "env": env,
            "cwd": str(spec.code_dir),
            "sandboxed": self._sandbox,
            "max_runtime_s": spec.max_runtime_s,
            "keepalive_s": spec.keepalive_s,
            "grace_s": self._timeout_grace_s,
        }


def _in_sandbox(mount: Mount) -> str:
    return mount.target


def _on_host(mount: Mount) -> str:
    return str(mount.source)


# --- the sandbox ------------------------------------------------------------------------------


@cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox jobs here, or None if it can (asked once per process)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    probe = [bwrap, "--ro-bind", "/", "/", "--cap-drop", "ALL", "--new-session", "/bin/true"]
    try:
        result = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not run: {exc}"
    if result.returncode != 0:
        # Typically no user namespaces for unprivileged users in this container or kernel.
        return f"bwrap cannot create a sandbox here: {result.stderr.decode(errors='replace')}"
    return None


def sandbox_args(spec: JobSpec, tmp: Path, sdk: Path | None = None) -> list[str]:
    """bwrap's arguments for the job, up to (not including) the command; ``sdk`` is the ferry
    package's directory, shown read-only in /ferry/sdk."""
    bwrap = shutil.which("bwrap") or "bwrap"
    # --new-session: the command leads a process group without bwrap in it. bwrap dies of
    # SIGTERM, and with --die-with-parent its death SIGKILLs the command before a trap could run,
    # so stop() must signal the command's group and leave bwrap to end when the command does.
    args = [bwrap, "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--unshare-ipc"]
    args += _system_binds()
    args += ["--proc", "/proc", "--dev", "/dev", "--bind", str(tmp), SANDBOX_TMP]
    for target in (CODE_TARGET, FLOYD_CODE_TARGET):
        args += ["--bind", str(spec.code_dir), str(target)]
    for mount in spec.mounts:
        kind = "--ro-bind" if mount.read_only else "--bind"
        args += [kind, str(mount.source), mount.target, kind, str(mount.source), mount.floyd_target]
    if sdk is not None:
        args += ["--ro-bind", str(sdk), str(SDK_TARGET / "ferry")]
    if spec.resources.gpus:
        # All NVIDIA nodes: CUDA wants the control devices too, and a device's minor number
        # need not be its index. CUDA_VISIBLE_DEVICES picks the allocated ones.
        for device in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(device), str(device)]
    if not spec.network:
        args.append("--unshare-net")
    # The sandbox's own root is a tmpfs; read-only, so a job writes only where it was let.
    return [*args, "--remount-ro", "/", "--chdir", str(CODE_TARGET)]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():  # merged-/usr systems: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind-try", "/opt", "/opt", "--ro-bind-try", "/sys", "/sys"]
    # /etc/resolv.conf often links into /run (systemd-resolved): DNS needs its target too.
    resolv = Path("/etc/resolv.conf").resolve()
    if not resolv.is_relative_to("/etc"):
        args += ["--ro-bind-try", str(resolv), str(resolv)]
    return args


# --- the launcher's side ----------------------------------------------------------------------


def _start_supervisor(paths: StateDir, plan: _Plan) -> int:
    """Start the job's supervisor and return the job's process group once its command runs."""
    reply = start_watcher(_SUPERVISOR_MAIN, paths.root, paths.log, plan)
    if "pgid" not in reply:
        problem = f"the supervisor failed: {reply['error']}"
        raise LaunchError(f"The job did not start: {problem}\n{tail(paths.log)}")
    pgid: int = reply["pgid"]
    return pgid


@dataclass(frozen=True)
class _Job:
    """A launched job, seen from any process."""

    paths: StateDir
    pgid: int

    def ended(self) -> Exit | None:
        if (record := self._record()) is not None:
            return record
        if self.supervised():
            return None
        # The supervisor writes the record before it ends: read once more before saying lost.
        return self._record() or Exit(None, None, stopped=self.paths.stopped.exists())

    def supervised(self) -> bool:
        """Whether the supervisor still lives: it holds an exclusive lock until it ends."""
        return lock_held(self.paths.lock)

    def signal(self, signum: int) -> None:
        # Only while supervised: after that the group is gone and its number free for reuse.
        if self.supervised():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signum)

    def _record(self) -> Exit | None:
        return read_exit(self.paths.exit)


# --- the supervisor's side ------------------------------------------------------------------


def supervise() -> None:
    """The supervisor process: start the job, answer the launcher, enforce the max runtime,
    record the end. Its argv: the state directory and the fd to answer on."""
    paths, reply_fd = StateDir(Path(sys.argv[1])), int(sys.argv[2])
    hold_lock(paths.lock)
    plan: _Plan = json.loads(sys.stdin.buffer.read())
    _become_subreaper()
    try:
        job, pgid, status = _spawn(plan)
    except (OSError, LaunchError) as exc:
        answer(reply_fd, {"error": str(exc)})
        raise SystemExit(1) from None
    answer(reply_fd, {"pgid": pgid})
    ended, timed_out = threading.Event(), threading.Event()
    if plan["max_runtime_s"] is not None:
        limits = (plan["max_runtime_s"], plan["grace_s"], pgid, ended, timed_out)
        threading.Thread(target=_enforce_max_runtime, args=limits, daemon=True).start()
    if plan["keepalive_s"] is not None:
        lease = (paths, plan["keepalive_s"], plan["grace_s"], pgid, ended)
        threading.Thread(target=_enforce_keepalive, args=lease, daemon=True).start()
    returncode = job.wait()
    if (timed_out.is_set() or paths.stopped.exists()) and _killed_by_sigterm(returncode):
        # The stop's SIGTERM reached every process of the job, and the command's shell died of
        # it at once while `python3 train.py` may still be writing its checkpoint: the others
        # get the grace to finish, bounded by the stop's SIGKILL. A command that handled the
        # SIGTERM itself and exited has ended the job: what it leaves is killed now.
        _await_group(pgid)
    ended.set()
    _kill_group(pgid, signal.SIGKILL)  # what the job left running in the background
    _reap_orphans()
    if status is not None:
        status.close()
    record: ExitRecord = {
        "code": returncode if returncode >= 0 else None,
        "signal": -returncode if returncode < 0 else None,
        "timed_out": timed_out.is_set(),
        "stopped": paths.stopped.exists(),
        "oom_killed": False,  # a process tree has no memory limit of its own to be killed at
    }
    write_exit(paths.exit, record)


_PR_SET_CHILD_SUBREAPER = 36


def _killed_by_sigterm(returncode: int) -> bool:
    # Popen's word for a signal is its negative; bwrap reports its command's as 128 + signal.
    return returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)


def _become_subreaper() -> None:
    """Processes the job orphans become this supervisor's children, not init's: so it can
    tell when they are gone (``_await_group``) and reap them. Best effort: Linux only."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_orphans() -> None:
    """Reap whatever children of this process have ended."""
    with contextlib.suppress(ChildProcessError):  # no children left
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def _await_group(pgid: int) -> None:
    """Until no process of the job's group is left (a zombie counts: reaped meanwhile)."""
    while True:
        _reap_orphans()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _spawn(plan: _Plan) -> tuple[subprocess.Popen[bytes], int, IO[bytes] | None]:
    """The running job, its process group, and (with bwrap) bwrap's status stream."""
    if not plan["sandboxed"]:
        job = subprocess.Popen(
            plan["argv"],
            cwd=plan["cwd"],
            env=plan["env"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # set before exec: the group exists once Popen returns
        )
        return job, job.pid, None
    status_read, status_write = os.pipe()
    bwrap, *rest = plan["argv"]
    try:
        job = subprocess.Popen(
            [bwrap, "--json-status-fd", str(status_write), *rest],
            env=plan["env"],
            stdin=subprocess.DEVNULL,
            pass_fds=(status_write,),
        )
    finally:
        os.close(status_write)
    # Kept open until bwrap ends: it writes the command's exit there, and would die of SIGPIPE.
    status = os.fdopen(status_read, "rb")
    return job, _sandboxed_group(job, status), status


def _sandboxed_group(bwrap: subprocess.Popen[bytes], status: IO[bytes]) -> int:
    """The process group of the sandbox's command: its own pid, once bwrap's --new-session
    has made it a session leader (just before it runs the command)."""
    first = status.readline()
    if not first:
        raise LaunchError(f"bwrap failed before starting the sandbox (exit {bwrap.wait()})")
    child: int = json.loads(first)["child-pid"]
    deadline = time.monotonic() + SANDBOX_START_S
    while not _leads_own_group(child):
        if time.monotonic() > deadline:
            bwrap.kill()
            raise LaunchError(f"The sandbox did not start within {SANDBOX_START_S:.0f}s")
        if bwrap.poll() is not None:
            # Gone already: a command that ran and ended that fast, or a sandbox that failed.
            # bwrap reports the command's exit only if the command ran.
            if b"exit-code" not in status.read():
                raise LaunchError(f"bwrap could not set up the sandbox (exit {bwrap.returncode})")
            break
        time.sleep(0.001)
    return child


def _leads_own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _enforce_max_runtime(
    max_runtime_s: int,
    grace_s: float,
    pgid: int,
    ended: threading.Event,
    timed_out: threading.Event,
) -> None:
    if ended.wait(max_runtime_s):
        return
    timed_out.set()
    _terminate(pgid, grace_s, ended)


def _enforce_keepalive(
    paths: StateDir, keepalive_s: float, grace_s: float, pgid: int, ended: threading.Event
) -> None:
    """Stop the job, as ``stop()`` would, once its lease has not changed for ``keepalive_s``."""
    if lease_expired(paths.keepalive, keepalive_s, ended):
        paths.stopped.touch()
        say(paths.log, unwatched(keepalive_s))
        _terminate(pgid, grace_s, ended)


def _terminate(pgid: int, grace_s: float, ended: threading.Event) -> None:
    _kill_group(pgid, signal.SIGTERM)
    if not ended.wait(grace_s):
        _kill_group(pgid, signal.SIGKILL)


def _kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
