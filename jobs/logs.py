"""A job's log: appended in chunks by its agent, read from any byte offset by anyone."""

import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max

from core.realtime import group_send_on_commit
from jobs.models import FINISHED, Job, JobLogChunk
from jobs.status import job_group

READ_LIMIT = 4 * 1024 * 1024
# A waiting follower looks for new bytes this often: the delay it adds to seeing a line.
POLL_S = 0.02


@dataclass(frozen=True)
class LogSlice:
    data: bytes
    next_offset: int
    finished: bool  # the job has ended and nothing lies beyond next_offset
    status: str


def log_append(job_id: int, offset: int, data: bytes) -> None:
    """Store ``data`` as the log's bytes from ``offset``; a chunk stored twice is kept once."""
    if not data:
        return
    try:
        with transaction.atomic():
            JobLogChunk.objects.create(
                job_id=job_id, offset=offset, end=offset + len(data), data=data
            )
            group_send_on_commit(
                job_group(job_id), {"type": "job.log", "offset": offset, "end": offset + len(data)}
            )
    except IntegrityError:
        pass  # a retry of a chunk already stored


def log_read(job: Job, offset: int, limit: int = READ_LIMIT) -> LogSlice:
    status = Job.objects.filter(id=job.id).values_list("status", flat=True).get()
    rows = (
        JobLogChunk.objects.filter(job_id=job.id, end__gt=offset)
        .order_by("offset")
        .values_list("offset", "data")
    )
    pieces: list[bytes] = []
    size, position = 0, offset
    for start, data in rows.iterator(chunk_size=64):
        if start > position or size >= limit:
            break  # a gap (a chunk still being written) or enough for one answer
        piece = bytes(data)[position - start :][: limit - size]
        pieces.append(piece)
        size += len(piece)
        position += len(piece)
    finished = status in FINISHED and not pieces
    return LogSlice(b"".join(pieces), position, finished, status)


def log_follow(job: Job, offset: int, wait_s: float) -> LogSlice:
    """Like ``log_read``, but waits up to ``wait_s`` for bytes or the job's end."""
    deadline = time.monotonic() + wait_s
    while True:
        found = log_read(job, offset)
        if found.data or found.finished or time.monotonic() >= deadline:
            return found
        time.sleep(POLL_S)


def log_size(job_id: int) -> int:
    """How many bytes of the job's log are stored."""
    end = JobLogChunk.objects.filter(job_id=job_id).aggregate(end=Max("end"))["end"]
    return int(end or 0)
