"""The ``docker`` executor: each job a container, through the Docker Engine's API (the
``docker`` SDK), with a small detached watchdog per job so that limits hold without the agent.

A job runs as ``launch() → watchdog → container [docker-init → sh → /bin/sh -c COMMAND]``:

- ``launch()`` creates the container (labelled ``ferry.executor=docker``, ``ferry.job``,
  ``ferry.workdir``) and starts the watchdog, a Python process in its own session, which starts
  the container and answers once it runs. The watchdog then waits for the container's end,
  enforces the max runtime and the keepalive lease (as the local executor's supervisor does:
  the job must not outlive its agent for long, since the server frees its GPUs), and records
  the end in ``exit.json`` with the engine's word on an OOM kill. It holds a ``flock`` while it
  lives, so any process tells a watched job from one whose watchdog died. The container stays
  until ``cleanup()`` removes it, so its end can always be inspected. The watchdog lives in
  ``engine_api``, which speaks the engine's API with the standard library alone: the launcher
  waits for its answer, and importing the SDK would add a fifth of a second to every launch.
- The container: the code read-write at /ferry/code and /floyd/home (the working directory),
  every mount at its target and its FloydHub path (read-only where the spec says), the Ferry SDK
  read-only at /ferry/sdk/ferry, nothing else of the host (never the Docker socket). Limits on
  cpus, memory (swap included, so none) and pids; all capabilities dropped; no-new-privileges;
  an unprivileged user (the agent's own, or ``JOB_UID`` where the agent is root, the job's
  writable directories then given to that user); no network, not even the bridge, where the
  spec says so; docker-init as PID 1, so SIGTERM reaches the command's process group and
  orphans are reaped, and its end ends every process of the job.
- GPUs: a device request for exactly the allocated indices. The runtime shows the container
  only those, numbered from 0, so ``CUDA_VISIBLE_DEVICES`` counts in that numbering.

Logs: the command's stdout and stderr are redirected, inside the container, to a log file in
the job's state directory on the host, bind-mounted as a single file (so the job cannot swap it
for a link to something else of the agent's). ``logs()`` follows that file exactly as the local
executor does (``logs.follow``): from the start, bounded memory, empty chunks while quiet,
readable again after the end and from any process, with nothing running in the agent. The other
way, streaming the engine's logs, was not taken: the engine would store every byte again in its
own JSON log (a GB of ``yes`` is half a billion JSON lines), the stream is gone with the
container, and a reader needs a thread and a queue to produce its idle chunks. The engine keeps
only what the container printed outside the job's command (a failed redirect, docker-init's own
complaints), capped small; the watchdog adds that to the log at the end.
"""

import os
import secrets
import shutil
import signal
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypedDict

import docker
import docker.errors
import requests
from docker.models.containers import _create_container_args  # type: ignore[attr-defined]
from docker.types import DeviceRequest, LogConfig
from docker.types import Mount as DockerMount

from jobs.executors.base import (
    CODE_TARGET,
    DEFAULT_STOP_GRACE_S,
    FERRY_ROOT,
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
    StateDir,
    WatchedExecutor,
    WatchedJob,
    Watcher,
    job_env,
    lock_held,
    python_main,
    read_exit,
    renew_lease,
    sdk_package,
    tail,
)
from jobs.executors.engine_api import ENGINE_TIMEOUT_S, Plan

LABEL_EXECUTOR = "ferry.executor"
LABEL_JOB = "ferry.job"
LABEL_WORKDIR = "ferry.workdir"
#: The job's user where the agent runs as root (a job never runs as root); any unused uid.
JOB_UID = JOB_GID = 10001
#: Processes and threads a job may have at once: plenty for data loaders, not a fork bomb.
PIDS_LIMIT = 4096
LOG_TARGET = str(FERRY_ROOT / ".output.log")  # no mount's target: theirs never start with "."
CONTAINER_TMP = "/tmp"  # HOME and TMPDIR: the image's own /tmp, in the container's layer
# What the engine keeps of output outside the job's redirect: a few lines matter, not more.
ENGINE_LOG = LogConfig(type=LogConfig.types.JSON, config={"max-size": "64k", "max-file": "1"})
# The command's shell writes straight to the log file: "$1" is the command, run as local's is.
# A stop's SIGTERM reaches every process of the job (TINI_KILL_PROCESS_GROUP), this shell too,
# and the container ends as soon as this shell does, killing what still runs: so when the
# command's shell died of that SIGTERM (143) it waits (its trap runs once the command has
# ended) until the job's other processes, which got it too, have finished, e.g. `python3
# train.py` saving a checkpoint after its shell died. The stop's SIGKILL after the grace bounds
# the wait. PID 1 (docker-init) and this shell are the two processes left then. A command that
# handled the SIGTERM and exited has ended the job. Its own stderr goes nowhere: it would
# report "Terminated".
_WRAPPER = f"""exec >>{LOG_TARGET} 2>&1 || exit 126
exec 2>/dev/null
stopping=
trap 'stopping=1' TERM
/bin/sh -c "$1" 2>&1
status=$?
if [ -n "$stopping" ] && [ "$status" -eq 143 ]; then
    while set -- /proc/[0-9]*; [ $# -gt 2 ]; do sleep 0.05; done
fi
exit $status"""
# The watchdog's module imports the standard library only: the launcher waits for its answer.
_WATCHDOG_MAIN = python_main("jobs.executors.engine_api", "watch")
# The engine unreachable shows as requests' errors, not always wrapped in the SDK's.
_ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


class ContainerConfig(TypedDict, total=False):
    """The arguments of ``containers.create`` for a job (those Ferry sets)."""

    image: str
    command: list[str]
    name: str
    labels: dict[str, str]
    user: str
    working_dir: str
    environment: dict[str, str]
    mounts: list[DockerMount]
    init: bool
    cap_drop: list[str]
    security_opt: list[str]
    pids_limit: int
    nano_cpus: int
    mem_limit: str
    memswap_limit: str
    shm_size: str
    network_mode: str
    device_requests: list[DeviceRequest]
    log_config: LogConfig


@dataclass(frozen=True)
class JobContainer:
    """A container this backend made, as the engine lists it."""

    id: str
    job_id: str
    workdir: Path
    running: bool


class DockerExecutor(WatchedExecutor):
    name = "docker"

    def __init__(
        self,
        default_image: str | None = None,
        base_url: str | None = None,
        timeout_grace_s: float = DEFAULT_STOP_GRACE_S,
        pids_limit: int = PIDS_LIMIT,
    ) -> None:
        """``default_image`` runs jobs whose spec names none; ``base_url`` is the engine's
        address (by default DOCKER_HOST's, else the local socket). The engine must see this
        machine's paths: jobs' directories are bind-mounted."""
        self.default_image = default_image
        self._base_url = base_url
        self._timeout_grace_s = timeout_grace_s
        self._pids_limit = pids_limit

    @property
    def sandboxed(self) -> bool:
        return True

    @classmethod
    def available(cls) -> bool:
        return engine_problem() is None

    @cached_property
    def _engine(self) -> docker.DockerClient:
        try:
            return connect(self._base_url)
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"The Docker engine does not answer: {exc}") from exc

    # --- the contract -------------------------------------------------------------------------

    def launch(self, spec: JobSpec) -> Handle:
        image = spec.image or self.default_image
        if image is None:
            raise ValueError("This job names no image, and the docker executor has no default.")
        paths = self._new_state_dir(spec)
        try:
            paths.log.touch()
            # Its interpreter starts while the engine creates the container.
            watcher = Watcher(_WATCHDOG_MAIN, paths.root, paths.log)
            try:
                container = self._prepare(spec, paths, image)
            except BaseException:
                watcher.abandon()
                raise
            try:
                self._start(watcher, container, spec, paths)
            except BaseException:
                self._remove(container)
                raise
        except BaseException:
            shutil.rmtree(paths.root, ignore_errors=True)  # so it can be launched again
            raise
        return Handle(
            self.name, spec.job_id, {"state_dir": str(paths.root), "container": container}
        )

    def _stop_ended(self, job: WatchedJob, ended: Exit) -> None:
        if ended.code is None:  # lost: its container may run on, unwatched
            job.signal(signal.SIGKILL)

    def cleanup(self, handle: Handle) -> None:
        try:
            job = self._job(handle)
        except JobNotFound:
            return
        self.stop(handle, grace_s=0)
        self._remove(job.container)  # only now: the watchdog has recorded the end
        shutil.rmtree(job.paths.root, ignore_errors=True)

    def keepalive(self, handle: Handle) -> None:
        try:
            job = self._job(handle)
        except JobNotFound:
            return
        renew_lease(job.paths.keepalive)

    def process_id(self, handle: Handle) -> int | None:
        # The container's first process, as the host numbers it; 0 once it has stopped.
        try:
            job = self._job(handle)
            pid = self._engine.api.inspect_container(job.container)["State"]["Pid"]
        except (JobNotFound, *_ENGINE_ERRORS):
            return None
        return pid if isinstance(pid, int) and pid > 0 else None

    # --- for the agent's start-up -------------------------------------------------------------

    def containers(self, under: Path | None = None) -> list[JobContainer]:
        """Every container of this backend on the engine, running or not; with ``under``, only
        those of jobs whose workdir is there (an agent's own, where agents share an engine)."""
        try:
            listed = self._engine.api.containers(
                all=True, filters={"label": f"{LABEL_EXECUTOR}={self.name}"}
            )
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"The Docker engine did not list containers: {exc}") from exc
        found = [
            JobContainer(
                id=item["Id"],
                job_id=item["Labels"].get(LABEL_JOB, ""),
                workdir=Path(item["Labels"].get(LABEL_WORKDIR, "/")),
                running=item["State"] in ("running", "restarting", "paused"),
            )
            for item in listed
        ]
        return [item for item in found if under is None or item.workdir.is_relative_to(under)]

    def ended_containers(self, under: Path | None = None) -> list[JobContainer]:
        """Containers of jobs that have ended (or never started), which nothing will remove
        unless the agent does: it cleans up jobs it watches, not those it lost track of."""
        return [item for item in self.containers(under) if not item.running]

    def remove_containers_except(
        self, job_ids: Collection[str], under: Path | None = None
    ) -> list[JobContainer]:
        """Remove every container of this backend (``under`` a directory, as ``containers``
        has it) whose job is not in ``job_ids``, running ones too: the agent knows no job of
        theirs, so nothing would ever watch or remove them. Returns those removed."""
        keep = set(job_ids)
        removed = [item for item in self.containers(under) if item.job_id not in keep]
        for item in removed:
            self._remove(item.id)
        return removed

    # --- the container ------------------------------------------------------------------------

    def container_config(self, spec: JobSpec, state_dir: Path) -> ContainerConfig:
        """The container for ``spec`` whose state directory is ``state_dir``: no I/O, so tests
        can check what a GPU job would get on a machine without GPUs."""
        image = spec.image or self.default_image
        if image is None:
            raise ValueError("This job names no image, and the docker executor has no default.")
        sdk = sdk_package()
        gpus = spec.resources.gpus
        env = job_env(
            spec,
            code=str(CODE_TARGET),
            tmp=CONTAINER_TMP,
            mounts=_in_container,
            sdk=str(SDK_TARGET) if sdk else None,
            gpus=tuple(range(len(gpus))),  # as the container numbers the GPUs it is shown
        )
        # NVIDIA's runtime also obeys this variable, which CUDA images set to "all": where the
        # engine's default runtime is NVIDIA's, the image's "all" would show every GPU.
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(map(str, gpus)) if gpus else "void"
        # docker-init (tini) passes signals to its child alone, here the shell running the
        # command; this makes it signal the child's whole process group, as the local executor
        # does, so that `python3 train.py` gets the SIGTERM it may save a checkpoint on.
        env["TINI_KILL_PROCESS_GROUP"] = "1"
        uid, gid = job_user()
        config: ContainerConfig = {
            "image": image,
            "command": ["/bin/sh", "-c", _WRAPPER, "ferry-job", spec.command],
            "name": container_name(spec.job_id),
            "labels": {
                LABEL_EXECUTOR: self.name,
                LABEL_JOB: spec.job_id,
                LABEL_WORKDIR: str(spec.workdir),
            },
            "user": f"{uid}:{gid}",
            "working_dir": str(CODE_TARGET),
            "environment": env,
            "mounts": _mounts(spec, StateDir(state_dir), sdk),
            "init": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": self._pids_limit,
            "log_config": ENGINE_LOG,
        }
        if spec.resources.cpus > 0:
            config["nano_cpus"] = round(spec.resources.cpus * 1e9)
        if spec.resources.memory_mb > 0:
            memory = f"{spec.resources.memory_mb}m"
            # Swap as big as the memory means none: a job at its limit is killed, not paged.
            config["mem_limit"] = config["memswap_limit"] = memory
            # /dev/shm is 64 MB by default, which data loaders outgrow; what a job puts there
            # counts against its memory limit anyway.
            config["shm_size"] = memory
        if not spec.network:
            config["network_mode"] = "none"  # only loopback; otherwise the engine's bridge
        if gpus:
            request = DeviceRequest(
                device_ids=[str(index) for index in gpus], capabilities=[["gpu"]]
            )
            config["device_requests"] = [request]
        return config

    def _prepare(self, spec: JobSpec, paths: StateDir, image: str) -> str:
        """Lay out the state directory and create the container (not started): its id."""
        paths.log.touch()
        paths.keepalive.touch()  # the lease runs from now
        spec.code_dir.mkdir(exist_ok=True)
        _give_to_job(spec, paths)
        config = self.container_config(spec, paths.root)
        try:
            try:
                return self._create(config)
            except docker.errors.ImageNotFound:
                pass  # asked for only now: a lookup before each create would cost a round trip
            self._pull(image)
            return self._create(config)
        except _ENGINE_ERRORS as exc:
            raise LaunchError(f"The engine did not create the job's container: {exc}") from exc

    def _create(self, config: ContainerConfig) -> str:
        """Create the container: its id. As ``containers.create`` does (its private helper splits
        the arguments between the container and its host config), less its inspection of the
        new container: a round trip for a model object not needed."""
        arguments = {**config, "version": self._engine.api.api_version}
        created = self._engine.api.create_container(**_create_container_args(arguments))
        container: str = created["Id"]
        return container

    def _start(self, watcher: Watcher, container: str, spec: JobSpec, paths: StateDir) -> None:
        plan: Plan = {
            "container": container,
            "base_url": self._base_url,
            "max_runtime_s": spec.max_runtime_s,
            "keepalive_s": spec.keepalive_s,
            "grace_s": self._timeout_grace_s,
        }
        reply = watcher.send(plan)
        if "error" in reply:
            problem = f"the watchdog failed: {reply['error']}"
            raise LaunchError(f"The job did not start: {problem}\n{tail(paths.log)}")

    def has_image(self, image: str) -> bool:
        """Whether the engine holds ``image`` already (no pull is tried)."""
        try:
            self._engine.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"The engine could not look up image {image}: {exc}") from exc
        return True

    def _pull(self, image: str) -> None:
        try:
            self._engine.images.pull(image)
        except _ENGINE_ERRORS as exc:
            raise LaunchError(
                f"Image {image} is not on this host and could not be pulled ({exc}). Build "
                "Ferry's images on the host with `make images`, or register an environment "
                "whose image the host can pull (POST /api/v1/environments)."
            ) from exc

    def _remove(self, container: str) -> None:
        try:
            self._engine.api.remove_container(container, force=True)
        except docker.errors.APIError as exc:
            # 404: removed already; 409: its removal is already under way.
            if exc.status_code not in (404, 409):
                raise ExecutorError(
                    f"The engine did not remove container {container}: {exc}"
                ) from exc
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"The engine did not remove container {container}: {exc}") from exc

    def _job(self, handle: Handle) -> "_Job":
        self.check_handle(handle)
        state_dir, container = handle.data.get("state_dir"), handle.data.get("container")
        if not isinstance(state_dir, str) or not isinstance(container, str):
            raise ValueError(f"Not a docker job's handle: {handle.to_state()!r}")
        paths = StateDir(Path(state_dir))
        if not paths.exit.exists() and not paths.lock.exists():
            raise JobNotFound(f"No docker job {handle.job_id} at {state_dir} (cleaned up?).")
        return _Job(paths, container, lambda: self._engine)


def _in_container(mount: Mount) -> str:
    return mount.target


def _mounts(spec: JobSpec, paths: StateDir, sdk: Path | None) -> list[DockerMount]:
    def bind(source: Path, target: str, read_only: bool) -> DockerMount:
        return DockerMount(target, str(source), type="bind", read_only=read_only)

    mounts = [
        bind(spec.code_dir, str(target), False) for target in (CODE_TARGET, FLOYD_CODE_TARGET)
    ]
    for mount in spec.mounts:
        for target in (mount.target, mount.floyd_target):
            mounts.append(bind(mount.source, target, mount.read_only))
    if sdk is not None:
        mounts.append(bind(sdk, str(SDK_TARGET / "ferry"), True))
    mounts.append(bind(paths.log, LOG_TARGET, False))
    return mounts


def container_name(job_id: str) -> str:
    """``ferry-job-<job_id>-<random>``: a job id is already a valid container name, and the
    suffix lets a job launched again (a task delivered twice) or the same id from another
    agent's engine not collide with a container not yet removed."""
    return f"ferry-job-{job_id}-{secrets.token_hex(3)}"


def job_user() -> tuple[int, int]:
    """Who the job runs as: the agent's own user, never root."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    return JOB_UID, JOB_GID


def _give_to_job(spec: JobSpec, paths: StateDir) -> None:
    """Let the job's user write where it may (its code copy, its writable mounts, its log)
    when it is not the agent's own."""
    uid, gid = job_user()
    if uid == os.getuid():
        return
    writable = [spec.code_dir, *(mount.source for mount in spec.mounts if not mount.read_only)]
    for top in writable:
        os.chown(top, uid, gid, follow_symlinks=False)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                # Not following links: a link in the job's code must not give it the target.
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
    os.chown(paths.log, uid, gid)


# --- the engine -------------------------------------------------------------------------------


def connect(base_url: str | None = None, timeout: float = ENGINE_TIMEOUT_S) -> docker.DockerClient:
    if base_url is None:
        return docker.from_env(timeout=round(timeout))
    return docker.DockerClient(base_url=base_url, timeout=round(timeout))


def engine_problem(base_url: str | None = None) -> str | None:
    """Why no Docker engine answers at ``base_url`` (DOCKER_HOST's by default), or None."""
    try:
        engine = connect(base_url, timeout=5)
        try:
            engine.ping()
        finally:
            engine.close()
    except _ENGINE_ERRORS as exc:
        return f"no Docker engine answers ({exc})"
    return None


def signal_container(engine: docker.DockerClient, container: str, signum: int) -> None:
    """Send ``signum`` to the container's init, which passes SIGTERM on to the command's process
    group and whose death (SIGKILL) ends every process of the job. Harmless on one that has
    ended."""
    try:
        engine.api.kill(container, signal=int(signum))
    except docker.errors.APIError as exc:
        if exc.status_code not in (404, 409):  # gone, or not running
            raise ExecutorError(f"The engine did not signal container {container}: {exc}") from exc
    except _ENGINE_ERRORS as exc:
        raise ExecutorError(f"The engine did not signal container {container}: {exc}") from exc


@dataclass(frozen=True)
class _Job:
    """A launched job, seen from any process."""

    paths: StateDir
    container: str
    engine: Callable[[], docker.DockerClient]

    def ended(self) -> Exit | None:
        if (record := read_exit(self.paths.exit)) is not None:
            return record
        if lock_held(self.paths.lock):
            return None
        # The watchdog writes the record before it ends: read once more before asking more.
        return read_exit(self.paths.exit) or self._unrecorded_end()

    def signal(self, signum: int) -> None:
        signal_container(self.engine(), self.container, signum)

    def _unrecorded_end(self) -> Exit:
        """The end of a job whose watchdog died first (killed, or the machine restarted): the
        engine's word where the container has ended; else lost (Exit(None, None)), as nothing
        enforces its limits any more; ``cleanup()`` stops it."""
        timed_out, stopped = self.paths.timed_out.exists(), self.paths.stopped.exists()
        lost = Exit(None, None, timed_out=timed_out, stopped=stopped)
        try:
            state = self.engine().api.inspect_container(self.container)["State"]
        except (*_ENGINE_ERRORS, ExecutorError):
            return lost
        if state["Status"] != "exited":
            return lost
        return Exit(state["ExitCode"], None, timed_out, stopped, bool(state["OOMKilled"]))
