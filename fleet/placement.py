"""Where queued jobs go: a pure function from free capacity, requests and policy to placements.

No database here, so that the rules can be read and tested on their own. The scheduler
(``fleet.scheduler``) feeds it what the hosts have and hold, what each user and team holds and
may hold, and writes what it decides.

One pass, in short:

- Order. Each user's queue (higher priority first, then oldest) offers its head; the highest
  priority head goes first, and among equals the user who holds the least for their share
  (GPUs, then jobs), then the oldest job. A user's holdings grow as the pass places their jobs,
  so users take turns: that is the fair share.
- Quotas. A job that would take its user or its team past a limit waits; the user's other,
  smaller jobs still get their turn.
- Fit. A GPU replica goes to the host where it leaves the fewest matching GPUs idle (best fit),
  so that a later job wanting several GPUs on one host still finds them together; a CPU-only
  replica to a host without GPUs first, then to the one with the fewest free CPUs that hold it.
  A job of several replicas (a gang) gets all of them in the pass or none.
- Every request is considered once, and free capacity only shrinks during a pass, so a small job
  passes a big one that does not fit and the big one does not fit at the end of the pass either:
  nothing is left waiting that could run now (work-conserving).

A request that is not placed gets a reason written for its owner; ``fits_nowhere`` tells "no host
could ever run this" (ask for less, or add a host) from "waiting", and ``quota`` tells waiting
for the user's or team's own jobs to end from waiting for capacity.

Speed matters: a pass holds the placement lock. The queue comes in groups of jobs alike in all
that placement reads (``Group``), and a group stops at its first job that waits, as the rest
would wait for the same reason; so a pass costs about what it places, however long the queue.
Hosts are indexed by how many GPUs of a model they have free, shapes that found no room are
remembered for the rest of the pass, and the reasons that depend only on a shape are worked
out once.
"""

import heapq
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

# Fractions of a CPU add up in floating point; a sum 1e-9 short of a request still fits it.
EPSILON = 1e-6


@dataclass(frozen=True)
class Gpu:
    index: int
    model: str


@dataclass(frozen=True)
class HostCapacity:
    """A host's whole inventory, what of it allocations hold now, and whether it takes work.

    ``accepting`` is False for draining and offline hosts, and for hosts whose heartbeat went
    quiet: they take nothing, but still count when deciding whether a request could ever fit.
    """

    name: str
    cpus: float
    memory_mb: int
    gpus: tuple[Gpu, ...] = ()
    used_cpus: float = 0.0
    used_memory_mb: int = 0
    used_gpus: frozenset[int] = frozenset()
    accepting: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    # Which of ``gpus`` are of each model asked for, as placement finds them: a caller that
    # makes the host again with the same GPUs (the next pass) may hand the same dict, and the
    # answers carry over instead of being worked out over every GPU of the fleet again.
    gpu_memo: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class FleetMemo:
    """What a pass works out from the hosts alone, not from what they hold: the kinds of host
    there are for a GPU model and labels, and why a shape could not run even on empty hosts.

    A caller that hands the same hosts pass after pass (the same names in the same order, with
    the same inventories, labels and ``accepting``) may hand the same memo, and the answers
    carry over. ``fleet`` is the caller's token for those hosts: a caller whose hosts changed
    makes a new memo.
    """

    fleet: Hashable = None
    kinds: dict[tuple[str, "Labels"], dict["_Kind", list[int]]] = field(default_factory=dict)
    verdicts: dict[tuple["_Shape", int, str], "_Verdict | None"] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One queued job: what each of its replicas needs, and whom it counts against.

    ``gpu_model`` is a case-insensitive substring of the GPU's model ("A100"). ``owner`` is the
    user whose fair share and quota the job counts against, ``team`` the team whose project it
    runs in (its quota), ``machine`` the machine type's name, for the reasons.
    """

    job_id: int
    cpus: float
    memory_mb: int
    gpus: int = 0
    gpu_model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # the host must carry all of them
    replicas: int = 1
    owner: int = 0
    team: int | None = None
    priority: int = 0
    machine: str = ""

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.gpus < 0:
            raise ValueError(f"job {self.job_id}: needs at least 1 replica and no negative GPUs")

    @property
    def total_gpus(self) -> int:
        return self.gpus * self.replicas


@dataclass(frozen=True)
class Limits:
    """The most a user or team may hold at once; None is no limit."""

    max_gpus: int | None = None
    max_jobs: int | None = None


@dataclass(frozen=True)
class Usage:
    """What a user's or team's running and scheduled jobs hold now."""

    gpus: int = 0
    jobs: int = 0


@dataclass(frozen=True)
class Policy:
    """Quotas and fair-share weights. A user without a share has 1.0; one of 0 goes last."""

    user_limits: Mapping[int, Limits] = field(default_factory=dict)
    team_limits: Mapping[int, Limits] = field(default_factory=dict)
    shares: Mapping[int, float] = field(default_factory=dict)
    user_usage: Mapping[int, Usage] = field(default_factory=dict)
    team_usage: Mapping[int, Usage] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaPlacement:
    host: str
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True)
class Placement:
    job_id: int
    replicas: tuple[ReplicaPlacement, ...]


@dataclass(frozen=True)
class Unplaced:
    job_id: int
    reason: str
    fits_nowhere: bool
    quota: bool = False


@dataclass(frozen=True)
class PlacementResult:
    placed: list[Placement]
    unplaced: list[Unplaced]  # in the queue's order (see ``GroupsResult.order_key``)


@dataclass(frozen=True)
class Group:
    """Queued jobs alike in all that placement reads: what each asks for and whom it counts
    against. The pass takes a group's jobs oldest first and stops at the first that waits,
    since the rest would wait for the same reason: a pass costs what it places, not the queue.

    ``request`` is what each of them asks for (its ``job_id`` is not read); ``ages`` say how
    old each job is, rising, in values comparable across the groups (a user's groups take turns
    by them); ``key`` is what the caller knows the group by.
    """

    key: Hashable
    request: Request
    job_ids: Sequence[int]
    ages: Sequence[Any]


@dataclass(frozen=True)
class GroupWaiting:
    """The jobs of a group the pass left waiting, oldest first, and why."""

    key: Hashable
    job_ids: Sequence[int]
    reason: str
    fits_nowhere: bool
    quota: bool = False


Standing = tuple[float, float]  # a user's GPUs and jobs per unit of share: the least go first


@dataclass(frozen=True)
class GroupsResult:
    placed: list[Placement]
    waiting: list[GroupWaiting]
    standing: dict[int, Standing]  # each user's after the pass, for the queue's order

    def order_key(self, request: Request, age: Any) -> tuple[int, Standing, Any]:
        """Where a waiting job stands in the queue: the order the next pass takes them in if
        nothing changes meanwhile (priority, then the user holding least, then age)."""
        return (-request.priority, self.standing.get(request.owner, (0.0, 0.0)), age)


def place(
    hosts: Sequence[HostCapacity], requests: Sequence[Request], policy: Policy = Policy()
) -> PlacementResult:
    """Place what fits of ``requests`` (oldest first) on ``hosts``, fairly and within quotas."""
    groups = _grouped(requests)
    result = place_groups(hosts, groups, policy)
    by_key = {group.key: group for group in groups}
    unplaced: list[tuple[tuple[int, Standing, Any], Unplaced]] = []
    for waiting in result.waiting:
        group = by_key[waiting.key]
        start = len(group.job_ids) - len(waiting.job_ids)
        for age, job_id in zip(group.ages[start:], waiting.job_ids, strict=True):
            item = Unplaced(job_id, waiting.reason, waiting.fits_nowhere, waiting.quota)
            unplaced.append((result.order_key(group.request, age), item))
    unplaced.sort(key=lambda entry: entry[0])
    return PlacementResult(result.placed, [item for _, item in unplaced])


def place_groups(
    hosts: Sequence[HostCapacity],
    groups: Sequence[Group],
    policy: Policy = Policy(),
    memo: FleetMemo | None = None,
) -> GroupsResult:
    """``place`` for jobs given in groups: what the scheduler reads the queue as."""
    return _Pass(hosts, policy, memo or FleetMemo()).run(groups)


def _grouped(requests: Sequence[Request]) -> list[Group]:
    members: dict[Hashable, list[int]] = defaultdict(list)
    for age, request in enumerate(requests):
        members[_group_key(request)].append(age)
    return [
        Group(key, requests[ages[0]], [requests[age].job_id for age in ages], ages)
        for key, ages in members.items()
    ]


def _group_key(request: Request) -> Hashable:
    labels = tuple(sorted(request.labels.items()))
    return (
        *_Shape.of(request), labels, request.gpu_model, request.replicas, request.owner,
        request.team, request.priority, request.machine,
    )  # fmt: skip


class _Pass:
    """One pass over the queue: what is placed, and why the rest is not."""

    def __init__(self, hosts: Sequence[HostCapacity], policy: Policy, memo: FleetMemo) -> None:
        self.fleet = _Fleet(hosts)
        self.ledger = _Ledger(policy)
        self.verdicts = _Verdicts(hosts, self.fleet.of_model, memo)
        self.failures = _Failures()
        self.placed: list[Placement] = []
        self.waiting: list[GroupWaiting] = []
        self.over_quota: list[tuple[int, Group]] = []  # (position in waiting, group)

    def run(self, groups: Sequence[Group]) -> GroupsResult:
        turns = _Turns(groups, self.ledger)
        for group, first in turns:
            turns.answer(self._consider(group, first))
        # Written last, so that the numbers are what the user's jobs hold after the pass.
        for position, group in self.over_quota:
            reason = self.ledger.quota_reason(group.request)
            self.waiting[position] = replace(self.waiting[position], reason=reason)
        owners = {group.request.owner for group in groups}
        standing = {owner: self.ledger.per_share(owner) for owner in owners}
        return GroupsResult(self.placed, self.waiting, standing)

    def _consider(self, group: Group, first: int) -> bool:
        """Place the group's job at ``first``; if it waits, so do the rest of the group."""
        request = group.request
        shape = _Shape.of(request)
        rest = group.job_ids[first:]
        # Before the quotas: a job no host could ever run is told so, as waiting will not help.
        verdict = self.verdicts.of(shape, request)
        if verdict is not None:
            self.waiting.append(GroupWaiting(group.key, rest, verdict.reason, verdict.fits_nowhere))
            return False
        if self.ledger.over_quota(request):
            self.over_quota.append((len(self.waiting), group))
            self.waiting.append(GroupWaiting(group.key, rest, "", fits_nowhere=False, quota=True))
            return False
        replicas = self._search(shape, request.replicas)
        if replicas is None:
            self.waiting.append(GroupWaiting(group.key, rest, _no_room(request), False))
            return False
        self.ledger.add(request)
        self.placed.append(Placement(group.job_ids[first], replicas))
        return True

    def _search(self, shape: "_Shape", replicas: int) -> tuple[ReplicaPlacement, ...] | None:
        if self.failures.known(shape, replicas):
            return None
        placed = self.fleet.place(shape, replicas)
        if placed is None:
            self.failures.add(shape, replicas)
        return placed


# --- order ------------------------------------------------------------------------------------


class _Turns:
    """The groups' jobs in the order the pass considers them (see the module's docstring).

    Each user offers the head of their queue: of their groups' next jobs, the highest priority,
    then the oldest. Iterating gives (group, index of the job in it); the caller ``answer``s
    whether that job was placed before taking the next. A placed job's group offers its next
    job; a group whose job waits is done, and its user's holdings are unchanged, so the other
    users' keys on the heap stay true.
    """

    def __init__(self, groups: Sequence[Group], ledger: "_Ledger") -> None:
        self._groups = groups
        self._ledger = ledger
        self._next = [0] * len(groups)
        self._queues: dict[int, list[tuple[int, Any, int]]] = defaultdict(list)
        for number, group in enumerate(groups):
            if group.job_ids:
                self._queues[group.request.owner].append(self._entry(number))
        for queue in self._queues.values():
            heapq.heapify(queue)
        self._users = [self._user_key(owner) for owner in self._queues]
        heapq.heapify(self._users)
        self._offered: tuple[int, int] | None = None  # (owner, group number)

    def _entry(self, number: int) -> tuple[int, Any, int]:
        group = self._groups[number]
        return (-group.request.priority, group.ages[self._next[number]], number)

    def _user_key(self, owner: int) -> tuple[int, float, float, Any, int]:
        priority, age, _ = self._queues[owner][0]
        gpus, jobs = self._ledger.per_share(owner)
        return (priority, gpus, jobs, age, owner)

    def __iter__(self) -> Iterator[tuple[Group, int]]:
        while self._users:
            owner = heapq.heappop(self._users)[-1]
            number = self._queues[owner][0][-1]
            self._offered = (owner, number)
            yield self._groups[number], self._next[number]

    def answer(self, placed: bool) -> None:
        assert self._offered is not None, "answer() comes after a job is offered"
        owner, number = self._offered
        self._offered = None
        queue = self._queues[owner]
        self._next[number] += 1
        if placed and self._next[number] < len(self._groups[number].job_ids):
            heapq.heapreplace(queue, self._entry(number))
        else:
            heapq.heappop(queue)
        if queue:
            heapq.heappush(self._users, self._user_key(owner))


# --- quotas and fair share --------------------------------------------------------------------


class _Ledger:
    """What each user and team holds: the policy's usage plus what this pass has placed."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._users = dict(policy.user_usage)
        self._teams = dict(policy.team_usage)
        self._per_share: dict[int, tuple[float, float]] = {}

    def user(self, owner: int) -> Usage:
        return self._users.get(owner, _NOTHING)

    def team(self, team: int) -> Usage:
        return self._teams.get(team, _NOTHING)

    def per_share(self, owner: int) -> tuple[float, float]:
        """The user's GPUs and jobs per unit of share: who has had the least goes first."""
        if owner not in self._per_share:
            share = self._policy.shares.get(owner, 1.0)
            usage = self.user(owner)
            ratio = (usage.gpus / share, usage.jobs / share) if share > 0 else (_LAST, _LAST)
            self._per_share[owner] = ratio
        return self._per_share[owner]

    def add(self, request: Request) -> None:
        self._users[request.owner] = _plus(self.user(request.owner), request)
        self._per_share.pop(request.owner, None)
        if request.team is not None:
            self._teams[request.team] = _plus(self.team(request.team), request)

    def over_quota(self, request: Request) -> bool:
        return self._quota_reason(request) is not None

    def quota_reason(self, request: Request) -> str:
        reason = self._quota_reason(request)
        # Use only grows during a pass, so a job over quota when considered still is.
        assert reason is not None, "a job over its quota when considered is over it after"
        return reason

    def _quota_reason(self, request: Request) -> str | None:
        limits = self._policy.user_limits.get(request.owner)
        if limits is not None:
            reason = _beyond(limits, self.user(request.owner), request, "quota")
            if reason is not None:
                return reason
        if request.team is None:
            return None
        limits = self._policy.team_limits.get(request.team)
        if limits is None:
            return None
        return _beyond(limits, self.team(request.team), request, "team quota")


_NOTHING = Usage()
_LAST = float("inf")  # per share, for a user whose share is 0


def _plus(usage: Usage, request: Request) -> Usage:
    return Usage(usage.gpus + request.total_gpus, usage.jobs + 1)


def _beyond(limits: Limits, usage: Usage, request: Request, which: str) -> str | None:
    if limits.max_gpus is not None and request.total_gpus > limits.max_gpus:
        # Waiting cannot help: say so, instead of a count that looks as if it might.
        return (
            f"waiting: it needs {request.total_gpus} GPUs and the {which} allows"
            f" {limits.max_gpus} at once; ask a site admin to raise it"
        )
    if limits.max_gpus is not None and usage.gpus + request.total_gpus > limits.max_gpus:
        return f"waiting: {which} {usage.gpus}/{limits.max_gpus} GPUs"
    if limits.max_jobs is not None and usage.jobs + 1 > limits.max_jobs:
        return f"waiting: {which} {usage.jobs}/{limits.max_jobs} jobs"
    return None


# --- fit --------------------------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]


class _Shape(NamedTuple):
    """What one replica needs, in a form that hashes: jobs of one shape fare alike in a pass."""

    model: str  # casefolded; "" for a CPU-only replica, whose model does not matter
    labels: Labels
    gpus: int
    cpus: float
    memory_mb: int

    @classmethod
    def of(cls, request: Request) -> "_Shape":
        model = request.gpu_model.casefold() if request.gpus else ""
        labels = tuple(sorted(request.labels.items())) if request.labels else ()
        return cls(model, labels, request.gpus, request.cpus, request.memory_mb)


def _carries(host: HostCapacity, labels: Labels) -> bool:
    return all(host.labels.get(key) == value for key, value in labels)


def _gpus_of(host: HostCapacity, model: str) -> tuple[int, ...]:
    """The indices of the host's GPUs whose model contains ``model`` (casefolded), lowest first."""
    found = host.gpu_memo.get(model)
    if found is None:
        found = tuple(sorted(gpu.index for gpu in host.gpus if model in gpu.model.casefold()))
        host.gpu_memo[model] = found
    return found


class _Index(Protocol):
    def update(self, host: "_HostState") -> None: ...


class _HostState:
    """A host's free capacity during the pass, and the indexes to tell when it changes."""

    def __init__(self, position: int, capacity: HostCapacity) -> None:
        self.position = position
        self.capacity = capacity
        self.free_cpus = capacity.cpus - capacity.used_cpus
        self.free_memory_mb = capacity.memory_mb - capacity.used_memory_mb
        self.free_gpus = {gpu.index for gpu in capacity.gpus} - capacity.used_gpus
        self.indexes: list[_Index] = []

    def of_model(self, model: str) -> tuple[int, ...]:
        """The indices of its GPUs of ``model``, busy or not (kept in its ``gpu_memo``)."""
        return _gpus_of(self.capacity, model)

    def free_of(self, model: str) -> list[int]:
        return [index for index in self.of_model(model) if index in self.free_gpus]

    def holds(self, shape: _Shape) -> bool:
        """Whether the CPUs and memory of one more replica fit (the GPUs are the index's)."""
        return self.free_cpus + EPSILON >= shape.cpus and self.free_memory_mb >= shape.memory_mb

    def take(self, shape: _Shape) -> tuple[int, ...]:
        gpu_indices = tuple(self.free_of(shape.model)[: shape.gpus])
        self.free_cpus -= shape.cpus
        self.free_memory_mb -= shape.memory_mb
        self.free_gpus.difference_update(gpu_indices)
        self._changed()
        return gpu_indices

    def snapshot(self) -> tuple[float, int, frozenset[int]]:
        return (self.free_cpus, self.free_memory_mb, frozenset(self.free_gpus))

    def restore(self, snapshot: tuple[float, int, frozenset[int]]) -> None:
        # The exact values from before, not a sum: (a - b) + b may miss a by a rounding error,
        # and a failure remembered this pass must stay a failure.
        self.free_cpus, self.free_memory_mb, free_gpus = snapshot
        self.free_gpus = set(free_gpus)
        self._changed()

    def _changed(self) -> None:
        for index in self.indexes:
            index.update(self)


class _GpuIndex:
    """Hosts with GPUs of one model that take work and carry some labels, by free GPU count.

    Each bucket holds host positions in the order the caller gave the hosts, so that among
    hosts with as many GPUs free, the first given wins.
    """

    def __init__(self, model: str, hosts: Sequence[_HostState]) -> None:
        self._model = model
        self._hosts = {host.position: host for host in hosts}
        self._count = {host.position: len(host.free_of(model)) for host in hosts}
        self._buckets: list[list[int]] = [
            [] for _ in range(max(self._count.values(), default=0) + 1)
        ]
        for host in hosts:
            self._buckets[self._count[host.position]].append(host.position)
            host.indexes.append(self)

    def best_fit(self, shape: _Shape) -> _HostState | None:
        for bucket in self._buckets[shape.gpus :]:
            for position in bucket:
                host = self._hosts[position]
                if host.holds(shape):
                    return host
        return None

    def update(self, host: _HostState) -> None:
        before, now = self._count[host.position], len(host.free_of(self._model))
        if before == now:
            return
        bucket = self._buckets[before]
        del bucket[bisect_left(bucket, host.position)]
        insort(self._buckets[now], host.position)
        self._count[host.position] = now


CpuKey = tuple[bool, float, int]  # (has GPUs, free CPUs, position): the order CPU jobs prefer


class _CpuIndex:
    """Hosts that take work and carry some labels, in the order a CPU-only replica tries them."""

    def __init__(self, hosts: Sequence[_HostState]) -> None:
        self._hosts = {host.position: host for host in hosts}
        self._keys = {host.position: self._key(host) for host in hosts}
        self._entries = sorted(self._keys.values())
        for host in hosts:
            host.indexes.append(self)

    @staticmethod
    def _key(host: _HostState) -> CpuKey:
        return (bool(host.capacity.gpus), host.free_cpus, host.position)

    def best_fit(self, shape: _Shape) -> _HostState | None:
        entries = self._entries
        for has_gpus in (False, True):
            # A little below the need, so that hosts short of it by less than EPSILON are tried.
            start = bisect_left(entries, (has_gpus, shape.cpus - 2 * EPSILON, -1))
            for at in range(start, len(entries)):
                gpus, _, position = entries[at]
                if gpus != has_gpus:
                    break
                host = self._hosts[position]
                if host.holds(shape):
                    return host
        return None

    def update(self, host: _HostState) -> None:
        before, now = self._keys[host.position], self._key(host)
        if before == now:
            return
        del self._entries[bisect_left(self._entries, before)]
        insort(self._entries, now)
        self._keys[host.position] = now


class _Fleet:
    """The hosts' free capacity during the pass, with indexes built as shapes first ask."""

    def __init__(self, hosts: Sequence[HostCapacity]) -> None:
        self._hosts = [_HostState(position, host) for position, host in enumerate(hosts)]
        self._gpu_indexes: dict[tuple[str, Labels], _GpuIndex] = {}
        self._cpu_indexes: dict[Labels, _CpuIndex] = {}

    def place(self, shape: _Shape, replicas: int) -> tuple[ReplicaPlacement, ...] | None:
        """Take room for all ``replicas``, or for none: what a failed gang took is given back."""
        taken: list[tuple[_HostState, tuple[float, int, frozenset[int]]]] = []
        placements: list[ReplicaPlacement] = []
        for _ in range(replicas):
            host = self._best_fit(shape)
            if host is None:
                for host_taken, snapshot in reversed(taken):
                    host_taken.restore(snapshot)
                return None
            taken.append((host, host.snapshot()))
            placements.append(ReplicaPlacement(host.capacity.name, host.take(shape)))
        return tuple(placements)

    def _best_fit(self, shape: _Shape) -> _HostState | None:
        if shape.gpus:
            return self._gpu_index(shape.model, shape.labels).best_fit(shape)
        return self._cpu_index(shape.labels).best_fit(shape)

    def _gpu_index(self, model: str, labels: Labels) -> _GpuIndex:
        key = (model, labels)
        if key not in self._gpu_indexes:
            # Busy ones too, in bucket 0: counts move both ways (a failed gang gives back), and
            # an index that knows every host with the model never misses one.
            hosts = [host for host in self._open_to(labels) if host.of_model(model)]
            self._gpu_indexes[key] = _GpuIndex(model, hosts)
        return self._gpu_indexes[key]

    def _cpu_index(self, labels: Labels) -> _CpuIndex:
        if labels not in self._cpu_indexes:
            self._cpu_indexes[labels] = _CpuIndex(self._open_to(labels))
        return self._cpu_indexes[labels]

    def of_model(self, position: int, model: str) -> tuple[int, ...]:
        return self._hosts[position].of_model(model)

    def _open_to(self, labels: Labels) -> list[_HostState]:
        return [h for h in self._hosts if h.capacity.accepting and _carries(h.capacity, labels)]


class _Failures:
    """The smallest shapes that found no room in this pass, per GPU model and labels.

    Free capacity only shrinks during a pass (a failed gang gives back exactly what it took),
    so a job at least as large as one that failed fails too, and is turned away without a
    search: most of a long queue costs next to nothing.
    """

    def __init__(self) -> None:
        self._smallest: dict[tuple[str, Labels], list[tuple[int, float, int, int]]] = {}
        self._seen: set[tuple[_Shape, int]] = set()  # failed or within a failure: one lookup

    def known(self, shape: _Shape, replicas: int) -> bool:
        if (shape, replicas) in self._seen:
            return True
        need = (shape.gpus, shape.cpus, shape.memory_mb, replicas)
        if any(_within(failed, need) for failed in self._smallest.get(shape[:2], ())):
            self._seen.add((shape, replicas))
            return True
        return False

    def add(self, shape: _Shape, replicas: int) -> None:
        need = (shape.gpus, shape.cpus, shape.memory_mb, replicas)
        # Those the new one is within say no more than it does.
        kept = [failed for failed in self._smallest.get(shape[:2], ()) if not _within(need, failed)]
        self._smallest[shape[:2]] = [*kept, need]
        self._seen.add((shape, replicas))


def _within(small: tuple[int, float, int, int], large: tuple[int, float, int, int]) -> bool:
    return all(a <= b for a, b in zip(small, large, strict=True))


# --- reasons ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Verdict:
    reason: str
    fits_nowhere: bool


class _Kind(NamedTuple):
    """Hosts alike in what a shape can use of them when empty; fleets have few kinds."""

    cpus: float
    memory_mb: int
    gpus: int  # of the shape's model
    accepting: bool


class _Verdicts:
    """Why a shape cannot run even on empty hosts, if so: the same for all its jobs, so once."""

    def __init__(
        self,
        hosts: Sequence[HostCapacity],
        of_model: Callable[[int, str], tuple[int, ...]],
        memo: FleetMemo,
    ) -> None:
        self._of_model = of_model  # a host's GPUs of a model, by position: the fleet's, shared
        self._hosts = hosts
        self._kinds = memo.kinds
        self._known = memo.verdicts

    def of(self, shape: _Shape, request: Request) -> _Verdict | None:
        # The model as written goes in the key only for the reason's wording.
        key = (shape, request.replicas, request.gpu_model)
        if key not in self._known:
            self._known[key] = self._verdict(shape, request)
        return self._known[key]

    def _verdict(self, shape: _Shape, request: Request) -> _Verdict | None:
        kinds = self._kinds_for(shape.model, shape.labels)
        each = {kind: _copies_when_empty(shape, kind, request.replicas) for kind in kinds}
        held = {kind: copies * len(kinds[kind]) for kind, copies in each.items() if copies}
        if not held:
            return _Verdict(_never_fits(request, self._hosts), fits_nowhere=True)
        if sum(held.values()) < request.replicas:
            most = sum(held.values())
            reason = f"the hosts can hold at most {most} of its {request.replicas} replicas at once"
            return _Verdict(reason, fits_nowhere=True)
        if sum(copies for kind, copies in held.items() if kind.accepting) < request.replicas:
            idle = sorted(p for kind in held if not kind.accepting for p in kinds[kind])
            names = ", ".join(self._hosts[position].name for position in idle)
            reason = f"waiting for a host: those that could run it ({names}) take no new work now"
            return _Verdict(reason, fits_nowhere=False)
        return None

    def _kinds_for(self, model: str, labels: Labels) -> dict[_Kind, list[int]]:
        """The hosts that carry ``labels`` (their positions), by kind for GPUs of ``model``."""
        if (model, labels) not in self._kinds:
            kinds: dict[_Kind, list[int]] = defaultdict(list)
            for position, host in enumerate(self._hosts):
                if _carries(host, labels):
                    gpus = len(self._of_model(position, model))
                    kind = _Kind(host.cpus, host.memory_mb, gpus, host.accepting)
                    kinds[kind].append(position)
            self._kinds[model, labels] = kinds
        return self._kinds[model, labels]


def _copies_when_empty(shape: _Shape, kind: _Kind, most: int) -> int:
    """How many replicas of ``shape`` (up to ``most``) a host of ``kind`` holds, empty."""
    cpus, memory_mb, gpus = kind.cpus, kind.memory_mb, kind.gpus
    copies = 0
    # One at a time, as the placer takes them, so that CPU fractions round the same way.
    while copies < most and gpus >= shape.gpus:
        if cpus + EPSILON < shape.cpus or memory_mb < shape.memory_mb:
            break
        cpus, memory_mb, gpus = cpus - shape.cpus, memory_mb - shape.memory_mb, gpus - shape.gpus
        copies += 1
    return copies


def _never_fits(request: Request, hosts: Sequence[HostCapacity]) -> str:
    """Which of a replica's needs no host meets, for the user to change it."""
    labels = tuple(sorted(request.labels.items()))
    hosts = [host for host in hosts if _carries(host, labels)]
    if not hosts:
        wanted = ", ".join(f"{key}={value}" for key, value in labels)
        return f"no host has the labels {wanted}" if wanted else "no host is registered"
    most_gpus = max(len(_gpus_of(host, request.gpu_model.casefold())) for host in hosts)
    of_model = f" of model {request.gpu_model}" if request.gpu_model else ""
    if most_gpus == 0 and request.gpus:
        return f"no host has a GPU{of_model}"
    if most_gpus < request.gpus:
        return f"no host has {request.gpus} GPUs{of_model}; the largest has {most_gpus}"
    most_cpus = max(host.cpus for host in hosts)
    if most_cpus + EPSILON < request.cpus:
        return f"no host has {request.cpus:g} CPUs; the largest has {most_cpus:g}"
    most_memory = max(host.memory_mb for host in hosts)
    if most_memory < request.memory_mb:
        return f"no host has {_gb(request.memory_mb)} of memory; the largest has {_gb(most_memory)}"
    needs = [f"{request.cpus:g} CPUs", f"{_gb(request.memory_mb)} of memory"]
    if request.gpus:
        needs.append(_count(request.gpus, "GPU"))
    return f"no single host has {', '.join(needs[:-1])} and {needs[-1]} together"


def _no_room(request: Request) -> str:
    machine = request.machine or _describe(request)
    if request.replicas == 1:
        return f"waiting: no host with {machine} free"
    return f"waiting: no hosts with {request.replicas}\N{MULTIPLICATION SIGN}{machine} free"


def _describe(request: Request) -> str:
    """A replica's needs in words, for a job without a machine type's name."""
    needs = [f"{request.cpus:g} CPUs", f"{_gb(request.memory_mb)} of memory"]
    if request.gpus:
        model = f"{request.gpu_model} " if request.gpu_model else ""
        needs.insert(0, f"{request.gpus} {model}{'GPU' if request.gpus == 1 else 'GPUs'}")
    return ", ".join(needs)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _gb(memory_mb: int) -> str:
    return f"{memory_mb / 1024:g} GB"
