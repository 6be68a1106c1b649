"""The contract every executor keeps: launch a job, stream its logs, wait, stop, clean up.

Modelled on JupyterHub's Spawner: a backend turns a ``JobSpec`` into a running process and
hands back a ``Handle`` whose state is plain data, so an agent that restarts can find its jobs
again (``Handle.from_state``) and wait for or stop them from another process.

Inside a job the layout is the same on every backend: the code at ``/ferry/code`` (the working
directory), each input read-only at ``/ferry/input/<name>``, the output at ``/ferry/output``;
FloydHub's ``/floyd/...`` paths name the same directories. Every mount is also announced in an
environment variable (``FERRY_INPUT_<NAME>``, ``FERRY_OUTPUT``, ``FERRY_CODE``), which is the
only way to find it where a backend cannot place it at its path. The Ferry SDK's package is at
``/ferry/sdk/ferry`` and ``/ferry/sdk`` is on ``PYTHONPATH``, so a job's own Python can
``import ferry`` without installing it (a backend that cannot place it there puts another
directory holding it on ``PYTHONPATH``).

Pure Python and the standard library: the agent and the backends import this without Django.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar, TypedDict

FERRY_ROOT = PurePosixPath("/ferry")
FLOYD_ROOT = PurePosixPath("/floyd")  # where FloydHub mounted the same things
CODE_TARGET = FERRY_ROOT / "code"
INPUT_ROOT = FERRY_ROOT / "input"
OUTPUT_TARGET = FERRY_ROOT / "output"
SDK_TARGET = FERRY_ROOT / "sdk"  # on the job's PYTHONPATH, holding the ferry package
# FloydHub's working directory was /floyd/home; jobs written for it find their code there.
FLOYD_CODE_TARGET = FLOYD_ROOT / "home"

#: How long a job that outlives its max runtime gets between SIGTERM and SIGKILL.
DEFAULT_STOP_GRACE_S = 10.0

# One path segment: the rule of Ferry's names, so no "..", no "/", nothing a shell misreads.
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")

JSONScalar = str | int | float | bool | None


class ExecutorError(Exception):
    """A backend could not do what was asked; the message says what and why."""


class LaunchError(ExecutorError):
    """The job could not be started (its sandbox or image failed before the command ran)."""


class JobNotFound(ExecutorError, LookupError):
    """The handle names a job this backend no longer knows (cleaned up, or another host's)."""


@dataclass(frozen=True)
class Mount:
    """A host directory shown to the job at ``target``, a path under ``/ferry``."""

    source: Path
    target: str
    read_only: bool

    @classmethod
    def input(cls, name: str, source: Path) -> "Mount":
        return cls(source=source, target=str(INPUT_ROOT / name), read_only=True)

    @classmethod
    def output(cls, source: Path) -> "Mount":
        return cls(source=source, target=str(OUTPUT_TARGET), read_only=False)

    @property
    def floyd_target(self) -> str:
        """The same mount where FloydHub put it: ``/floyd/input/<name>``, ``/floyd/output``."""
        return str(FLOYD_ROOT / PurePosixPath(self.target).relative_to(FERRY_ROOT))

    @property
    def env_name(self) -> str:
        """The variable naming it: ``/ferry/input/mnist-v1`` → ``FERRY_INPUT_MNIST_V1``."""
        return env_name_for(self.target)


@dataclass(frozen=True)
class Resources:
    cpus: float
    memory_mb: int
    gpus: tuple[int, ...] = ()  # the host's GPU indices (NVML order) this job holds


@dataclass
class JobSpec:
    """Everything a backend needs to run one job; checked when made, so no backend starts a
    job that cannot be right."""

    job_id: str
    image: str | None  # the environment's image; backends without images ignore it
    command: str  # run by /bin/sh -c
    workdir: Path  # the per-job directory on the host; the code is in workdir/code
    mounts: list[Mount]
    env: dict[str, str]
    resources: Resources
    max_runtime_s: int | None
    network: bool = True
    # Stop the job when its agent has not called keepalive() for this long (see Executor).
    keepalive_s: float | None = None
    # Targets of mounts (a package an input holds) put on the job's PYTHONPATH after the SDK.
    python_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise ValueError("The job's command is empty: give the shell command it should run.")
        if not _JOB_ID_RE.match(self.job_id):
            raise ValueError(
                f"job_id {self.job_id!r} must be 1-128 letters, digits, '.', '_', '-'."
            )
        if self.max_runtime_s is not None and self.max_runtime_s <= 0:
            raise ValueError(f"max_runtime_s must be positive or None, not {self.max_runtime_s}.")
        if self.keepalive_s is not None and not self.keepalive_s > 0:
            raise ValueError(f"keepalive_s must be positive or None, not {self.keepalive_s}.")
        if len(set(self.resources.gpus)) != len(self.resources.gpus) or any(
            index < 0 for index in self.resources.gpus
        ):
            raise ValueError(f"GPU indices must be distinct and >= 0: {self.resources.gpus}.")
        _check_mounts(self.mounts)
        targets = {mount.target for mount in self.mounts}
        if strays := [path for path in self.python_paths if path not in targets]:
            raise ValueError(
                f"python_paths {strays} must each be the target of one of the job's mounts "
                f"({', '.join(sorted(targets)) or 'it has none'})."
            )

    @property
    def code_dir(self) -> Path:
        return self.workdir / "code"


def env_name_for(target: str) -> str:
    parts = PurePosixPath(target).relative_to(FERRY_ROOT).parts
    return "_".join(["FERRY", *(re.sub(r"[^A-Za-z0-9]", "_", part).upper() for part in parts)])


def _check_mounts(mounts: list[Mount]) -> None:
    targets: list[PurePosixPath] = []
    env_names: dict[str, str] = {}
    for mount in mounts:
        target = _checked_target(mount)
        for other in targets:
            if target.is_relative_to(other) or other.is_relative_to(target):
                raise ValueError(f"Mount targets {other} and {target} overlap.")
        # Two targets sharing a variable (mnist-1 and mnist_1) would hide one from the job.
        clash = env_names.setdefault(mount.env_name, mount.target)
        if clash != mount.target:
            raise ValueError(f"Mount targets {clash} and {mount.target} share {mount.env_name}.")
        targets.append(target)


def _checked_target(mount: Mount) -> PurePosixPath:
    if not mount.source.is_absolute():
        raise ValueError(f"Mount source {mount.source} must be an absolute path.")
    target = PurePosixPath(mount.target)
    parts = target.relative_to(FERRY_ROOT).parts if target.is_relative_to(FERRY_ROOT) else ()
    if str(target) != mount.target or not parts or not all(map(_SEGMENT_RE.match, parts)):
        raise ValueError(
            f"Mount target {mount.target!r} must be a normalised path under /ferry whose parts "
            "are letters, digits, '.', '_' and '-' (like /ferry/input/mnist)."
        )
    # Anything under /ferry/sdk would shadow the SDK or land on the job's PYTHONPATH.
    if target in (CODE_TARGET, INPUT_ROOT) or target.is_relative_to(SDK_TARGET):
        raise ValueError(f"Mount target {mount.target} is reserved.")
    return target


@dataclass(frozen=True)
class Exit:
    """How a job ended. ``code`` is its exit status; ``signal`` the signal that killed it where
    the backend can tell (sandboxes and containers report a signal death as code 128+N).
    Both None: the job was lost, its end unrecorded (its supervisor died first)."""

    code: int | None
    signal: int | None
    timed_out: bool = False  # it outlived max_runtime_s and was stopped
    stopped: bool = False  # someone called stop()
    oom_killed: bool = False  # the job was killed at its memory limit

    @property
    def succeeded(self) -> bool:
        return self.code == 0 and not (self.timed_out or self.stopped)


class HandleState(TypedDict):
    backend: str
    job_id: str
    data: dict[str, JSONScalar]


@dataclass(frozen=True)
class Handle:
    """A launched job, as its backend needs to find it again. Its state is JSON-safe: store
    ``to_state()`` anywhere and rebuild it with ``from_state`` in another process."""

    backend: str
    job_id: str
    data: Mapping[str, JSONScalar] = field(default_factory=dict)

    def to_state(self) -> HandleState:
        return {"backend": self.backend, "job_id": self.job_id, "data": dict(self.data)}

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> "Handle":
        backend, job_id, data = state.get("backend"), state.get("job_id"), state.get("data")
        if not (isinstance(backend, str) and isinstance(job_id, str) and isinstance(data, dict)):
            raise ValueError(f"Not a handle's state: {state!r}")
        if not all(
            isinstance(key, str) and isinstance(value, (str, int, float, bool, type(None)))
            for key, value in data.items()
        ):
            raise ValueError(f"A handle's data must map names to JSON scalars: {data!r}")
        return cls(backend=backend, job_id=job_id, data=dict(data))


class Executor(ABC):
    #: The backend's name, as handles record it and settings choose it.
    name: ClassVar[str]

    @property
    @abstractmethod
    def sandboxed(self) -> bool:
        """True if jobs see only their mounts, at their targets, and cannot write the inputs.
        Where False, inputs are host paths a job could modify: give it copies, not links into
        a cache."""

    @classmethod
    @abstractmethod
    def available(cls) -> bool:
        """Whether this backend can run jobs on this machine."""

    @abstractmethod
    def launch(self, spec: JobSpec) -> Handle:
        """Start the job and return once its command is running (or raise LaunchError)."""

    @abstractmethod
    def logs(self, handle: Handle) -> Iterator[bytes]:
        """The job's stdout and stderr, merged, from the start, in chunks as they are produced;
        ends when the job has ended and everything it wrote was read. While the job prints
        nothing, an empty chunk comes at least once a second, so the reader can flush what it
        holds on time. Memory stays bounded however much it prints."""

    @abstractmethod
    def wait(self, handle: Handle, timeout: float | None = None) -> Exit | None:
        """How the job ended, or None if it is still running after ``timeout`` seconds."""

    @abstractmethod
    def stop(self, handle: Handle, grace_s: float) -> None:
        """SIGTERM to every process of the job, SIGKILL to what is left after ``grace_s``;
        returns once the job has ended. Harmless on a job that has already ended."""

    @abstractmethod
    def cleanup(self, handle: Handle) -> None:
        """Forget the job and free what the backend kept for it (stopping it if need be).
        Leaves the workdir, its code and its output to their owner."""

    def keepalive(self, handle: Handle) -> None:  # noqa: B027 - optional: a no-op by default
        """The agent still watches this job. Where ``spec.keepalive_s`` is set, a backend whose
        jobs can outlive their agent stops (as ``stop`` does: SIGTERM, grace, SIGKILL) a job not
        kept alive for that long. Harmless on a job that has ended or was cleaned up."""

    def process_id(self, handle: Handle) -> int | None:
        """The process, as this host numbers it, whose tree is the job (for sampling its CPU and
        memory); None where the backend cannot tell or the job has ended."""
        return None

    def check_handle(self, handle: Handle) -> None:
        if handle.backend != self.name:
            raise ValueError(f"A {handle.backend!r} handle given to the {self.name!r} executor.")
