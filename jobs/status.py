"""The one writer of ``Job.status``.

Every change of a job's status goes through ``job_transition``: it locks the job's row, checks
the change against ``TRANSITIONS``, writes the status with its timestamps, records a
``JobEvent``, and, once the transaction commits, tells the project's and the job's websocket
groups. A change that is not allowed from the status the job has now (someone else moved it
first: the agent finished it while a user stopped it, the reaper lost it) writes nothing and
returns False, so callers never act on a status they did not set.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypedDict

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Team, User
from core.realtime import Update, group_send_many_on_commit
from jobs.models import FINISHED, Job, JobEvent, JobStatus
from projects.events import project_event_update
from projects.models import Project

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


class _Moved(NamedTuple):
    """A job a transition moved, with what announcing the move says about it."""

    job_id: int
    number: int
    project_id: int
    project: str  # the project's full name, owner/name
    previous: str
    status: str
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
    does with a pass's placements, in one statement on PostgreSQL (a few per ``BATCH`` jobs on
    SQLite) instead of a few per job, and one on-commit callback for all the announcements.
    Returns the ids of the jobs moved, in id order; the others (no longer in ``only_from``) are
    left as they are."""
    allowed = sorted(status for status in only_from if to in TRANSITIONS[status])
    if not reasons or not allowed:
        return []
    with transaction.atomic():
        if connection.vendor == "postgresql":
            moved = _move_in_one_statement(reasons, to, allowed)
        else:
            moved = _move_in_batches(reasons, to, allowed)
        group_send_many_on_commit(_announcements(moved))
    return [change.job_id for change in moved]


# --- PostgreSQL: one statement, no model instances ----------------------------------------------
#
# Loading thousands of Job instances (and their projects and owners), then writing them back, is
# what made a scheduler pass with thousands of placements take seconds; here the database does
# all of it and hands back only what the announcements say.
#
# The lock comes first, in id order (one lock order for every caller: no deadlock between two),
# in a CTE of its own. Under READ COMMITTED, a row someone else changed while this statement
# waited for its lock is checked again in its new version: if its status is no longer allowed
# it drops out of `locked`, and the UPDATE, which joins `locked`, does not touch it; if it is
# still allowed, `locked` carries the status it has now, which the event and the announcement
# give as the previous one. MATERIALIZED spells out what PostgreSQL does with a locking CTE
# anyway: lock first, as a step of its own, never folded into the UPDATE's scan.


def _move_in_one_statement(
    reasons: Mapping[int, str], to: JobStatus, allowed: list[str]
) -> list[_Moved]:
    params: dict[str, Any] = {
        # One JSON text rather than an array of ids and one of reasons: Django's psycopg
        # cursor binds on the client, quoting each string of an array in Python (~15 ms for
        # 6,400), while json.dumps is C and the whole text is quoted once.
        "reasons": json.dumps(dict(reasons)),
        "allowed": allowed,
        "to": str(to),
        "now": timezone.now(),  # what _set would write; the same moment for the whole batch
    }
    with connection.cursor() as cursor:
        cursor.execute(_move_sql(to), params)
        return list(map(_Moved._make, cursor.fetchall()))


def _move_sql(to: JobStatus) -> str:
    """The statement's columns are ``_Moved``'s, in its order."""
    job, event = Job._meta.db_table, JobEvent._meta.db_table
    project, user, team = Project._meta.db_table, User._meta.db_table, Team._meta.db_table
    return f"""
        WITH locked AS MATERIALIZED (
            SELECT job.id, job.status, given.value AS reason
            FROM jsonb_each_text(%(reasons)s::jsonb) AS given
            JOIN {job} AS job ON job.id = given.key::bigint
            WHERE job.status = ANY(%(allowed)s::text[])
            ORDER BY job.id
            FOR UPDATE OF job
        ), moved AS (
            UPDATE {job} AS job
            SET status = %(to)s, status_reason = locked.reason{_timestamps_sql(to)}
            FROM locked
            WHERE job.id = locked.id
            RETURNING job.id, job.number, job.project_id, locked.status AS previous,
                job.status, job.status_reason, job.exit_code
        ), events AS (
            INSERT INTO {event} (job_id, from_status, to_status, reason, created_at)
            SELECT id, previous, status, status_reason, %(now)s FROM moved ORDER BY id
        )
        SELECT moved.id, moved.number, moved.project_id,
            -- as Project.full_name: the owning user or team, then the project
            coalesce(owner_user.username, owner_team.name) || '/' || project.name,
            moved.previous, moved.status, moved.status_reason, moved.exit_code
        FROM moved
        JOIN {project} AS project ON project.id = moved.project_id
        LEFT JOIN {user} AS owner_user ON owner_user.id = project.owner_user_id
        LEFT JOIN {team} AS owner_team ON owner_team.id = project.owner_team_id
        ORDER BY moved.id
    """


def _timestamps_sql(to: JobStatus) -> str:
    """The timestamps ``_set`` writes with a move to ``to`` (job_transition_many is given no
    output_tree, so never output_at)."""
    if to == S.RUNNING:
        return ", started_at = coalesce(job.started_at, %(now)s)"  # the first start only
    if to in FINISHED:
        return ", finished_at = %(now)s"
    return ""


# --- SQLite: model instances, in batches ---------------------------------------------------------


def _move_in_batches(reasons: Mapping[int, str], to: JobStatus, allowed: list[str]) -> list[_Moved]:
    ids = sorted(reasons)  # locks taken in id order across the batches too
    moved: list[_Moved] = []
    for start in range(0, len(ids), BATCH):
        moved += _move_batch(ids[start : start + BATCH], reasons, to, allowed)
    return moved


def _move_batch(
    ids: list[int], reasons: Mapping[int, str], to: JobStatus, allowed: list[str]
) -> list[_Moved]:
    jobs = list(
        Job.objects.select_for_update(of=("self",))
        .select_related(*ANNOUNCED)
        .filter(id__in=ids, status__in=allowed)
        .order_by("id")  # one lock order for every caller: no deadlock between two of them
    )
    if not jobs:
        return []
    previous = {job.id: job.status for job in jobs}
    _save_moved(jobs, to, reasons)
    JobEvent.objects.bulk_create(
        JobEvent(job=job, from_status=previous[job.id], to_status=to, reason=reasons[job.id])
        for job in jobs
    )
    return [_moved_job(job, previous[job.id]) for job in jobs]


def _save_moved(jobs: list[Job], to: JobStatus, reasons: Mapping[int, str]) -> None:
    fields = {tuple(_set(job, to, reasons[job.id], {})) for job in jobs}
    if len(fields) == 1:
        # The same new values for all but the reason (timestamps a moment apart: the first's),
        # in one UPDATE; bulk_update's CASE of one branch per row only for the reasons.
        (names,) = fields
        same = {name: getattr(jobs[0], name) for name in names if name != "status_reason"}
        Job.objects.filter(id__in=[job.id for job in jobs]).update(**same)
        Job.objects.bulk_update(jobs, ["status_reason"])
    else:
        Job.objects.bulk_update(jobs, sorted({name for names in fields for name in names}))


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
    group_send_many_on_commit(_announcements([_moved_job(job, previous)]))


def _moved_job(job: Job, previous: str) -> _Moved:
    """What announcing ``job``'s move says, read from the saved job (its project and owner
    fetched with it)."""
    return _Moved(
        job.id,
        job.number,
        job.project_id,
        job.project.full_name,
        previous,
        job.status,
        job.status_reason,
        job.exit_code,
    )


def _announcements(moved: Iterable[_Moved]) -> list[Update]:
    """For each move, in order: the project's "job.status" event, then the job's own message."""
    updates: list[Update] = []
    for change in moved:
        payload: JobStatusPayload = {
            "job": f"{change.project}/{change.number}",  # as str(Job)
            "number": change.number,
            "status": change.status,
            "previous": change.previous,
            "reason": change.reason,
            "exit_code": change.exit_code,
        }
        # One payload in both messages, no copies: every channel layer copies a message as it
        # sends it (channels_redis serializes it, the in-memory one deep-copies it), and
        # allocating is most of what building thousands of messages costs.
        updates.append(
            project_event_update(change.project_id, change.project, "job.status", payload)
        )
        updates.append((job_group(change.job_id), {"type": "job.event", "payload": payload}))
    return updates
