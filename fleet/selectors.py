"""What site admins read about the fleet: hosts with what they hold, the queue, the quotas.

Each read checks that its reader is a site admin first: these show every user's jobs.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, overload

from django.db.models import BooleanField, ExpressionWrapper, Prefetch, Q, QuerySet

from accounts.models import User
from accounts.policy import authorize_site_admin
from fleet.models import Allocation, Host, Quota
from fleet.queue import QueuePlaces, QueueState
from fleet.services import DEFAULT_SHARE, QuotaKind, quota_subject
from jobs.models import Job

FLEET_ADMIN = "see every host's allocations, the queue and the quotas"


class HeldRow(TypedDict):
    job: str  # owner/project/N
    replica: int
    gpu_indices: list[int]
    cpus: float
    memory_mb: int


class FreeRow(TypedDict):
    cpus: float
    memory_mb: int
    gpu_indices: list[int]


def hosts_with_allocations(actor: User) -> QuerySet[Host]:
    """Every host, its active allocations prefetched for ``held_on`` and ``free_on``."""
    authorize_site_admin(actor, FLEET_ADMIN)
    active = (
        Allocation.objects.active()
        .select_related("job__project__owner_user", "job__project__owner_team")
        .order_by("job_id", "replica")
    )
    return Host.objects.order_by("name").prefetch_related(
        Prefetch("allocations", queryset=active, to_attr="active_allocations")
    )


def _active(host: Host) -> list[Allocation]:
    found: list[Allocation] = host.active_allocations  # type: ignore[attr-defined] # prefetched
    return found


def held_on(host: Host) -> list[HeldRow]:
    return [
        {
            "job": str(allocation.job),
            "replica": allocation.replica,
            "gpu_indices": list(allocation.gpu_indices),
            "cpus": allocation.cpus,
            "memory_mb": allocation.memory_mb,
        }
        for allocation in _active(host)
    ]


def free_on(host: Host) -> FreeRow:
    held = _active(host)
    used_gpus = {index for allocation in held for index in allocation.gpu_indices}
    # Rounded: fractions of a CPU summed in floating point leave 1e-15 tails.
    cpus = round(host.cpus - sum(allocation.cpus for allocation in held), 6)
    return {
        "cpus": cpus,
        "memory_mb": host.memory_mb - sum(allocation.memory_mb for allocation in held),
        "gpu_indices": sorted(gpu["index"] for gpu in host.gpus if gpu["index"] not in used_gpus),
    }


# --- the queue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    position: int | None  # None: no host could ever run it
    job: Job
    reason: str  # why it waits, as the scheduler's last pass said of its group


class QueueListing(Sequence[QueueEntry]):
    """Every queued job: those in the published order by position, then the rest by age.

    The order is ids only, read at once; the rows of the jobs are read for the slice taken (a
    page), so a long queue costs one small query plus a page of rows.
    """

    def __init__(self, order: list[tuple[int | None, int]], state: QueueState) -> None:
        self._order = order
        self._state = state

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> QueueEntry: ...

    @overload
    def __getitem__(self, index: slice) -> list[QueueEntry]: ...

    def __getitem__(self, index: int | slice) -> QueueEntry | list[QueueEntry]:
        if isinstance(index, int):
            return self._entries([self._order[index]])[0]
        return self._entries(self._order[index])

    def _entries(self, taken: list[tuple[int | None, int]]) -> list[QueueEntry]:
        rows = Job.objects.select_related(
            "project__owner_user", "project__owner_team", "created_by", "machine_type"
        ).in_bulk([job_id for _, job_id in taken])
        # A job deleted since the order was read is left out.
        return [
            QueueEntry(place, rows[job_id], self._reason(rows[job_id]))
            for place, job_id in taken
            if job_id in rows
        ]

    def _reason(self, job: Job) -> str:
        waiting = self._state.waiting(job)
        return job.status_reason if waiting is None else waiting.reason


def queue_listing(actor: User) -> QueueListing:
    authorize_site_admin(actor, FLEET_ADMIN)
    places = QueuePlaces.read()
    ranked = places.positions()
    # Those without a place (no host could ever run them) after the rest, oldest first.
    queued = Job.objects.queued().order_by("created_at", "id").values_list("id", flat=True)
    has_place = set(ranked)
    unranked = [(None, job_id) for job_id in queued if job_id not in has_place]
    return QueueListing([*enumerate(ranked, start=1), *unranked], places.state)


# --- quotas -------------------------------------------------------------------------------------


def quotas(actor: User) -> QuerySet[Quota]:
    """Users' quotas by name, then teams'."""
    authorize_site_admin(actor, FLEET_ADMIN)
    is_team = ExpressionWrapper(Q(team__isnull=False), output_field=BooleanField())
    return (
        Quota.objects.select_related("user", "team")
        .annotate(is_team=is_team)
        .order_by("is_team", "user__username", "team__name")
    )


def quota_get(actor: User, kind: QuotaKind, name: str) -> Quota:
    """The quota of the user or team ``name``; one not saved, with no limits, if none is set."""
    authorize_site_admin(actor, FLEET_ADMIN)
    subject = quota_subject(kind, name)
    found = Quota.objects.select_related("user", "team").filter(**subject).first()
    return found or Quota(**subject, share=DEFAULT_SHARE)
