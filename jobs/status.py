"""The one writer of ``Job.status``.

Every change of a job's status goes through ``job_transition``: it locks the job's row, checks
the change against ``TRANSITIONS``, writes the status with its timestamps, records a
``JobEvent``, and, once the transaction commits, tells the project's and the job's websocket
groups. A change that is not allowed from the status the job has now (someone else moved it
first: the agent finished it while a user stopped it, the reaper lost it) writes nothing and
returns False, so callers never act on a status they did not set.
"""

from typing import Any, TypedDict

from django.db import transaction
from django.utils import timezone

from core.realtime import group_send_on_commit
from jobs.models import FINISHED, Job, JobEvent, JobStatus
from projects.events import project_event_publish

S = JobStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.SCHEDULED, S.STOPPED, S.FAILED}),
    # Back to queued: the host went away before the job started there.
    S.SCHEDULED: frozenset({S.STARTING, S.QUEUED, S.STOPPING, S.STOPPED, S.FAILED, S.LOST}),
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.SUCCEEDED, S.FAILED, S.LOST}),
    S.RUNNING: frozenset({S.STOPPING, S.SUCCEEDED, S.FAILED, S.LOST}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED, S.LOST}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.STOPPED: frozenset(),
    S.LOST: frozenset(),
}

# What else a transition may write along with the status.
EXTRA_FIELDS = frozenset({"exit_code", "output_tree", "heartbeat_at"})


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
        job = Job.objects.select_for_update().select_related("project").filter(id=job_id).first()
        if job is None or to not in TRANSITIONS[job.status]:
            return False
        if only_from is not None and job.status not in only_from:
            return False
        previous = job.status
        _apply(job, to, reason, extra)
        JobEvent.objects.create(job=job, from_status=previous, to_status=to, reason=reason)
        _announce(job, previous)
    return True


def _apply(job: Job, to: JobStatus, reason: str, extra: dict[str, Any]) -> None:
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
    job.save(update_fields=fields)


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
    updated = Job.objects.filter(id=job_id, status=S.QUEUED).exclude(status_reason=reason)
    return updated.update(status_reason=reason) > 0
