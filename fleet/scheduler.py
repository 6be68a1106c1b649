"""The placement loop: queued jobs onto hosts with room for them.

One loop runs at a time, holding a lock for its whole transaction; a loop that finds the lock
taken returns at once (``ran`` False) rather than waiting, since the running loop does the same
work. Two loops at once would each read the same free GPUs and hand them out twice.

What to place where is decided by ``fleet.placement``, a pure function; this module reads what
it needs (the queue in groups of alike jobs, the hosts and what they hold, quotas and shares)
and writes what it decided in bulk: the jobs moved to ``scheduled`` in a few statements
(``job_transition_many``), their allocations only for those moved (a job stopped meanwhile
gets none), and why each group waits with each user's standing (``fleet.queue``: one row, not
one per job). The hosts are told what to start after the loop's transaction commits
(``fleet.delivery``), so an agent never receives a job whose allocation it cannot read.
"""

import fcntl
import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypedDict, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
)  # fmt: skip
from django.db.models.functions import Cast, Mod
from django.utils import timezone

from fleet.delivery import deliver_on_commit
from fleet.models import Allocation, Host, HostState, Quota, host_queue
from fleet.placement import (
    FleetMemo,
    Gpu,
    Group,
    GroupsResult,
    HostCapacity,
    Limits,
    Placement,
    Policy,
    Request,
    Usage,
    place_groups,
)
from fleet.queue import GROUP_FIELDS, GroupKey, QueueState, Waiting, queue_publish
from jobs.models import Job, JobStatus, MachineType
from jobs.status import BATCH, job_transition_many
from projects.models import Project

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
        groups = queued_groups()
        if not groups:
            # The last state stays published: it describes no queued job, so nobody reads it.
            return {"ran": True, "placed": 0, "waiting": 0}
        holdings = _HELD.read()
        fleet = _Fleet.read(now, holdings)
        memo = _MEMOS.of(fleet.token)
        result = place_groups(fleet.capacities, groups, policy_read(holdings), memo)
        placed = _allocate(result, groups, fleet)
        _publish(result)
    return {"ran": True, "placed": placed, "waiting": sum(len(w.job_ids) for w in result.waiting)}


def queued_groups() -> list[Group]:
    """The queue in groups of jobs alike in all that placement reads (``fleet.queue``), each
    group's jobs oldest first, with ages that order them across groups."""
    members = _QUEUE.read()
    teams = dict(
        Project.objects.filter(id__in={key[1] for key in members}).values_list(
            "id", "owner_team_id"
        )
    )
    machines = MachineType.objects.in_bulk({key[2] for key in members})
    return [
        Group(key, _request(key, teams.get(key[1]), machines[key[2]]), ids, ages)
        for key, (ids, ages) in members.items()
    ]


Age = tuple[datetime, int]  # submitted at, then id: the order of age
Members = dict[GroupKey, tuple[list[int], list[Age]]]  # a group's job ids and ages, oldest first


class _QueueCache:
    """The queued jobs, grouped, kept by this process from one pass to the next.

    Reading every queued job's row on every pass costs more than the rest of a pass with a
    long queue, and so does reading every queued job's id. What a queued job asks for is fixed
    when it is submitted, and ids are never reused, so a cached job is the job of that id. A
    pass asks the database for a fingerprint of the queued ids up to the highest one this
    process knows (their count, sum and sum of squares: one row back rather than tens of
    thousands) and reads the rows of the ids above it. When the fingerprint is the one of the
    ids kept, those are the queued ids: what the passes of this process placed it took out on
    commit (``note_left``), and nobody else took one out or put one back. Otherwise (a job
    cancelled while queued, one queued again, another scheduler process's placements, an id
    committed out of order) the pass reads every queued id, drops those gone and reads whole
    those new.

    Two different sets of ids with the same count, sum and sum of squares differ in at least
    three ids each, chosen to balance two equations: not what cancels and retries make. SQLite
    reads the ids every pass.
    Used under the placement lock, one pass at a time; a pass reads the lists it is given and
    is over before the next changes them.
    """

    def __init__(self) -> None:
        self._jobs: dict[int, tuple[GroupKey, Age]] = {}
        self._groups: Members = {}
        self._top = 0  # the highest id read: those above it are new
        self._print = _Fingerprint()

    def read(self) -> Members:
        # SQLite's sums overflow rather than widen: it reads the ids, as its queues are short.
        fast = self._jobs and connection.vendor == "postgresql"
        if fast and _queued_fingerprint(self._top) == self._print:
            self._add(Job.objects.queued().filter(id__gt=self._top))
            return self._groups
        queued = {job_id for (job_id,) in _rows(Job.objects.queued().values_list("id"))}
        self.note_left(self._jobs.keys() - queued)
        new = queued - self._jobs.keys()
        if len(new) > BATCH:
            # Much of the queue (the first pass of a process): all of it in one read, rather
            # than the new ids in batches.
            self._add(Job.objects.queued(), new)
        elif new:
            self._add(Job.objects.filter(id__in=new), new)
        return self._groups

    def note_left(self, job_ids: Iterable[int]) -> None:
        """Take out jobs no longer queued: what a pass of this process moved, once committed."""
        gone = [job_id for job_id in job_ids if job_id in self._jobs]
        for job_id in gone:
            self._drop(job_id)
        self._print = self._print.minus(gone)

    def _drop(self, job_id: int) -> None:
        key, age = self._jobs.pop(job_id)
        ids, ages = self._groups[key]
        at = bisect_left(ages, age)
        del ids[at], ages[at]
        if not ids:
            del self._groups[key]

    def _add(self, jobs: QuerySet[Job, Job], new: set[int] | None = None) -> None:
        """Keep the queued ``jobs`` (of them, only ids in ``new`` if given)."""
        # The time as text: Django's conversion of each time costs more than the rest here.
        rows = jobs.order_by("created_at", "id").values_list(
            "id", *GROUP_FIELDS, Cast("created_at", TextField())
        )
        kept = []
        for job_id, *key, submitted in _rows(rows):
            if (new is not None and job_id not in new) or job_id in self._jobs:
                continue  # kept already, or queued since the ids were read: next pass
            self._keep(job_id, tuple(key), (datetime.fromisoformat(submitted), job_id))
            kept.append(job_id)
        self._print = self._print.plus(kept)
        self._top = max([self._top, *kept])

    def _keep(self, job_id: int, group: GroupKey, age: Age) -> None:
        self._jobs[job_id] = (group, age)
        ids, ages = self._groups.setdefault(group, ([], []))
        if not ages or ages[-1] < age:
            ids.append(job_id)  # the usual case: newer than all its group holds
            ages.append(age)
        else:
            at = bisect_left(ages, age)
            ids.insert(at, job_id)
            ages.insert(at, age)


class _Fingerprint(NamedTuple):
    """Of a set of ids: how many, their sum and the sum of their squares (``_square``)."""

    ids: int = 0
    total: int = 0
    squares: int = 0

    def plus(self, job_ids: list[int]) -> "_Fingerprint":
        squares = sum(map(_square, job_ids))
        return _Fingerprint(
            self.ids + len(job_ids), self.total + sum(job_ids), self.squares + squares
        )

    def minus(self, job_ids: list[int]) -> "_Fingerprint":
        squares = sum(map(_square, job_ids))
        return _Fingerprint(
            self.ids - len(job_ids), self.total - sum(job_ids), self.squares - squares
        )


# The largest number whose square fits a bigint: an id's square is taken of the id modulo this,
# so that it fits too. PostgreSQL sums bigints into a wider number without overflow, and fast;
# numeric arithmetic, which would square any id, costs three times the whole read.
_ROOT = 3_037_000_499


def _square(job_id: int) -> int:
    return (job_id % _ROOT) ** 2


def _queued_fingerprint(top: int) -> _Fingerprint:
    """The fingerprint of the queued ids up to ``top``."""
    root = Mod(F("id"), Value(_ROOT))
    found = (
        Job.objects.queued()
        .filter(id__lte=top)
        .aggregate(
            ids=Count("id"),
            total=Sum("id"),
            squares=Sum(ExpressionWrapper(root * root, output_field=BigIntegerField())),
        )
    )
    return _Fingerprint(found["ids"], int(found["total"] or 0), int(found["squares"] or 0))


_QUEUE = _QueueCache()


def _rows(query: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """A ``values_list`` query's rows as the database driver gives them: Django's conversion
    of each value costs more than the query itself for tens of thousands of rows. The driver
    gives JSON as text, and times as text on SQLite: read them cast to text, and parse here."""
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _request(key: GroupKey, team: int | None, machine: MachineType) -> Request:
    owner, _, _, replicas, priority = key
    return Request(
        0, machine.cpus, machine.memory_mb, machine.gpus, machine.gpu_model, replicas=replicas,
        owner=owner or 0, team=team, priority=priority, machine=machine.name,
    )  # fmt: skip


@dataclass(frozen=True)
class _Held:
    """What the active allocations hold: on each host, and by each user and team."""

    on_host: dict[int, tuple[float, int, frozenset[int]]]  # host id: CPUs, memory, GPU indices
    by_user: dict[int, Usage]
    by_team: dict[int, Usage]


@dataclass(frozen=True)
class _Allocated:
    host: int
    cpus: float
    memory_mb: int
    gpus: tuple[int, ...]
    job: int
    holder: tuple[int, int]  # the job's user (0 if none) and project


class _HeldCache:
    """The active allocations, kept by this process from one pass to the next, with their sums.

    An allocation is fixed from when the scheduler writes it until it is released: a pass reads
    which are active (their ids alone), takes away those released and adds those new, so that
    it reads a row per change rather than one per running job. Ids are never reused. Used
    under the placement lock, one pass at a time.
    """

    def __init__(self) -> None:
        self._active: dict[int, _Allocated] = {}
        self._on_host: dict[int, tuple[float, int, set[int], int]] = {}  # ..., allocations
        self._replicas: dict[int, int] = defaultdict(int)  # per job: its active allocations
        self._holders: dict[tuple[int, int], Usage] = defaultdict(Usage)

    def read(self) -> _Held:
        active = {i for (i,) in _rows(Allocation.objects.active().values_list("id"))}
        for allocation_id in self._active.keys() - active:
            self._take_away(self._active.pop(allocation_id))
        new = sorted(active - self._active.keys())
        for first in range(0, len(new), BATCH):
            self._add(new[first : first + BATCH])
        return _Held(
            on_host={
                host: (cpus, memory_mb, frozenset(gpus))
                for host, (cpus, memory_mb, gpus, _) in self._on_host.items()
            },
            **self._by_user_and_team(),
        )

    def _add(self, allocation_ids: list[int]) -> None:
        rows = Allocation.objects.filter(id__in=allocation_ids).values_list(
            "id", "host_id", "cpus", "memory_mb", Cast("gpu_indices", TextField()), "job_id",
            "job__created_by_id", "job__project_id",
        )  # fmt: skip
        for allocation_id, host, cpus, memory_mb, gpus, job, user, project in _rows(rows):
            indices = tuple(json.loads(gpus))
            held = _Allocated(host, cpus, memory_mb, indices, job, (user or 0, project))
            self._count_in(allocation_id, held)

    def note(self, allocated: dict[int, _Allocated]) -> None:
        """Count in what a pass of this process allocated, once it has committed: the next
        pass finds the ids known and reads none of the rows back."""
        for allocation_id, held in allocated.items():
            if allocation_id not in self._active:
                self._count_in(allocation_id, held)

    def _count_in(self, allocation_id: int, held: _Allocated) -> None:
        self._active[allocation_id] = held
        cpus, memory_mb, gpus, count = self._on_host.get(held.host, (0.0, 0, set(), 0))
        gpus.update(held.gpus)
        self._on_host[held.host] = (cpus + held.cpus, memory_mb + held.memory_mb, gpus, count + 1)
        self._replicas[held.job] += 1
        first = int(self._replicas[held.job] == 1)  # a job holds once, however many replicas
        self._holders[held.holder] = _plus(self._holders[held.holder], len(held.gpus), first)

    def _take_away(self, held: _Allocated) -> None:
        used_cpus, used_memory, used_gpus, count = self._on_host[held.host]
        used_gpus.difference_update(held.gpus)
        if count == 1:
            del self._on_host[held.host]  # nothing left: no rounding left over either
        else:
            self._on_host[held.host] = (
                used_cpus - held.cpus, used_memory - held.memory_mb, used_gpus, count - 1
            )  # fmt: skip
        self._replicas[held.job] -= 1
        last = int(self._replicas[held.job] == 0)
        if last:
            del self._replicas[held.job]
        left = _plus(self._holders[held.holder], -len(held.gpus), -last)
        if left == Usage():
            del self._holders[held.holder]
        else:
            self._holders[held.holder] = left

    def _by_user_and_team(self) -> dict[str, dict[int, Usage]]:
        projects = {project for _, project in self._holders}
        teams = dict(Project.objects.filter(id__in=projects).values_list("id", "owner_team_id"))
        by_user: dict[int, Usage] = defaultdict(Usage)
        by_team: dict[int, Usage] = defaultdict(Usage)
        for (user, project), usage in self._holders.items():
            by_user[user] = _plus(by_user[user], usage.gpus, usage.jobs)
            team = teams.get(project)
            if team is not None:
                by_team[team] = _plus(by_team[team], usage.gpus, usage.jobs)
        return {"by_user": dict(by_user), "by_team": dict(by_team)}


def _plus(usage: Usage, gpus: int, jobs: int) -> Usage:
    return Usage(gpus=usage.gpus + gpus, jobs=usage.jobs + jobs)


_HELD = _HeldCache()


def policy_read(held: _Held) -> Policy:
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
    return Policy(
        user_limits=user_limits, team_limits=team_limits, shares=shares,
        user_usage=held.by_user, team_usage=held.by_team,
    )  # fmt: skip


# A host's GPUs and labels, and what placement found of its GPUs (HostCapacity.gpu_memo).
Inventory = tuple[tuple[Gpu, ...], Mapping[str, str], dict[str, tuple[int, ...]]]


class _Inventories:
    """The hosts' GPUs and labels, kept by this process between passes.

    They change when an agent registers, not from one pass to the next: a pass reads each
    host's ``inventory_version`` (an integer, not the JSON of eight GPUs), and the GPUs and
    labels only of hosts whose version is new to this process.
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[int, Inventory]] = {}

    def of(self, versions: dict[int, int]) -> dict[int, Inventory]:
        stale = [host for host, version in versions.items() if self._version(host) != version]
        for first in range(0, len(stale), BATCH):
            rows = Host.objects.filter(id__in=stale[first : first + BATCH]).values_list(
                "id", Cast("gpus", TextField()), Cast("labels", TextField()), "inventory_version"
            )
            for host, gpus, labels, version in _rows(rows):
                gpu_list = tuple(Gpu(gpu["index"], gpu["model"]) for gpu in json.loads(gpus))
                # Read-only: the same mapping goes to every pass.
                labels_read = MappingProxyType(json.loads(labels))
                self._known[host] = (version, (gpu_list, labels_read, {}))
        return {host: self._known[host][1] for host in versions}

    def _version(self, host: int) -> int | None:
        known = self._known.get(host)
        return None if known is None else known[0]


_INVENTORIES = _Inventories()


@dataclass(frozen=True)
class _Host:
    id: int
    queue: str


@dataclass
class _Fleet:
    hosts: dict[str, _Host] = field(default_factory=dict)
    capacities: list[HostCapacity] = field(default_factory=list)
    # What placement's FleetMemo depends on: the hosts in order, their inventories (a host's
    # CPUs, memory, GPUs and labels change only with its version) and whether each takes work.
    token: tuple[tuple[int, int, bool], ...] = ()

    @classmethod
    def read(cls, now: datetime, held: _Held) -> "_Fleet":
        """Every host, what its active allocations hold, and whether it takes work now."""
        fresh_after = now - timedelta(seconds=settings.FERRY_HOST_HEARTBEAT_TIMEOUT_S)
        accepting = ExpressionWrapper(
            Q(state=HostState.ONLINE, heartbeat_at__gte=fresh_after), output_field=BooleanField()
        )
        hosts = (
            Host.objects.order_by("name")
            .annotate(accepting=accepting)
            .values_list("id", "name", "cpus", "memory_mb", "accepting", "inventory_version")
        )
        rows = _rows(hosts)
        inventories = _INVENTORIES.of({row[0]: row[-1] for row in rows})
        fleet = cls(token=tuple((row[0], row[-1], bool(row[-2])) for row in rows))
        for host_id, name, cpus, memory_mb, takes_work, _ in rows:
            gpus, labels, gpu_memo = inventories[host_id]
            fleet.hosts[name] = _Host(host_id, host_queue(name))
            used_cpus, used_memory_mb, used_gpus = held.on_host.get(host_id, (0.0, 0, frozenset()))
            fleet.capacities.append(
                HostCapacity(
                    name=name,
                    cpus=cpus,
                    memory_mb=memory_mb,
                    gpus=gpus,
                    used_cpus=used_cpus,
                    used_memory_mb=used_memory_mb,
                    used_gpus=used_gpus,
                    accepting=bool(takes_work),  # SQLite's is 0 or 1
                    labels=labels,
                    gpu_memo=gpu_memo,
                )
            )
        return fleet


class _Memos:
    """Placement's ``FleetMemo``, kept by this process for as long as the fleet is the same."""

    def __init__(self) -> None:
        self._memo = FleetMemo()

    def of(self, token: Hashable) -> FleetMemo:
        if self._memo.fleet != token:
            self._memo = FleetMemo(token)
        return self._memo


_MEMOS = _Memos()


def _allocate(result: GroupsResult, groups: list[Group], fleet: _Fleet) -> int:
    """Move the placed jobs to ``scheduled`` and write their allocations, in the loop's
    transaction: a job stopped meanwhile refuses the move and gets no allocation. Their hosts
    are told once it commits (``fleet.delivery``)."""
    reasons = {placement.job_id: _placed_on(placement) for placement in result.placed}
    moved = set(job_transition_many(reasons, JobStatus.SCHEDULED, only_from=QUEUED))
    placements = [placement for placement in result.placed if placement.job_id in moved]
    placed = _groups_placed(result, groups)
    # Stamped now, after the reads: a GPU released while the pass read is held from after its
    # release, not from the pass's start.
    rows = _allocations(placements, placed, fleet)
    ids = _allocations_write(moved, rows, timezone.now())
    # What the next pass would read back: this process knows it once it commits. The jobs the
    # move refused are no longer queued either.
    transaction.on_commit(partial(_HELD.note, _held_by(rows, ids, placed)))
    transaction.on_commit(partial(_QUEUE.note_left, list(reasons)))
    starts: dict[str, list[int]] = defaultdict(list)
    for placement in placements:
        starts[fleet.hosts[placement.replicas[0].host].queue].append(placement.job_id)
    deliver_on_commit(starts)
    return len(moved)


def _groups_placed(result: GroupsResult, groups: list[Group]) -> dict[int, Group]:
    """The group of each placed job: a group's placed jobs are the ones before its waiting."""
    left = {waiting.key: len(waiting.job_ids) for waiting in result.waiting}
    return {
        job_id: group
        for group in groups
        for job_id in group.job_ids[: len(group.job_ids) - left.get(group.key, 0)]
    }


class _Row(NamedTuple):
    """An allocation to write: a tuple, as thousands of model instances cost more to make than
    the statement that writes them."""

    job_id: int
    replica: int
    host_id: int
    cpus: float
    memory_mb: int
    gpu_indices: tuple[int, ...]


def _allocations(
    placements: list[Placement], groups: dict[int, Group], fleet: _Fleet
) -> list[_Row]:
    rows = []
    for placement in placements:
        request = groups[placement.job_id].request
        for replica, slot in enumerate(placement.replicas):
            host = fleet.hosts[slot.host].id
            cpus, memory_mb = request.cpus, request.memory_mb
            rows.append(_Row(placement.job_id, replica, host, cpus, memory_mb, slot.gpu_indices))
    return rows


def _held_by(rows: list[_Row], ids: list[int], groups: dict[int, Group]) -> dict[int, _Allocated]:
    held: dict[int, _Allocated] = {}
    for row, allocation_id in zip(rows, ids, strict=True):
        user, project, *_ = cast(GroupKey, groups[row.job_id].key)
        held[allocation_id] = _Allocated(
            row.host_id, row.cpus, row.memory_mb, row.gpu_indices, row.job_id, (user or 0, project)
        )
    return held


def _allocations_write(jobs: set[int], rows: list[_Row], now: datetime) -> list[int]:
    """Write ``rows``, created ``now``, in place of what ``jobs`` had; their ids, in order."""
    # A job queued again after its host went away still has the released rows of its last try.
    if connection.vendor != "postgresql":
        Allocation.objects.filter(job_id__in=jobs).delete()
        made = Allocation.objects.bulk_create(  # sets the ids, on SQLite too
            [
                Allocation(
                    **{**row._asdict(), "gpu_indices": list(row.gpu_indices)}, created_at=now
                )
                for row in rows
            ],
            batch_size=BATCH,
        )
        return [allocation.id for allocation in made]
    table = Allocation._meta.db_table
    # The rows as one JSON text, and the jobs as one array literal: psycopg would quote each
    # element of array parameters in Python, which for thousands of rows costs more than the
    # statements.
    given = json.dumps(rows)  # each row a list, in _Row's order
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE job_id = ANY(%s::bigint[])",
            ["{" + ",".join(map(str, sorted(jobs))) + "}"],
        )
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(_Row._fields)}, created_at)"
            " SELECT (r->>0)::bigint, (r->>1)::int, (r->>2)::bigint, (r->>3)::float8,"
            " (r->>4)::int, r->5, %s FROM jsonb_array_elements(%s::jsonb) AS r"
            " RETURNING id, job_id, replica",
            [now, given],
        )
        ids = {(job, replica): row_id for row_id, job, replica in cursor.fetchall()}
    return [ids[row.job_id, row.replica] for row in rows]


def _publish(result: GroupsResult) -> None:
    """Say why each group waits, and each user's standing: the queue's reasons and order."""
    groups = {
        cast(GroupKey, waiting.key): Waiting(waiting.reason, waiting.fits_nowhere)
        for waiting in result.waiting
    }
    queue_publish(QueueState(groups, result.standing))


def _placed_on(placement: Placement) -> str:
    where = []
    for slot in placement.replicas:
        gpus = ", ".join(str(index) for index in slot.gpu_indices)
        where.append(slot.host + (f" (GPUs {gpus})" if gpus else ""))
    return "placed on " + "; ".join(where)
