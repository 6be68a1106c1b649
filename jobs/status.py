"""The one writer of ``Job.status``.

Every change of a job's status goes through ``job_transition``: it locks the job's row, checks
the change against ``TRANSITIONS``, writes the status with its timestamps, records a
``JobEvent``, and, once the transaction commits, tells the project's and the job's websocket
groups. A change that is not allowed from the status the job has now (someone else moved it
first: the agent finished it while a user stopped it, the reaper lost it) writes nothing and
returns False, so callers never act on a status they did not set.
"""

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, TypedDict

from django.db import connection, transaction
from django.utils import timezone

from core.realtime import group_send_on_commit
from jobs.models import FINISHED, Job, JobEvent, JobStatus
from projects.events import project_event_publish

S = JobStatus
# Jobs per statement when many move at once: SQLite takes at most 32766 parameters in one.
BATCH = 2000
# What announcing a change reads (the project's full name): fetched with the job, not per job.
ANNOUNCED = ("project__owner_user", "project__owner_team")

TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.SCHEDULED, S.STOPPED, S.FAILED}),
    # Back to queued: the host went away before the job started there.
    S.SCHEDULED: frozenset({S.STARTING, S.QUEUED, S.STOPPING, S.STOPPED, S.FAILED, S.LOST}),
    # Back to queued from starting or running: its host went away and it has retries left.
    S.STARTING: frozenset({S.RUNNING, S.QUEUED, S.STOPPING, S.SUCCEEDED, S.FAILED, S.LOST}),
    S.RUNNING: frozenset({S.QUEUED, S.STOPPING, S.SUCCEEDED, S.FAILED, S.LOST}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED, S.LOST}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.STOPPED: frozenset(),
    S.LOST: frozenset(),
}

# What else a transition may write along with the status.
EXTRA_FIELDS = frozenset({"exit_code", "output_tree", "heartbeat_at", "attempt"})


class JobStatusPayload(TypedDict):
    job: str
    number: int
    status: str
    previous: str
    reason: str
    exit_code: int | None


def job_group(job_id: int) -> str:
    """The websocket group of one job's watchers (``/ws/jobs/<id>/``)."""
    return f"job.{job_id}"


def job_transition(
    job_id: int,
    to: JobStatus,
    *,
    reason: str = "",
    only_from: frozenset[str] | None = None,
    **extra: Any,
) -> bool:
    """Move the job to ``to`` if that is allowed from its current status (and that status is
    in ``only_from``, if given); False otherwise."""
    unknown = set(extra) - EXTRA_FIELDS
    if unknown:
        raise TypeError(f"job_transition cannot write {sorted(unknown)}")
    with transaction.atomic():
        # of self: PostgreSQL locks no row of an outer join's nullable side (the owners).
        job = (
            Job.objects.select_for_update(of=("self",))
            .select_related(*ANNOUNCED)
            .filter(id=job_id)
            .first()
        )
        if job is None or to not in TRANSITIONS[job.status]:
            return False
        if only_from is not None and job.status not in only_from:
            return False
        previous = job.status
        _apply(job, to, reason, extra)
        JobEvent.objects.create(job=job, from_status=previous, to_status=to, reason=reason)
        _announce(job, previous)
    return True


def job_transition_many(
    reasons: Mapping[int, str], to: JobStatus, *, only_from: frozenset[str]
) -> list[int]:
    """``job_transition`` for many jobs at once, each with its own reason: what the scheduler
    does with a pass's placements, in a few statements instead of a few per job. Returns the
    ids of the jobs moved; the others (no longer in ``only_from``) are left as they are."""
    moved: list[int] = []
    ids = list(reasons)
    with transaction.atomic():
        for start in range(0, len(ids), BATCH):
            moved += _transition_batch(ids[start : start + BATCH], reasons, to, only_from)
    return moved


def _transition_batch(
    ids: list[int], reasons: Mapping[int, str], to: JobStatus, only_from: frozenset[str]
) -> list[int]:
    allowed = [status for status in only_from if to in TRANSITIONS[status]]
    jobs = list(
        Job.objects.select_for_update(of=("self",))
        .select_related(*ANNOUNCED)
        .filter(id__in=ids, status__in=allowed)
        .order_by("id")  # one lock order for every caller: no deadlock between two of them
    )
    if not jobs:
        return []
    previous = {job.id: job.status for job in jobs}
    fields = {tuple(_set(job, to, reasons[job.id], {})) for job in jobs}
    if len(fields) == 1:
        # The same new values for all but the reason (timestamps a moment apart: the first's).
        (names,) = fields
        same = {name: getattr(jobs[0], name) for name in names if name != "status_reason"}
        Job.objects.filter(id__in=[job.id for job in jobs]).update(**same)
        _write_reasons(jobs)
    else:
        Job.objects.bulk_update(jobs, sorted({name for names in fields for name in names}))
    JobEvent.objects.bulk_create(
        JobEvent(job=job, from_status=previous[job.id], to_status=to, reason=reasons[job.id])
        for job in jobs
    )
    for job in jobs:
        _announce(job, previous[job.id])
    return [job.id for job in jobs]


def _write_reasons(jobs: list[Job]) -> None:
    """Each job's own status_reason, in one statement: Django's bulk_update writes a CASE of
    one branch per row, which costs seconds for thousands of rows on PostgreSQL."""
    if connection.vendor != "postgresql":
        Job.objects.bulk_update(jobs, ["status_reason"])
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Job._meta.db_table} AS job SET status_reason = given.reason"
            " FROM unnest(%s::bigint[], %s::text[]) AS given(id, reason)"
            " WHERE job.id = given.id",
            [[job.id for job in jobs], [job.status_reason for job in jobs]],
        )


def _apply(job: Job, to: JobStatus, reason: str, extra: dict[str, Any]) -> None:
    job.save(update_fields=_set(job, to, reason, extra))


def _set(job: Job, to: JobStatus, reason: str, extra: dict[str, Any]) -> list[str]:
    """Give ``job`` its new status and what goes with it; the fields to save."""
    now = timezone.now()
    job.status = to
    job.status_reason = reason
    for name, value in extra.items():
        setattr(job, name, value)
    fields = ["status", "status_reason", *extra]
    if "output_tree" in extra:
        job.output_at = now
        fields.append("output_at")
    if to == S.RUNNING and job.started_at is None:
        job.started_at = now
        fields.append("started_at")
    if to in FINISHED:
        job.finished_at = now
        fields.append("finished_at")
    return fields


def _announce(job: Job, previous: str) -> None:
    payload: JobStatusPayload = {
        "job": str(job),
        "number": job.number,
        "status": job.status,
        "previous": previous,
        "reason": job.status_reason,
        "exit_code": job.exit_code,
    }
    project_event_publish(job.project, "job.status", dict(payload))
    group_send_on_commit(job_group(job.id), {"type": "job.event", "payload": dict(payload)})


def job_note_waiting(job_id: int, reason: str) -> bool:
    """Say why a queued job waits (no host fits it, all busy...); its status stays ``queued``."""
    return jobs_note_waiting({job_id: reason}) > 0


def jobs_note_waiting(reasons: Mapping[int, str]) -> int:
    """``job_note_waiting`` for many: one statement per distinct reason (a pass has few: the
    quotas and machine types that hold jobs back), touching only what changed."""
    by_reason: dict[str, list[int]] = defaultdict(list)
    for job_id, reason in reasons.items():
        by_reason[reason].append(job_id)
    changed = 0
    for reason, ids in by_reason.items():
        for start in range(0, len(ids), BATCH):
            rows = Job.objects.filter(id__in=ids[start : start + BATCH], status=S.QUEUED)
            changed += rows.exclude(status_reason=reason).update(status_reason=reason)
    return changed
