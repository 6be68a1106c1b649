"""Where each queued job stands: the order of the scheduler's last pass.

The pass publishes the jobs it left waiting, in the order it considered them (priority, fair
share, age); anyone reads a job's place from that one row. Jobs no host could ever run are left
out: nothing ahead of them decides when they run.
"""

import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from fleet.models import QueueSnapshot

SNAPSHOT_ID = 1


def queue_publish(job_ids: Sequence[int]) -> bool:
    """Record ``job_ids`` as the queue's order; False if it was that already."""
    packed = array("q", job_ids).tobytes()
    digest = hashlib.sha256(packed).hexdigest()
    fields = {"job_ids": packed, "digest": digest, "taken_at": timezone.now()}
    # Most passes change nothing: one statement that writes only what differs.
    if QueueSnapshot.objects.filter(id=SNAPSHOT_ID).exclude(digest=digest).update(**fields):
        return True
    return QueueSnapshot.objects.get_or_create(id=SNAPSHOT_ID, defaults=fields)[1]


@dataclass(frozen=True)
class QueuePlaces:
    """The published order, read once: ``position(job)`` for as many jobs as asked."""

    positions: dict[int, int]

    @classmethod
    def read(cls) -> "QueuePlaces":
        row = QueueSnapshot.objects.filter(id=SNAPSHOT_ID).values_list("job_ids", flat=True)
        packed = row.first()
        ids = array("q")
        if packed:
            ids.frombytes(bytes(packed))
        return cls({job_id: place for place, job_id in enumerate(ids, start=1)})

    @property
    def length(self) -> int:
        return len(self.positions)

    def position(self, job_id: int) -> int | None:
        return self.positions.get(job_id)
