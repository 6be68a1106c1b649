"""Placement's promises on random fleets, queues and policies, checked against brute force.

CPU counts are multiples of 0.5 here, so that sums are exact and the brute force agrees with the
placer to the last bit. Replicas of one job are alike, so whether a job fits what is left is
exact too: each host holds some whole number of them, and those numbers add up.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from fleet.placement import (
    EPSILON,
    Gpu,
    HostCapacity,
    Limits,
    Placement,
    PlacementResult,
    Policy,
    Request,
    Usage,
    place,
)

MODELS = ("NVIDIA A100-SXM4-80GB", "Tesla T4")
WANTED = ("", "a100", "T4")
ZONES: tuple[dict[str, str], ...] = ({}, {"zone": "eu"})

# Modest, for a file that runs in seconds; too_slow off, as CI machines are often busy.
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- strategies -------------------------------------------------------------------------------


@st.composite
def hosts_st(draw: st.DrawFn, name: str, *, fresh: bool = False) -> HostCapacity:
    """A host, with some of it in use unless ``fresh``."""
    cpus = draw(st.integers(1, 32)) / 2
    memory_mb = draw(st.sampled_from([2048, 8192, 32768]))
    models = draw(st.lists(st.sampled_from(MODELS), max_size=6))
    gpus = tuple(Gpu(index, model) for index, model in enumerate(models))
    used_cpus, used_memory_mb, used_gpus = 0.0, 0, frozenset[int]()
    if not fresh:
        used_cpus = draw(st.integers(0, int(cpus * 2))) / 2
        used_memory_mb = draw(st.sampled_from([0, 0, 1024, memory_mb]))
        used_gpus = frozenset(draw(st.sets(st.integers(0, len(gpus) - 1)))) if gpus else used_gpus
    return HostCapacity(
        name=name,
        cpus=cpus,
        memory_mb=memory_mb,
        gpus=gpus,
        used_cpus=used_cpus,
        used_memory_mb=used_memory_mb,
        used_gpus=used_gpus,
        accepting=draw(st.sampled_from([True, True, True, False])),
        labels=draw(st.sampled_from(ZONES)),
    )


@st.composite
def fleets_st(draw: st.DrawFn) -> list[HostCapacity]:
    count = draw(st.integers(0, 5))
    return [draw(hosts_st(f"h{i}")) for i in range(count)]


@dataclass(frozen=True)
class Machine:
    """What one replica needs: jobs pick from a few of these, as they pick machine types."""

    cpus: float
    memory_mb: int
    gpus: int
    gpu_model: str
    labels: Mapping[str, str]


@st.composite
def machines_st(draw: st.DrawFn, *, plain: bool = False) -> Machine:
    """A machine type; ``plain`` ones ask for no labels and any GPU, so more jobs compete."""
    return Machine(
        cpus=draw(st.sampled_from([0.5, 1.0, 2.0, 4.0, 8.0])),
        memory_mb=draw(st.sampled_from([512, 1024, 4096, 16384])),
        gpus=draw(st.integers(0, 4)),
        gpu_model="" if plain else draw(st.sampled_from(WANTED)),
        labels={} if plain else draw(st.sampled_from([{}, {}, {"zone": "eu"}])),
    )


@st.composite
def requests_st(draw: st.DrawFn, job_id: int, machines: Sequence[Machine]) -> Request:
    machine = draw(st.sampled_from(machines))
    return Request(
        job_id,
        cpus=machine.cpus,
        memory_mb=machine.memory_mb,
        gpus=machine.gpus,
        gpu_model=machine.gpu_model,
        labels=machine.labels,
        replicas=draw(st.sampled_from([1, 1, 1, 2, 3])),
        owner=draw(st.integers(0, 3)),
        team=draw(st.sampled_from([None, 0, 1])),
        priority=draw(st.integers(0, 2)),
    )


@st.composite
def queues_st(draw: st.DrawFn, *, plain: bool = False) -> list[Request]:
    machines = draw(st.lists(machines_st(plain=plain), min_size=1, max_size=4))
    count = draw(st.integers(0, 20))
    return [draw(requests_st(job_id, machines)) for job_id in range(1, count + 1)]


@st.composite
def busy_hosts_st(draw: st.DrawFn) -> list[HostCapacity]:
    """One or two hosts that take work: room for a few plain jobs, and a queue competes for it."""
    count = draw(st.integers(1, 2))
    hosts = [draw(hosts_st(f"h{i}")) for i in range(count)]
    return [replace(host, accepting=True, labels={}) for host in hosts]


limits_st = st.builds(
    Limits,
    max_gpus=st.one_of(st.none(), st.integers(0, 10)),
    max_jobs=st.one_of(st.none(), st.integers(0, 5)),
)
usage_st = st.builds(Usage, gpus=st.integers(0, 6), jobs=st.integers(0, 3))
policies_st = st.builds(
    Policy,
    user_limits=st.dictionaries(st.integers(0, 3), limits_st, max_size=4),
    team_limits=st.dictionaries(st.integers(0, 1), limits_st, max_size=2),
    shares=st.dictionaries(st.integers(0, 3), st.sampled_from([0.5, 1.0, 2.0]), max_size=4),
    user_usage=st.dictionaries(st.integers(0, 3), usage_st, max_size=4),
    team_usage=st.dictionaries(st.integers(0, 1), usage_st, max_size=2),
)


# --- brute force ------------------------------------------------------------------------------


@dataclass
class Room:
    """What a host has free, in the plainest terms."""

    host: HostCapacity
    cpus: float
    memory_mb: int
    gpus: dict[int, str] = field(default_factory=dict)  # free index -> model

    @classmethod
    def left_on(cls, host: HostCapacity) -> "Room":
        free = {gpu.index: gpu.model for gpu in host.gpus if gpu.index not in host.used_gpus}
        return cls(host, host.cpus - host.used_cpus, host.memory_mb - host.used_memory_mb, free)

    def copies(self, request: Request) -> int:
        """How many replicas of ``request`` fit here, up to all of them."""
        wanted = request.gpu_model.casefold()
        gpus = sum(wanted in model.casefold() for model in self.gpus.values())
        cpus, memory_mb, copies = self.cpus, self.memory_mb, 0
        while copies < request.replicas and gpus >= request.gpus:
            if cpus + EPSILON < request.cpus or memory_mb < request.memory_mb:
                break
            cpus, memory_mb, gpus = (
                cpus - request.cpus,
                memory_mb - request.memory_mb,
                gpus - request.gpus,
            )
            copies += 1
        return copies


def carries(host: HostCapacity, request: Request) -> bool:
    return all(host.labels.get(key) == value for key, value in request.labels.items())


def fits(rooms: Iterable[Room], request: Request, *, accepting_only: bool = True) -> bool:
    """Whether all of ``request``'s replicas fit in ``rooms``, on hosts that may run it."""
    eligible = [
        r for r in rooms if carries(r.host, request) and (r.host.accepting or not accepting_only)
    ]
    return sum(room.copies(request) for room in eligible) >= request.replicas


def take(rooms: Mapping[str, Room], request: Request, placement: Placement) -> None:
    """Take what ``placement`` holds from ``rooms``, checking every promise about one host."""
    assert len(placement.replicas) == request.replicas, "a gang is placed whole"
    for replica in placement.replicas:
        room = rooms[replica.host]
        assert room.host.accepting, f"{replica.host} takes no new work"
        assert carries(room.host, request), f"{replica.host} lacks the labels"
        assert len(replica.gpu_indices) == request.gpus
        assert len(set(replica.gpu_indices)) == request.gpus
        for index in replica.gpu_indices:
            assert index in room.gpus, f"GPU {index} of {replica.host} is not free"
            assert request.gpu_model.casefold() in room.gpus.pop(index).casefold()
        room.cpus -= request.cpus
        room.memory_mb -= request.memory_mb
        assert room.cpus + EPSILON >= 0, f"{replica.host}'s CPUs are over-committed"
        assert room.memory_mb >= 0, f"{replica.host}'s memory is over-committed"


def give(rooms: Mapping[str, Room], request: Request, placement: Placement) -> None:
    for replica in placement.replicas:
        room = rooms[replica.host]
        room.cpus += request.cpus
        room.memory_mb += request.memory_mb
        models = {gpu.index: gpu.model for gpu in room.host.gpus}
        room.gpus.update({index: models[index] for index in replica.gpu_indices})


def leftover(
    hosts: Sequence[HostCapacity], requests: Sequence[Request], result: PlacementResult
) -> dict[str, Room]:
    """What the hosts have free after the pass, checking capacity and gangs on the way."""
    by_id = {request.job_id: request for request in requests}
    rooms = {host.name: Room.left_on(host) for host in hosts}
    for placement in result.placed:
        take(rooms, by_id[placement.job_id], placement)
    return rooms


@dataclass
class Holdings:
    """What users and teams hold after a pass: the policy's usage plus what it placed."""

    users: Counter[tuple[int, str]] = field(default_factory=Counter)
    teams: Counter[tuple[int, str]] = field(default_factory=Counter)

    @classmethod
    def after(cls, policy: Policy, placed: Iterable[Request]) -> "Holdings":
        held = cls()
        for who, usage in policy.user_usage.items():
            held.users.update({(who, "gpus"): usage.gpus, (who, "jobs"): usage.jobs})
        for who, usage in policy.team_usage.items():
            held.teams.update({(who, "gpus"): usage.gpus, (who, "jobs"): usage.jobs})
        for request in placed:
            gpus = request.gpus * request.replicas
            held.users.update({(request.owner, "gpus"): gpus, (request.owner, "jobs"): 1})
            if request.team is not None:
                held.teams.update({(request.team, "gpus"): gpus, (request.team, "jobs"): 1})
        return held

    def beyond(self, policy: Policy, request: Request) -> bool:
        """Whether ``request`` would take its user or its team past a limit now."""
        pairs = [(policy.user_limits.get(request.owner), self.users, request.owner)]
        if request.team is not None:
            pairs.append((policy.team_limits.get(request.team), self.teams, request.team))
        gpus = request.gpus * request.replicas
        return any(
            limits is not None
            and (
                (limits.max_gpus is not None and held[who, "gpus"] + gpus > limits.max_gpus)
                or (limits.max_jobs is not None and held[who, "jobs"] + 1 > limits.max_jobs)
            )
            for limits, held, who in pairs
        )


def check_pass(
    hosts: Sequence[HostCapacity],
    requests: Sequence[Request],
    policy: Policy,
    result: PlacementResult,
) -> dict[str, Room]:
    """Every promise of one pass; returns what is left free."""
    by_id = {request.job_id: request for request in requests}
    ids = [p.job_id for p in result.placed] + [u.job_id for u in result.unplaced]
    assert sorted(ids) == sorted(by_id), "each job is placed or unplaced, once"
    rooms = leftover(hosts, requests, result)
    check_quotas(policy, [by_id[p.job_id] for p in result.placed])
    held = Holdings.after(policy, (by_id[p.job_id] for p in result.placed))
    for unplaced in result.unplaced:
        request = by_id[unplaced.job_id]
        if unplaced.quota:
            assert held.beyond(policy, request), f"job {request.job_id} is within its quotas"
        elif unplaced.fits_nowhere:
            empty = [
                Room(h, h.cpus, h.memory_mb, {g.index: g.model for g in h.gpus}) for h in hosts
            ]
            assert not fits(empty, request, accepting_only=False), f"job {request.job_id} fits"
        else:
            assert not fits(rooms.values(), request), f"job {request.job_id} fits what is left"
    return rooms


def check_quotas(policy: Policy, placed: Sequence[Request]) -> None:
    """No user or team went past a limit: one that got anything ends within it."""
    held = Holdings.after(policy, placed)
    for who, limits in policy.user_limits.items():
        mine = [r for r in placed if r.owner == who]
        assert_within(limits, held.users[who, "gpus"], held.users[who, "jobs"], mine)
    for who, limits in policy.team_limits.items():
        ours = [r for r in placed if r.team == who]
        assert_within(limits, held.teams[who, "gpus"], held.teams[who, "jobs"], ours)


def assert_within(limits: Limits, gpus: int, jobs: int, placed: Sequence[Request]) -> None:
    if limits.max_gpus is not None and any(r.gpus for r in placed):
        assert gpus <= limits.max_gpus
    if limits.max_jobs is not None and placed:
        assert jobs <= limits.max_jobs


# --- one pass ---------------------------------------------------------------------------------


@SETTINGS
@given(hosts=fleets_st(), requests=queues_st(), policy=policies_st)
def test_a_pass_keeps_every_promise(
    hosts: list[HostCapacity], requests: list[Request], policy: Policy
) -> None:
    # Capacity, quotas, gangs and work conservation: check_pass says which broke.
    check_pass(hosts, requests, policy, place(hosts, requests, policy))


@SETTINGS
@given(hosts=busy_hosts_st(), requests=queues_st(plain=True))
def test_no_job_waits_for_capacity_a_lower_priority_one_took(
    hosts: list[HostCapacity], requests: list[Request]
) -> None:
    result = place(hosts, requests)

    # Give back all that lower-priority jobs took: a job still waiting must not fit even then.
    rooms = leftover(hosts, requests, result)
    by_id = {request.job_id: request for request in requests}
    for unplaced in result.unplaced:
        waiting = by_id[unplaced.job_id]
        if unplaced.quota or unplaced.fits_nowhere:
            continue
        with_lower_back = {
            name: replace(room, gpus=dict(room.gpus)) for name, room in rooms.items()
        }
        for placement in result.placed:
            if by_id[placement.job_id].priority < waiting.priority:
                give(with_lower_back, by_id[placement.job_id], placement)
        assert not fits(with_lower_back.values(), waiting), f"job {waiting.job_id} lost its room"


@SETTINGS
@given(
    hosts=st.lists(st.integers(0, 8), max_size=4),
    owners=st.lists(st.integers(0, 3), max_size=30),
    start=st.integers(0, 4),
)
def test_users_with_equal_shares_get_turns_about(
    hosts: list[int], owners: list[int], start: int
) -> None:
    fleet = [
        HostCapacity(
            f"h{i}", cpus=8, memory_mb=8192, gpus=tuple(Gpu(g, MODELS[0]) for g in range(n))
        )
        for i, n in enumerate(hosts)
    ]
    requests = [Request(i, cpus=1, memory_mb=1024, gpus=1, owner=o) for i, o in enumerate(owners)]
    usage = {owner: Usage(gpus=start, jobs=start) for owner in set(owners)}

    result = place(fleet, requests, Policy(user_usage=usage))

    placed = Counter(requests[p.job_id].owner for p in result.placed)
    for waiting in {requests[u.job_id].owner for u in result.unplaced}:
        assert all(count <= placed[waiting] + 1 for count in placed.values()), placed


# --- a fleet over time ------------------------------------------------------------------------


@dataclass(frozen=True)
class Running:
    request: Request
    placement: Placement


class FleetOverTime(RuleBasedStateMachine):
    """Jobs come and go, hosts join, leave and drain; every pass keeps every promise."""

    hosts_bundle = Bundle("hosts")

    def __init__(self) -> None:
        super().__init__()
        self.hosts: dict[str, HostCapacity] = {}  # as registered: nothing in use
        self.queue: list[Request] = []
        self.running: dict[int, Running] = {}
        self.policy = Policy()
        self.machines: list[Machine] = []
        self.next_job = 1
        self.next_host = 0

    @initialize(policy=policies_st, machines=st.lists(machines_st(), min_size=1, max_size=4))
    def set_up(self, policy: Policy, machines: list[Machine]) -> None:
        # Usage comes from the running jobs here, not from the draw.
        self.policy = replace(policy, user_usage={}, team_usage={})
        self.machines = machines

    @rule(target=hosts_bundle, data=st.data())
    def join(self, data: st.DataObject) -> str:
        name = f"h{self.next_host}"
        self.next_host += 1
        self.hosts[name] = data.draw(hosts_st(name, fresh=True))
        return name

    @rule(name=consumes(hosts_bundle))
    def leave(self, name: str) -> None:
        # Its jobs are lost with it: what they held elsewhere is free again.
        del self.hosts[name]
        for job_id, run in list(self.running.items()):
            if any(replica.host == name for replica in run.placement.replicas):
                del self.running[job_id]

    @rule(name=hosts_bundle, accepting=st.booleans())
    def drain_or_resume(self, name: str, accepting: bool) -> None:
        if name in self.hosts:
            self.hosts[name] = replace(self.hosts[name], accepting=accepting)

    @rule(data=st.data(), count=st.integers(1, 6))
    def submit(self, data: st.DataObject, count: int) -> None:
        for _ in range(count):
            self.queue.append(data.draw(requests_st(self.next_job, self.machines)))
            self.next_job += 1

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        del self.running[data.draw(st.sampled_from(sorted(self.running)))]

    @rule()
    def run_pass(self) -> None:
        hosts = self.capacities()
        policy = replace(self.policy, user_usage=self.usage("owner"), team_usage=self.usage("team"))

        result = place(hosts, self.queue, policy)

        check_pass(hosts, self.queue, policy, result)
        by_id = {request.job_id: request for request in self.queue}
        for placement in result.placed:
            self.running[placement.job_id] = Running(by_id[placement.job_id], placement)
        self.queue = [by_id[unplaced.job_id] for unplaced in result.unplaced]

    @invariant()
    def nothing_runs_twice_or_on_a_gpu_twice(self) -> None:
        # capacities() also checks the running jobs against each host's inventory.
        self.capacities()
        assert not {r.job_id for r in self.queue} & set(self.running)

    def capacities(self) -> list[HostCapacity]:
        """The hosts with what the running jobs hold on them, checked as it is added up."""
        rooms = {name: Room.left_on(host) for name, host in self.hosts.items()}
        for run in self.running.values():
            for replica in run.placement.replicas:
                room = rooms[replica.host]
                for index in replica.gpu_indices:
                    assert room.gpus.pop(index, None) is not None, "a GPU is held twice"
                room.cpus -= run.request.cpus
                room.memory_mb -= run.request.memory_mb
                assert room.cpus + EPSILON >= 0, "CPUs are over-committed"
                assert room.memory_mb >= 0, "memory is over-committed"
        return [
            replace(
                host,
                used_cpus=host.cpus - rooms[name].cpus,
                used_memory_mb=host.memory_mb - rooms[name].memory_mb,
                used_gpus=frozenset(gpu.index for gpu in host.gpus) - set(rooms[name].gpus),
            )
            for name, host in self.hosts.items()
        ]

    def usage(self, who: str) -> dict[int, Usage]:
        held: Counter[tuple[int, str]] = Counter()
        for run in self.running.values():
            key = run.request.owner if who == "owner" else run.request.team
            if key is not None:
                held.update(
                    {(key, "gpus"): run.request.gpus * run.request.replicas, (key, "jobs"): 1}
                )
        keys = {key for key, _ in held}
        return {key: Usage(held[key, "gpus"], held[key, "jobs"]) for key in keys}


FleetOverTime.TestCase.settings = settings(SETTINGS, stateful_step_count=30)
test_a_fleet_over_time_keeps_every_promise = FleetOverTime.TestCase
