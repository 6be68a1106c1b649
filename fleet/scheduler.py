"""The placement loop: queued jobs onto hosts with room for them.

One loop runs at a time, holding a lock for its whole transaction; a loop that finds the lock
taken returns at once (``ran`` False) rather than waiting, since the running loop does the same
work. Two loops at once would each read the same free GPUs and hand them out twice.

Each placement is its own savepoint: the Allocation and the move to ``scheduled`` stand or fall
together (a job stopped meanwhile refuses the move, and its allocation goes with it). The
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
from fleet.models import Allocation, Host, HostState
from fleet.placement import Gpu, HostCapacity, Placement, Request, place
from jobs.models import Job, JobStatus
from jobs.status import job_note_waiting, job_transition

RUN_TASK = "jobs.run"

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
    """Place what waits in the queue, oldest first, where it fits now."""
    now = now or timezone.now()
    with placement_lock() as held:
        if not held:
            return {"ran": False, "placed": 0, "waiting": 0}
        requests = queued_requests()
        if not requests:
            return {"ran": True, "placed": 0, "waiting": 0}
        fleet = _Fleet.read(now)
        result = place(fleet.capacities, requests)
        by_job = {request.job_id: request for request in requests}
        placed = sum(
            _allocate(p, by_job[p.job_id], fleet.hosts[p.host], now) for p in result.placed
        )
        for unplaced in result.unplaced:
            job_note_waiting(unplaced.job_id, unplaced.reason)
    return {"ran": True, "placed": placed, "waiting": len(result.unplaced)}


def queued_requests() -> list[Request]:
    """What each queued job asks for, oldest job first."""
    rows = (
        Job.objects.queued()
        .order_by("created_at", "id")
        .values_list(
            "id",
            "machine_type__cpus",
            "machine_type__memory_mb",
            "machine_type__gpus",
            "machine_type__gpu_model",
        )
    )
    return [
        Request(job_id, cpus, memory_mb, gpus, gpu_model)
        for job_id, cpus, memory_mb, gpus, gpu_model in rows
    ]


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


def _allocate(placement: Placement, request: Request, host: Host, now: datetime) -> bool:
    """Write the allocation and move the job to ``scheduled``, both or neither."""
    with transaction.atomic():
        # A job requeued after its host went away still has its old, released row (one per job).
        Allocation.objects.update_or_create(
            job_id=placement.job_id,
            defaults={
                "host": host,
                "cpus": request.cpus,
                "memory_mb": request.memory_mb,
                "gpu_indices": list(placement.gpu_indices),
                "created_at": now,
                "released_at": None,
            },
        )
        if not job_transition(placement.job_id, JobStatus.SCHEDULED, reason=_placed_on(placement)):
            transaction.set_rollback(True)  # stopped meanwhile: undo the allocation
            return False
        # robust: a broker that fails one send must not keep the other jobs' messages from
        # leaving; the reaper loses a job whose agent never started it.
        transaction.on_commit(partial(_send_run, placement.job_id, host.queue), robust=True)
    return True


def _placed_on(placement: Placement) -> str:
    gpus = ", ".join(str(index) for index in placement.gpu_indices)
    return f"placed on {placement.host}" + (f" (GPUs {gpus})" if gpus else "")


def _send_run(job_id: int, queue: str) -> None:
    app.send_task(RUN_TASK, args=[job_id], queue=queue)
