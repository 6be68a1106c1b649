"""The placement loop: queued jobs onto hosts with room for them.

One loop runs at a time, holding a lock for its whole transaction; a loop that finds the lock
taken returns at once (``ran`` False) rather than waiting, since the running loop does the same
work. Two loops at once would each read the same free GPUs and hand them out twice.

What to place where is decided by ``fleet.placement``, a pure function; this module reads what
it needs (the queue, the hosts and what they hold, quotas and shares) and writes what it
decided in bulk: the jobs moved to ``scheduled`` in a few statements
(``job_transition_many``), their allocations only for those moved (a job stopped meanwhile
gets none), the waiting jobs' reasons where they changed, and the queue's order. The
``jobs.run`` messages leave after the loop's transaction commits, so an agent never receives a
job whose allocation it cannot read.
"""

import fcntl
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypedDict

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.celery_app import app
from fleet.models import Allocation, Host, HostState, Quota
from fleet.placement import (
    Gpu,
    HostCapacity,
    Limits,
    Placement,
    Policy,
    Request,
    Unplaced,
    Usage,
    place,
)
from fleet.queue import queue_publish
from jobs.models import Job, JobStatus
from jobs.status import BATCH, job_transition_many, jobs_note_waiting

RUN_TASK = "jobs.run"
QUEUED = frozenset({JobStatus.QUEUED})

# PostgreSQL's two-key advisory locks: this app's namespace, and the placement loop in it.
LOCK_CLASS = 0x66_6C_65_65  # "flee(t)"
LOCK_PLACEMENT = 1

# SQLite serves one machine (the embedded setup), whose worker processes share this file.
LOCK_FILE = "fleet-placement.lock"


class ScheduleSummary(TypedDict):
    ran: bool  # False: another loop held the lock
    placed: int
    waiting: int


@contextmanager
def placement_lock() -> Iterator[bool]:
    """A transaction holding the placement lock if no other loop holds it; yields whether."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # Released by the commit itself, when the loop's allocations become visible.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_CLASS, LOCK_PLACEMENT])
            row = cursor.fetchone()
            yield bool(row and row[0])
        return
    with _file_lock() as held:
        if not held:
            yield False
            return
        # The transaction inside the lock: the next loop must see this one's commit.
        with transaction.atomic():
            yield True


@contextmanager
def _file_lock() -> Iterator[bool]:
    # flock: held per open file, so it excludes other threads of this process as well as the
    # other worker processes, and the kernel drops it if the process dies.
    with open(Path(settings.VAR_DIR) / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def schedule(*, now: datetime | None = None) -> ScheduleSummary:
    """Place what waits in the queue where it fits now: by priority, fair share and age, within
    the quotas (``fleet.placement``); say why the rest waits and where each stands."""
    now = now or timezone.now()
    with placement_lock() as held:
        if not held:
            return {"ran": False, "placed": 0, "waiting": 0}
        queue = queued_jobs()
        if not queue:
            # The last order stays published: it holds no queued job, so nobody reads it.
            return {"ran": True, "placed": 0, "waiting": 0}
        fleet = _Fleet.read(now)
        result = place(fleet.capacities, [job.request for job in queue], policy_read())
        placed = _allocate(result.placed, {job.request.job_id: job for job in queue}, fleet, now)
        _note_waiting(result.unplaced, {job.request.job_id: job.reason for job in queue})
    return {"ran": True, "placed": placed, "waiting": len(result.unplaced)}


@dataclass(frozen=True)
class QueuedJob:
    request: Request
    reason: str  # what it says now about why it waits


QUEUED_FIELDS = (
    "id", "machine_type__name", "machine_type__cpus", "machine_type__memory_mb",
    "machine_type__gpus", "machine_type__gpu_model", "replicas", "priority", "created_by_id",
    "project__owner_team_id", "status_reason",
)  # fmt: skip


def queued_jobs() -> list[QueuedJob]:
    """Every queued job's needs, oldest first (the age order the placement takes)."""
    rows = Job.objects.queued().order_by("created_at", "id").values_list(*QUEUED_FIELDS)
    return [_queued(*row) for row in rows]


def _queued(
    job_id: int, machine: str, cpus: float, memory_mb: int, gpus: int, gpu_model: str,
    replicas: int, priority: int, owner: int | None, team: int | None, reason: str,
) -> QueuedJob:  # fmt: skip
    request = Request(
        job_id, cpus, memory_mb, gpus, gpu_model, replicas=replicas, owner=owner or 0, team=team,
        priority=priority, machine=machine,
    )  # fmt: skip
    return QueuedJob(request, reason)


def policy_read() -> Policy:
    """The quotas and shares admins set, and what each user and team holds now."""
    user_limits: dict[int, Limits] = {}
    team_limits: dict[int, Limits] = {}
    shares: dict[int, float] = {}
    for quota in Quota.objects.all():
        limits = Limits(max_gpus=quota.max_gpus, max_jobs=quota.max_jobs)
        if quota.user_id is not None:
            user_limits[quota.user_id] = limits
            shares[quota.user_id] = quota.share
        elif quota.team_id is not None:
            team_limits[quota.team_id] = limits
    user_usage, team_usage = _usage()
    return Policy(
        user_limits=user_limits, team_limits=team_limits, shares=shares,
        user_usage=user_usage, team_usage=team_usage,
    )  # fmt: skip


def _usage() -> tuple[dict[int, Usage], dict[int, Usage]]:
    """GPUs and jobs held now, by the user who submitted them and the team owning the project."""
    held = Allocation.objects.active().values_list(
        "job_id", "job__created_by_id", "job__project__owner_team_id", "gpu_indices"
    )
    gpus: dict[tuple[str, int], int] = defaultdict(int)
    jobs: dict[tuple[str, int], set[int]] = defaultdict(set)
    for job_id, user, team, gpu_indices in held:
        for key in (("user", user or 0), ("team", team)):
            if key[1] is None:
                continue
            gpus[key] += len(gpu_indices)
            jobs[key].add(job_id)
    usage = {key: Usage(gpus=gpus[key], jobs=len(jobs[key])) for key in jobs}
    users = {who: used for (kind, who), used in usage.items() if kind == "user"}
    teams = {who: used for (kind, who), used in usage.items() if kind == "team"}
    return users, teams


@dataclass
class _Fleet:
    hosts: dict[str, Host] = field(default_factory=dict)
    capacities: list[HostCapacity] = field(default_factory=list)

    @classmethod
    def read(cls, now: datetime) -> "_Fleet":
        """Every host, what its active allocations hold, and whether it takes work now."""
        fresh_after = now - timedelta(seconds=settings.FERRY_HOST_HEARTBEAT_TIMEOUT_S)
        used = _used_by_host()
        fleet = cls()
        for host in Host.objects.order_by("name"):
            fleet.hosts[host.name] = host
            cpus, memory_mb, gpus = used.get(host.id, (0.0, 0, frozenset()))
            accepting = host.state == HostState.ONLINE and host.heartbeat_at >= fresh_after
            fleet.capacities.append(
                HostCapacity(
                    name=host.name,
                    cpus=host.cpus,
                    memory_mb=host.memory_mb,
                    gpus=tuple(Gpu(gpu["index"], gpu["model"]) for gpu in host.gpus),
                    used_cpus=cpus,
                    used_memory_mb=memory_mb,
                    used_gpus=gpus,
                    accepting=accepting,
                    labels=host.labels,
                )
            )
        return fleet


def _used_by_host() -> dict[int, tuple[float, int, frozenset[int]]]:
    cpus: dict[int, float] = defaultdict(float)
    memory: dict[int, int] = defaultdict(int)
    gpus: dict[int, set[int]] = defaultdict(set)
    active = Allocation.objects.active().values_list("host_id", "cpus", "memory_mb", "gpu_indices")
    for host_id, alloc_cpus, alloc_memory, gpu_indices in active:
        cpus[host_id] += alloc_cpus
        memory[host_id] += alloc_memory
        gpus[host_id].update(gpu_indices)
    return {host_id: (cpus[host_id], memory[host_id], frozenset(gpus[host_id])) for host_id in cpus}


def _allocate(
    placements: list[Placement], queue: dict[int, QueuedJob], fleet: _Fleet, now: datetime
) -> int:
    """Move the placed jobs to ``scheduled`` and write their allocations, in the loop's
    transaction: a job stopped meanwhile refuses the move and gets no allocation. The
    ``jobs.run`` messages leave once it commits."""
    reasons = {placement.job_id: _placed_on(placement) for placement in placements}
    moved = set(job_transition_many(reasons, JobStatus.SCHEDULED, only_from=QUEUED))
    # A job queued again after its host went away still has the released rows of its last try.
    Allocation.objects.filter(job_id__in=moved).delete()
    rows = [
        Allocation(
            job_id=placement.job_id,
            replica=replica,
            host=fleet.hosts[slot.host],
            cpus=queue[placement.job_id].request.cpus,
            memory_mb=queue[placement.job_id].request.memory_mb,
            gpu_indices=list(slot.gpu_indices),
            created_at=now,
        )
        for placement in placements
        if placement.job_id in moved
        for replica, slot in enumerate(placement.replicas)
    ]
    Allocation.objects.bulk_create(rows, batch_size=BATCH)
    for placement in placements:
        if placement.job_id in moved:
            # robust: a broker that fails one send must not keep the other jobs' messages
            # from leaving; the reaper loses a job whose agent never started it.
            queue_name = fleet.hosts[placement.replicas[0].host].queue
            transaction.on_commit(partial(_send_run, placement.job_id, queue_name), robust=True)
    return len(moved)


def _note_waiting(unplaced: list[Unplaced], said: dict[int, str]) -> None:
    """Tell each waiting job why, where that changed, and publish where each stands."""
    jobs_note_waiting(
        {item.job_id: item.reason for item in unplaced if said.get(item.job_id) != item.reason}
    )
    queue_publish([item.job_id for item in unplaced if not item.fits_nowhere])


def _placed_on(placement: Placement) -> str:
    where = []
    for slot in placement.replicas:
        gpus = ", ".join(str(index) for index in slot.gpu_indices)
        where.append(slot.host + (f" (GPUs {gpus})" if gpus else ""))
    return "placed on " + "; ".join(where)


def _send_run(job_id: int, queue: str) -> None:
    # One message, to the first replica's host: running the other replicas of a distributed
    # job is the agent's to learn; until then the API takes one replica per job.
    app.send_task(RUN_TASK, args=[job_id], queue=queue)
