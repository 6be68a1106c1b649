"""The agent's side of a job: lay out its code and inputs, run it, keep its log, keep its output.

``run_job`` is what the Celery task ``jobs.run`` does on the host the scheduler chose. It moves
the job on only through ``jobs.status.job_transition``, and only from the status it expects, so
a task delivered twice, or one whose job was stopped or lost meanwhile, does nothing harmful.
While the job runs, the agent beats once a second: it stamps the job's heartbeat (the reaper
marks jobs whose heartbeat stops as lost), renews the executor's keepalive (so a job whose
agent died is stopped, not left holding what the server gave to others), keeps checkpoints of
its output (``jobs.checkpoints``), and looks whether someone asked the job to stop.

The job's handle is saved in its directory, so that an agent started again after a crash takes
it up where it was (``jobs.recovery``).
"""

import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, transaction
from django.utils import timezone
from ferry.checkpoint import read_json, write_whole

from accounts.services import api_token_for_job
from blobs.cache import BlobCache, tree_files
from blobs.models import Tree
from fleet.models import Allocation
from fleet.services import allocation_release, schedule_soon
from jobs.checkpoints import Checkpoints, output_store
from jobs.executors import Executor, Exit, Handle, JobSpec, LocalExecutor, Mount, Resources
from jobs.logs import log_append, log_size
from jobs.models import FINISHED, Environment, Job, JobStatus
from jobs.requirements import with_requirements
from jobs.status import job_transition
from tracking.collect import Collectors, agent_nvml
from tracking.parsing import MetricLineParser, MetricPoint
from tracking.services import metrics_record

logger = logging.getLogger(__name__)

BEAT_S = 1.0
# What run_job returns for an attempt a later one took over (not a status: it writes none).
SUPERSEDED = "superseded"
CONTROL_TARGET = "/ferry/control"  # $FERRY_CONTROL: see ferry.checkpoint
HANDLE_FILE = "handle.json"  # in the job's directory: how to find the job again
LOG_FLUSH_BYTES = 256 * 1024
# What running a job reads of it, fetched with it.
JOB_RELATED = ("project", "environment", "machine_type", "code_tree")


@dataclass(frozen=True)
class AgentPaths:
    root: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    def job(self, job_id: int) -> Path:
        return self.jobs / str(job_id)

    def unsaved(self, job_id: int) -> Path:
        """Where the output of a job goes when it could not be stored."""
        return self.root / "unsaved" / str(job_id)


def agent_paths() -> AgentPaths:
    return AgentPaths(Path(settings.FERRY_AGENT_DIR))


def make_executor() -> Executor:
    """The backend ``FERRY_EXECUTOR`` names; for "auto", see ``docker_ready``. One per process
    and backend: the docker executor's first call to the engine costs a connection and a
    version check, which each job would otherwise pay again. Per process, as a connection
    must not be shared with the agent's forked workers."""
    choice = settings.FERRY_EXECUTOR
    if choice == "auto":
        choice = "docker" if docker_ready() else "local"
    return _executor(choice, os.getpid())


@cache
def _executor(choice: str, pid: int) -> Executor:
    if choice == "docker":
        from jobs.executors.docker import DockerExecutor

        return DockerExecutor()
    if choice == "local":
        return LocalExecutor()
    raise ImproperlyConfigured(f"FERRY_EXECUTOR is {choice!r}: use auto, docker or local.")


@cache
def docker_ready() -> bool:
    """Whether a Docker engine answers and holds the default environment's image: only then
    does "auto" pick docker, so that a fresh `make up` on a machine with Docker runs jobs at
    once (locally) instead of failing them until `make images` has run. Decided once per
    process: restart the agent after building the images."""
    from jobs.executors.docker import DockerExecutor

    if not DockerExecutor.available():
        return False
    default = Environment.objects.filter(is_default=True).first()
    ready = default is None or DockerExecutor().has_image(default.image)
    if not ready:
        logger.warning(
            "Docker answers but has no %s, the default environment's image: jobs run on the "
            "local executor until `make images` has built it and the agent is restarted",
            default.image if default else "",
        )
    return ready


def run_job(job_id: int, executor: Executor | None = None) -> str:
    """Run one scheduled job to its end; returns the status it ended in (or why it did not run)."""
    if not job_transition(job_id, JobStatus.STARTING, only_from=frozenset({JobStatus.SCHEDULED})):
        return "not scheduled"  # stopped, lost or already taken: nothing to do
    executor = executor or make_executor()
    paths = agent_paths()
    job = Job.objects.select_related(*JOB_RELATED).get(id=job_id)
    setup_log = SetupLog(job_id)  # what installing its requirements printed comes first
    if job.attempt > 1:  # queued again after its host went away: its log goes on
        setup_log.offset = log_size(job_id)
        setup_log(f"[ferry] attempt {job.attempt} of {job.max_retries + 1}\n".encode())
    try:
        spec = prepare(job, paths, link_inputs=executor.sandboxed)
        spec = with_requirements(executor, spec, agent_dir=paths.root, log=setup_log)
        setup_log.close()
        handle = executor.launch(spec)
    except Exception as exc:  # whatever broke, the job must end, and say why
        logger.exception("job %s could not be started", job_id)
        setup_log.close()
        return finish(job, Exit(code=None, signal=None), f"could not start: {exc}", paths)
    launched = Launched(handle, log_base=setup_log.offset)
    launched.save(paths.job(job_id))  # so that an agent started again finds the job
    if not job_transition(job_id, JobStatus.RUNNING, only_from=frozenset({JobStatus.STARTING})):
        executor.stop(handle, grace_s=settings.FERRY_JOB_STOP_GRACE_S)
    return watch(job, executor, launched, paths)


@dataclass(frozen=True)
class Launched:
    """A launched job as its agent must find it again: its handle, and where in the job's log
    the executor's output starts (after what setting it up printed)."""

    handle: Handle
    log_base: int = 0

    def save(self, workdir: Path) -> None:
        write_whole(workdir / HANDLE_FILE, {**self.handle.to_state(), "log_base": self.log_base})

    @classmethod
    def load(cls, workdir: Path) -> "Launched | None":
        """What ``save`` wrote in ``workdir``; None if nothing was (the job never started)."""
        state = read_json(workdir / HANDLE_FILE)
        if state is None:
            return None
        log_base = state.pop("log_base", 0)
        try:
            handle = Handle.from_state(state)
        except ValueError:
            return None
        return cls(handle, log_base if isinstance(log_base, int) and log_base >= 0 else 0)


def watch(
    job: Job, executor: Executor, launched: Launched, paths: AgentPaths, stored: int = 0
) -> str:
    """See a launched job to its end: supervise it, then keep its output and final status.
    ``stored``: how much of its log is stored already (an agent watching it again)."""
    offset = max(stored, launched.log_base)
    ended = supervise(
        job.id,
        executor,
        launched.handle,
        checkpoints_of(job, paths),
        log_at=(offset, offset - launched.log_base),
        attempt=job.attempt,
        collectors=collectors_of(job, executor, launched.handle, paths),
    )
    if superseded(job):
        # Its host was given up on and the job queued again: the next attempt owns its status
        # and output now. What this one did is left where it ran.
        executor.cleanup(launched.handle)
        shutil.rmtree(paths.job(job.id), ignore_errors=True)
        return SUPERSEDED
    # Cleaning up (removing a container takes a while) after the final status, not before it:
    # the job has ended, and its user need not wait for the housekeeping.
    return finish(job, ended, "", paths, cleanup=lambda: executor.cleanup(launched.handle))


class SetupLog:
    """The job's log while its agent sets it up (installs its requirements): what it prints is
    stored a chunk a second, and each call, empty ones too, stamps the job's heartbeat, so a
    long install is not taken for a lost job."""

    def __init__(self, job_id: int) -> None:
        self.job_id, self.offset = job_id, 0
        self.buffer, self.flushed_at = bytearray(), time.monotonic()

    def __call__(self, chunk: bytes) -> None:
        self.buffer += chunk
        if time.monotonic() - self.flushed_at >= BEAT_S or len(self.buffer) >= LOG_FLUSH_BYTES:
            self.close()
            Job.objects.filter(id=self.job_id).update(heartbeat_at=timezone.now())

    def close(self) -> None:
        """Store what is buffered."""
        log_append(self.job_id, self.offset, bytes(self.buffer))
        self.offset += len(self.buffer)
        self.buffer, self.flushed_at = bytearray(), time.monotonic()


def collectors_of(job: Job, executor: Executor, handle: Handle, paths: AgentPaths) -> Collectors:
    allocation = Allocation.objects.filter(job_id=job.id, replica=0).first()
    return Collectors(
        job.id,
        root_pid=executor.process_id(handle),
        gpus=allocation.gpu_indices if allocation is not None else (),
        output_dir=paths.job(job.id) / "output",
        nvml=agent_nvml(),
    )


def tracking_env(job: Job) -> dict[str, str]:
    """What the job's code needs to send its metrics, params and tags to this server: with
    Ferry's SDK (FERRY_*), or with MLflow's client unchanged (MLFLOW_*: its run is the job).
    Nothing where the job's author is gone (there is no one to record them as)."""
    token = api_token_for_job(job)
    if token is None:
        return {}
    base = settings.FERRY_URL.rstrip("/")
    # Not FERRY_TOKEN: the ferry CLI reads that, and would use this token for what it may not do.
    return {
        "FERRY_URL": base,
        "FERRY_JOB_TOKEN": token,
        "MLFLOW_TRACKING_URI": f"{base}/compat/mlflow",
        "MLFLOW_TRACKING_TOKEN": token,
        "MLFLOW_RUN_ID": str(job.id),
        "MLFLOW_EXPERIMENT_ID": str(job.project_id),
    }


def checkpoints_of(job: Job, paths: AgentPaths) -> Checkpoints | None:
    if job.created_by_id is None:
        return None  # its author is gone: nobody to own what it stores
    return Checkpoints(
        job_id=job.id,
        owner_id=job.created_by_id,
        output_dir=paths.job(job.id) / "output",
        control_dir=paths.job(job.id) / "control",
        interval_s=settings.FERRY_CHECKPOINT_INTERVAL_S,
    )


def prepare(job: Job, paths: AgentPaths, *, link_inputs: bool) -> JobSpec:
    """The job's directory: code copied, inputs from the cache, an empty output.

    Inputs are hard-linked from the cache only where the sandbox mounts them read-only; a job
    running unsandboxed could otherwise write through a link into the cache.
    """
    workdir = paths.job(job.id)
    shutil.rmtree(workdir, ignore_errors=True)  # a leftover of an earlier delivery
    cache = BlobCache(paths.cache)
    if job.code_tree is not None:
        cache.layout(tree_files(job.code_tree), workdir / "code", link=False)
    (workdir / "code").mkdir(parents=True, exist_ok=True)
    mounts = []
    for item in job.inputs.select_related("tree"):
        target = workdir / "inputs" / item.name
        cache.layout(tree_files(item.tree), target, link=link_inputs)
        mounts.append(Mount.input(item.name, target))
    (workdir / "output").mkdir()
    mounts.append(Mount.output(workdir / "output"))
    (workdir / "control").mkdir()  # where ferry.checkpoint() asks for a checkpoint
    mounts.append(Mount(source=workdir / "control", target=CONTROL_TARGET, read_only=False))
    allocation = Allocation.objects.filter(job_id=job.id, replica=0).first()
    gpus = tuple(allocation.gpu_indices) if allocation is not None else ()
    return JobSpec(
        job_id=str(job.id),
        image=job.environment.image_for(len(gpus)),
        command=job.command,
        workdir=workdir,
        mounts=mounts,
        env={f"FERRY_PARAM_{k.upper()}": str(v) for k, v in job.params.items()}
        | {"FERRY_JOB": str(job)}
        | tracking_env(job),
        resources=Resources(job.machine_type.cpus, job.machine_type.memory_mb, gpus),
        max_runtime_s=job.max_runtime_s,
        network=job.project.job_network,
        # A job outliving its agent is stopped once the server would count it lost.
        keepalive_s=settings.FERRY_JOB_HEARTBEAT_TIMEOUT_S,
    )


def supervise(
    job_id: int,
    executor: Executor,
    handle: Handle,
    checkpoints: Checkpoints | None = None,
    log_at: tuple[int, int] = (0, 0),
    attempt: int = 1,
    collectors: Collectors | None = None,
) -> Exit:
    """Pump the log while the job runs; beat; keep checkpoints; gather its system metrics and
    TensorBoard scalars; stop it when asked. Returns how it ended. ``log_at``: see
    ``pump_logs``; ``attempt``: the job's attempt this run is."""
    pump = threading.Thread(target=pump_logs, args=(job_id, executor, handle, *log_at), daemon=True)
    pump.start()
    stopping = False
    while (ended := executor.wait(handle, timeout=BEAT_S)) is None:
        status = beat(job_id, attempt)
        executor.keepalive(handle)
        if checkpoints is not None and not stopping:
            checkpoints.tick()
        if collectors is not None:
            collectors.tick()
        # Stopping asked for, or the server gave the job up (lost, or queued again: its
        # allocation is free and may be another job's already): either way the process must end.
        if (status in (JobStatus.STOPPING, SUPERSEDED) or status in FINISHED) and not stopping:
            stopping = True
            threading.Thread(
                target=executor.stop, args=(handle, settings.FERRY_JOB_STOP_GRACE_S), daemon=True
            ).start()
    pump.join()
    if checkpoints is not None:
        checkpoints.close()
    if collectors is not None:
        collectors.close()
    return ended


def beat(job_id: int, attempt: int = 1) -> str:
    """Stamp the job's heartbeat; its status, or SUPERSEDED once a later attempt took over."""
    if not Job.objects.filter(id=job_id, attempt=attempt).update(heartbeat_at=timezone.now()):
        return SUPERSEDED
    return str(Job.objects.filter(id=job_id).values_list("status", flat=True).get())


def superseded(job: Job) -> bool:
    """Whether a later attempt of ``job`` was queued after this one started."""
    return not Job.objects.filter(id=job.id, attempt=job.attempt).exists()


def pump_logs(
    job_id: int, executor: Executor, handle: Handle, offset: int = 0, skip: int = 0
) -> None:
    """Copy the job's output into its log from ``offset`` on, a chunk at least every second,
    recording the metric lines it prints (``{"metric": "accuracy", "value": 0.98, "step": 3}``)
    as it goes. The first ``skip`` bytes of the output are stored already."""
    buffer, flushed_at = bytearray(), time.monotonic()
    metrics = MetricLineParser()
    try:
        for chunk in executor.logs(handle):
            if skip:
                chunk, skip = chunk[skip:], max(0, skip - len(chunk))
            buffer += chunk  # empty while the job is quiet: a chance to flush on time
            due = len(buffer) >= LOG_FLUSH_BYTES or time.monotonic() - flushed_at >= BEAT_S
            if buffer and due:
                _flush(job_id, offset, bytes(buffer), metrics.feed(bytes(buffer)))
                offset, buffer, flushed_at = offset + len(buffer), bytearray(), time.monotonic()
        _flush(job_id, offset, bytes(buffer), metrics.feed(bytes(buffer)) + metrics.close())
    finally:
        close_old_connections()


def _flush(job_id: int, offset: int, data: bytes, points: list[MetricPoint]) -> None:
    # One transaction: an agent killed in between must not leave a stored chunk whose metrics
    # are not, since the agent taking the job up again goes on from the stored log's end.
    with transaction.atomic():
        log_append(job_id, offset, data)
        if points:
            metrics_record(job_id, points)


def finish(
    job: Job,
    ended: Exit,
    problem: str,
    paths: AgentPaths,
    cleanup: Callable[[], None] | None = None,
) -> str:
    """Keep the output, write the final status, free the host's resources; then ``cleanup``
    what the executor kept for the job, and its directory."""
    output, problem = keep_output(job, paths, problem)
    status, reason = outcome(job.id, ended, problem)
    # An output that could not be kept leaves the last checkpoint as the job's output.
    kept: dict[str, Any] = {"output_tree": output} if output is not None else {}
    job_transition(job.id, status, reason=reason, exit_code=ended.code, **kept)
    allocation_release(job.id)
    schedule_soon()
    try:
        if cleanup is not None:
            cleanup()
    finally:
        shutil.rmtree(paths.job(job.id), ignore_errors=True)
    return str(status)


def keep_output(job: Job, paths: AgentPaths, problem: str) -> tuple[Tree | None, str]:
    """Store the job's output; on failure say so in ``problem`` and move the files aside on
    the host, where an operator can still find them: an output is never lost silently."""
    output_dir = paths.job(job.id) / "output"
    if not output_dir.is_dir() or job.created_by_id is None:
        return None, problem
    try:
        return output_store(output_dir, job.created_by_id), problem
    except Exception as exc:
        logger.exception("the output of job %s could not be kept", job.id)
        aside = paths.unsaved(job.id)
        aside.parent.mkdir(parents=True, exist_ok=True)
        output_dir.rename(aside)
        where = f"{socket.gethostname()}:{aside}"
        return None, problem or f"its output could not be kept ({exc}); it is left at {where}"


def outcome(job_id: int, ended: Exit, problem: str) -> tuple[JobStatus, str]:
    current, why = Job.objects.filter(id=job_id).values_list("status", "status_reason").get()
    if current == JobStatus.STOPPING or ended.stopped:
        return JobStatus.STOPPED, why or "stopped"  # who asked, as the stop request said
    if problem:
        return JobStatus.FAILED, problem
    if ended.timed_out:
        return JobStatus.FAILED, "it ran longer than its max runtime and was stopped"
    if ended.code == 0:
        return JobStatus.SUCCEEDED, ""
    if ended.oom_killed:
        return JobStatus.FAILED, out_of_memory(job_id)
    if ended.signal is not None:
        return JobStatus.FAILED, f"killed by signal {ended.signal}"
    return JobStatus.FAILED, f"exited with code {ended.code}"


def out_of_memory(job_id: int) -> str:
    rows = Job.objects.filter(id=job_id)
    machine, memory_mb = rows.values_list("machine_type__name", "machine_type__memory_mb").get()
    return (
        f"it ran out of memory: killed at the {memory_mb} MB of its machine type {machine}; "
        "run it on a machine type with more memory (ferry run --machine NAME)"
    )
