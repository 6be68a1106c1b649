"""The reaper: moves on what went quiet, since nobody else will tell.

A host whose agent stops heartbeating goes offline. A job on an offline host, or one whose own
heartbeat stopped, is lost, unless it had not started yet: a job only scheduled on a host that
went away goes back to the queue, and so does one that started but has retries left
(``Job.max_retries``), as its next attempt. Whatever such a job held is released, as is
anything still held by a finished job, and the scheduler is woken to use it.

Every change goes through the one writer of its status (``host_set_state``, ``job_transition``),
so the reaper never overwrites what an agent or a user changed while it was deciding.
"""

from datetime import datetime, timedelta
from typing import TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from fleet.models import Allocation, Host, HostState
from fleet.services import allocation_release, host_set_state, schedule_soon
from jobs.models import FINISHED, Job, JobMode, JobStatus
from jobs.status import job_transition

# The statuses in which a job is in the hands of a host's agent.
ON_HOST = (JobStatus.SCHEDULED, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.STOPPING)
NOT_STARTED = frozenset({JobStatus.SCHEDULED})


class ReapSummary(TypedDict):
    hosts_offline: int
    jobs_requeued: int
    jobs_lost: int
    allocations_released: int  # of jobs that had finished


def reap(*, now: datetime | None = None) -> ReapSummary:
    now = now or timezone.now()
    summary: ReapSummary = {
        "hosts_offline": _silent_hosts_offline(now),
        "jobs_requeued": 0,
        "jobs_lost": 0,
        "allocations_released": 0,
    }
    requeued, lost = _jobs_off_offline_hosts()
    silent_requeued, silent_lost = _silent_jobs_retried_or_lost(now)
    summary["jobs_requeued"] = requeued + silent_requeued
    summary["jobs_lost"] = lost + silent_lost
    summary["allocations_released"] = _release_finished(now)
    if summary["jobs_requeued"] or summary["jobs_lost"] or summary["allocations_released"]:
        schedule_soon()
    return summary


def _silent_hosts_offline(now: datetime) -> int:
    cutoff = now - timedelta(seconds=settings.FERRY_HOST_HEARTBEAT_TIMEOUT_S)
    silent = Host.objects.exclude(state=HostState.OFFLINE).filter(heartbeat_at__lt=cutoff)
    names = list(silent.values_list("name", flat=True))
    return sum(host_set_state(name, HostState.OFFLINE, heartbeat_before=cutoff) for name in names)


def _jobs_off_offline_hosts() -> tuple[int, int]:
    """Requeue the jobs not yet started on offline hosts, lose the others; (requeued, lost)."""
    held = Allocation.objects.active().filter(
        host__state=HostState.OFFLINE, job__status__in=ON_HOST
    )
    requeued = lost = 0
    for job_id, host in held.values_list("job_id", "host__name").distinct():
        # No need to read the status: only a scheduled job goes back to the queue as it is.
        if _move_and_release(
            job_id, JobStatus.QUEUED, f"host {host} went offline before it started", NOT_STARTED
        ):
            requeued += 1
            continue
        outcome = _retry_or_lose(job_id, f"host {host} went offline")
        requeued += outcome == JobStatus.QUEUED
        lost += outcome == JobStatus.LOST
    return requeued, lost


def _silent_jobs_retried_or_lost(now: datetime) -> tuple[int, int]:
    timeout = settings.FERRY_JOB_HEARTBEAT_TIMEOUT_S
    silent = _silent_jobs(now - timedelta(seconds=timeout))
    found = list(silent.values_list("id", "status"))
    outcomes = [_lose_if_silent(silent, job_id, status, timeout) for job_id, status in found]
    return outcomes.count(JobStatus.QUEUED), outcomes.count(JobStatus.LOST)


def _lose_if_silent(
    silent: QuerySet[Job], job_id: int, status: str, timeout: int
) -> JobStatus | None:
    with transaction.atomic():
        # Checked again under the job's lock: a heartbeat written meanwhile keeps it alive.
        # (Not .exists(): it drops the OF clause, and PostgreSQL refuses to lock the outer join.)
        locked = silent.select_for_update(of=("self",)).filter(id=job_id)
        if not locked.values_list("id", flat=True):
            return None
        return _retry_or_lose(job_id, _silence(status, timeout))


def _silent_jobs(cutoff: datetime) -> QuerySet[Job]:
    # The later of its last heartbeat and when it was placed: a job requeued and placed again
    # is not judged by a heartbeat from its first placement; one never heard from at all is
    # judged from its placement.
    placed_at = Allocation.objects.filter(job=OuterRef("pk"), replica=0).values("created_at")[:1]
    last_sign = Greatest(
        Coalesce(F("heartbeat_at"), F("created_at")),
        Coalesce(Subquery(placed_at), F("created_at")),
    )
    return (
        Job.objects.filter(status__in=ON_HOST)
        .exclude(mode=JobMode.EXTERNAL)  # no host, no heartbeat: its client ends it
        .alias(last_sign=last_sign)
        .filter(last_sign__lt=cutoff)
    )


def _silence(status: str, timeout: int) -> str:
    if status == JobStatus.SCHEDULED:
        return f"its host's agent did not start it within {timeout} s"
    return f"no heartbeat from its agent for {timeout} s"


def _retry_or_lose(job_id: int, why: str) -> JobStatus | None:
    """Queue the job again as its next attempt if it has retries left, else lose it; the
    status it went to (None: neither was allowed from its status now)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(id=job_id).values("attempt", "max_retries")
        row = job.first()
        if row is not None and row["attempt"] <= row["max_retries"]:
            attempt = row["attempt"] + 1
            reason = f"{why}; queued again (attempt {attempt} of {row['max_retries'] + 1})"
            if job_transition(job_id, JobStatus.QUEUED, reason=reason, attempt=attempt):
                allocation_release(job_id)
                return JobStatus.QUEUED
    return JobStatus.LOST if _move_and_release(job_id, JobStatus.LOST, why) else None


def _move_and_release(
    job_id: int, to: JobStatus, reason: str, only_from: frozenset[str] | None = None
) -> bool:
    with transaction.atomic():
        if not job_transition(job_id, to, reason=reason, only_from=only_from):
            return False
        allocation_release(job_id)
    return True


def _release_finished(now: datetime) -> int:
    held = Allocation.objects.active().filter(job__status__in=FINISHED)
    job_ids = list(held.values_list("job_id", flat=True))
    return sum(allocation_release(job_id, now=now) for job_id in job_ids)
