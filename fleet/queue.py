"""Why each queued job waits and where it stands: what the scheduler's last pass said.

The pass takes the queue in groups of jobs alike in all that placement reads (the user, the
project, the machine type, the replicas and the priority: ``GroupKey``), and says why each group
waits. It publishes that, with each user's standing (GPUs and jobs held per share), in one
small row: a reason per group rather than per job, so that a pass over a queue of 50,000 jobs
writes a few hundred bytes, not 50,000 rows.

A job's reason is its group's. Its place comes from the order the next pass would take the
queue in if nothing changed meanwhile: higher priority first, then the user holding least for
their share, then the oldest (``queue_order``). Jobs no host could ever run have no place:
nothing ahead of them decides when they run.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from fleet.models import QueueSnapshot
from jobs.models import Job

SNAPSHOT_ID = 1

# user, project, machine type, replicas, priority: all fixed when the job is submitted
GroupKey = tuple[int | None, int, int, int, int]
GROUP_FIELDS = ("created_by_id", "project_id", "machine_type_id", "replicas", "priority")
Standing = tuple[float, float]  # GPUs and jobs held per share: the user holding least goes first
NOTHING: Standing = (0.0, 0.0)


def group_key(job: Job) -> GroupKey:
    """The group ``job`` waits in: ``GROUP_FIELDS``' values."""
    return (job.created_by_id, job.project_id, job.machine_type_id, job.replicas, job.priority)


@dataclass(frozen=True)
class Waiting:
    reason: str
    fits_nowhere: bool


@dataclass(frozen=True)
class QueueState:
    """Why each group waits, and each user's standing, as the last pass left them."""

    groups: Mapping[GroupKey, Waiting] = field(default_factory=dict)
    standing: Mapping[int, Standing] = field(default_factory=dict)

    def encode(self) -> str:
        groups = [[*key, w.reason, w.fits_nowhere] for key, w in self.groups.items()]
        standing = sorted([user, *held] for user, held in self.standing.items())
        return json.dumps({"groups": groups, "standing": standing}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> "QueueState":
        data: dict[str, Any] = json.loads(text) if text else {}
        groups = {
            (user, team, machine, replicas, priority): Waiting(reason, fits_nowhere)
            for user, team, machine, replicas, priority, reason, fits_nowhere in data.get(
                "groups", []
            )
        }
        standing = {user: (gpus, jobs) for user, gpus, jobs in data.get("standing", [])}
        return cls(groups, standing)

    def waiting(self, job: Job) -> Waiting | None:
        """What the last pass said of ``job``'s group; None if it saw no job like it waiting."""
        return self.groups.get(group_key(job))

    def order(self) -> "QuerySet[Job]":
        """The queued jobs that have a place, in the order the next pass takes them."""
        return queue_order(self)


def queue_publish(state: QueueState) -> bool:
    """Record ``state`` as what the queue's jobs wait for; False if it said that already."""
    encoded = state.encode()
    digest = hashlib.sha256(encoded.encode()).hexdigest()
    fields = {"state": encoded, "digest": digest, "taken_at": timezone.now()}
    # Most passes change nothing: one statement that writes only what differs.
    if QueueSnapshot.objects.filter(id=SNAPSHOT_ID).exclude(digest=digest).update(**fields):
        return True
    return QueueSnapshot.objects.get_or_create(id=SNAPSHOT_ID, defaults=fields)[1]


def queue_state() -> QueueState:
    row = QueueSnapshot.objects.filter(id=SNAPSHOT_ID).values_list("state", flat=True).first()
    return QueueState.decode(row or "")


def queue_order(state: QueueState) -> "QuerySet[Job]":
    """``state``'s order as a query: priority, then the user's standing, then age."""
    nowhere = {(key[2], key[3]) for key, waiting in state.groups.items() if waiting.fits_nowhere}
    jobs = Job.objects.queued()
    for machine_type_id, replicas in sorted(nowhere):
        jobs = jobs.exclude(machine_type_id=machine_type_id, replicas=replicas)
    if not state.standing:
        return jobs.order_by("-priority", "created_at", "id")
    return jobs.annotate(user_rank=_user_ranks(state.standing)).order_by(
        "-priority", "user_rank", "created_at", "id"
    )


def _user_ranks(standing: Mapping[int, Standing]) -> Case:
    # Users holding as much have one rank: their jobs take turns by age. A user the pass did not
    # see holds nothing, and ranks with those holding nothing.
    levels = {held: rank for rank, held in enumerate(sorted({*standing.values(), NOTHING}))}
    whens = [When(created_by_id=user, then=Value(levels[held])) for user, held in standing.items()]
    return Case(*whens, default=Value(levels[NOTHING]), output_field=IntegerField())


@dataclass(frozen=True)
class QueuePlaces:
    """The published state, read once: ``position(job)`` and ``reason(job)`` for as many jobs
    as asked. The order is read on the first position asked for: a page without a queued job
    costs one small query."""

    state: QueueState
    _positions: dict[int, int] = field(default_factory=dict)

    @classmethod
    def read(cls) -> "QueuePlaces":
        return cls(queue_state())

    def _ordered(self) -> dict[int, int]:
        if not self._positions:
            ids: Iterable[int] = self.state.order().values_list("id", flat=True)
            self._positions.update({job_id: place for place, job_id in enumerate(ids, start=1)})
        return self._positions

    @property
    def length(self) -> int:
        return len(self._ordered())

    def position(self, job_id: int) -> int | None:
        return self._ordered().get(job_id)

    def positions(self) -> Sequence[int]:
        """The ids of the jobs with a place, first to last."""
        return list(self._ordered())
