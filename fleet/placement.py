"""Where queued jobs go: a pure function from free capacity and requests to placements.

No database here, so that the rules can be read and tested on their own. The scheduler
(``fleet.scheduler``) feeds it what the hosts have and hold, and writes what it decides.

The rules, for now: requests are taken in the order given (the scheduler's priority order) and
each goes to the first host that fits it, so a small job may pass a bigger one that does not
fit yet (which can then wait behind a stream of small ones: fairness is the scheduler's to add
when it orders the requests). Hosts are tried in an order that keeps GPUs usable: a CPU job
goes to hosts without GPUs first, a GPU job to the host where it leaves the fewest matching
GPUs idle, so that a later job wanting several GPUs on one host still finds them together.

A request that is not placed gets a reason written for its owner, and ``fits_nowhere`` tells
"no host could ever run this" (ask for less, or add a host) from "waiting for capacity".
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Request:
    """One queued job's needs. ``gpu_model`` is a case-insensitive substring ("A100")."""

    job_id: int
    cpus: float
    memory_mb: int
    gpus: int = 0
    gpu_model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # the host must carry all of them


@dataclass(frozen=True)
class Placement:
    job_id: int
    host: str
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True)
class Unplaced:
    job_id: int
    reason: str
    fits_nowhere: bool


@dataclass(frozen=True)
class PlacementResult:
    placed: list[Placement]
    unplaced: list[Unplaced]


def place(hosts: Sequence[HostCapacity], requests: Sequence[Request]) -> PlacementResult:
    """Place ``requests`` in order on ``hosts``, first fit, never beyond any host's capacity."""
    free = {host.name: _Free.of(host) for host in hosts}
    placed: list[Placement] = []
    unplaced: list[Unplaced] = []
    waiting = 0  # unplaced so far that could run once capacity frees up
    for request in requests:
        placement = _first_fit(request, hosts, free)
        if placement is not None:
            free[placement.host].take(request, placement.gpu_indices)
            placed.append(placement)
        else:
            why = _why_unplaced(request, hosts, ahead=waiting)
            waiting += not why.fits_nowhere
            unplaced.append(why)
    return PlacementResult(placed=placed, unplaced=unplaced)


@dataclass
class _Free:
    cpus: float
    memory_mb: int
    gpus: set[int]

    @classmethod
    def of(cls, host: HostCapacity) -> "_Free":
        gpus = {gpu.index for gpu in host.gpus} - host.used_gpus
        return cls(host.cpus - host.used_cpus, host.memory_mb - host.used_memory_mb, gpus)

    @classmethod
    def whole(cls, host: HostCapacity) -> "_Free":
        return cls(host.cpus, host.memory_mb, {gpu.index for gpu in host.gpus})

    def take(self, request: Request, gpu_indices: tuple[int, ...]) -> None:
        self.cpus -= request.cpus
        self.memory_mb -= request.memory_mb
        self.gpus -= set(gpu_indices)


def _first_fit(
    request: Request, hosts: Sequence[HostCapacity], free: Mapping[str, _Free]
) -> Placement | None:
    candidates = [host for host in hosts if host.accepting and _eligible(request, host)]
    for host in sorted(candidates, key=lambda h: _preference(request, h, free[h.name])):
        gpu_indices = _fit(request, host, free[host.name])
        if gpu_indices is not None:
            return Placement(request.job_id, host.name, gpu_indices)
    return None


def _preference(request: Request, host: HostCapacity, free: _Free) -> int:
    # sorted() is stable: hosts that rank the same keep the order the caller gave.
    if request.gpus == 0:
        return len(host.gpus)
    return len(_matching(request, host, free.gpus))


def _fit(request: Request, host: HostCapacity, free: _Free) -> tuple[int, ...] | None:
    """The GPU indices ``request`` would get on ``host`` now, or None if it does not fit."""
    if free.cpus + EPSILON < request.cpus or free.memory_mb < request.memory_mb:
        return None
    gpus = _matching(request, host, free.gpus)
    if len(gpus) < request.gpus:
        return None
    return tuple(gpus[: request.gpus])


def _matching(request: Request, host: HostCapacity, among: set[int] | frozenset[int]) -> list[int]:
    """Indices in ``among`` of the host's GPUs of the requested model, lowest first."""
    wanted = request.gpu_model.casefold()
    return sorted(
        gpu.index for gpu in host.gpus if gpu.index in among and wanted in gpu.model.casefold()
    )


def _eligible(request: Request, host: HostCapacity) -> bool:
    return all(host.labels.get(key) == value for key, value in request.labels.items())


def _fits_when_empty(request: Request, host: HostCapacity) -> bool:
    return _eligible(request, host) and _fit(request, host, _Free.whole(host)) is not None


# --- reasons ------------------------------------------------------------------------------------


def _why_unplaced(request: Request, hosts: Sequence[HostCapacity], ahead: int) -> Unplaced:
    could = [host for host in hosts if _fits_when_empty(request, host)]
    if not could:
        return Unplaced(request.job_id, _never_fits(request, hosts), fits_nowhere=True)
    if not any(host.accepting for host in could):
        names = ", ".join(host.name for host in could)
        reason = f"waiting for a host: those that could run it ({names}) take no new work now"
        return Unplaced(request.job_id, reason, fits_nowhere=False)
    queue = f"; {_count(ahead, 'job')} ahead of it" if ahead else ""
    reason = f"waiting for capacity: all hosts that fit it are busy{queue}"
    return Unplaced(request.job_id, reason, fits_nowhere=False)


def _never_fits(request: Request, hosts: Sequence[HostCapacity]) -> str:
    """Which of the request's needs no host meets, for the user to change it."""
    hosts = [host for host in hosts if _eligible(request, host)]
    if not hosts:
        wanted = ", ".join(f"{key}={value}" for key, value in sorted(request.labels.items()))
        return f"no host has the labels {wanted}" if wanted else "no host is registered"
    most_gpus = max(len(_matching(request, host, _Free.whole(host).gpus)) for host in hosts)
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _gb(memory_mb: int) -> str:
    return f"{memory_mb / 1024:g} GB"
