"""The reaper moves on what went quiet: silent hosts, jobs on them, silent jobs, leftovers."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks

from fleet.models import Allocation, Host, HostState
from fleet.reaper import reap
from fleet.scheduler import schedule
from jobs.models import Job, JobStatus
from jobs.status import job_transition
from tests.fleet.conftest import HOST_TIMEOUT_S, JOB_TIMEOUT_S, SentTask
from tests.fleet.factories import HostFactory, JobFactory, gpus, machine_type

pytestmark = pytest.mark.django_db

Capture = DjangoCaptureOnCommitCallbacks
S = JobStatus


def ago(seconds: float, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=seconds)


def job_on(host: Host, status: JobStatus, *, placed_at: datetime | None = None) -> Job:
    """A job placed on ``host`` (an hour ago unless told) and moved through the real
    transitions up to ``status``; it has sent no heartbeat yet."""
    placed_at = placed_at or ago(3600)
    job = JobFactory.create(created_at=placed_at)
    Allocation.objects.create(job=job, host=host, cpus=2, memory_mb=4096, created_at=placed_at)
    path = [S.SCHEDULED, S.STARTING, S.RUNNING, S.STOPPING]
    for step in path[: path.index(status) + 1]:
        assert job_transition(job.id, step)
    return job


def heard_from(job: Job, at: datetime) -> None:
    Job.objects.filter(id=job.id).update(heartbeat_at=at)


def active(job: Job) -> bool:
    return Allocation.objects.active().filter(job=job).exists()


def test_a_silent_host_goes_offline_and_a_live_one_stays() -> None:
    now = timezone.now()
    silent = HostFactory.create(heartbeat_at=ago(HOST_TIMEOUT_S + 1, now))
    silent_draining = HostFactory.create(
        state=HostState.DRAINING, heartbeat_at=ago(HOST_TIMEOUT_S + 1, now)
    )
    live = HostFactory.create(heartbeat_at=ago(HOST_TIMEOUT_S - 1, now))

    summary = reap(now=now)

    assert summary["hosts_offline"] == 2
    states = dict(Host.objects.values_list("name", "state"))
    assert states == {
        silent.name: HostState.OFFLINE,
        silent_draining.name: HostState.OFFLINE,
        live.name: HostState.ONLINE,
    }


@pytest.mark.parametrize("status", [S.STARTING, S.RUNNING, S.STOPPING])
def test_a_started_job_on_a_host_gone_silent_is_lost_and_its_allocation_freed(
    status: JobStatus,
) -> None:
    now = timezone.now()
    host = HostFactory.create(name="gone", heartbeat_at=ago(HOST_TIMEOUT_S + 1, now))
    job = job_on(host, status)
    heard_from(job, now)  # the job itself looked alive; its host is gone

    summary = reap(now=now)

    job.refresh_from_db()
    assert (job.status, job.status_reason) == (S.LOST, "host gone went offline")
    assert job.finished_at is not None
    assert not active(job)
    assert summary["jobs_lost"] == 1


def test_a_job_scheduled_on_a_host_gone_offline_goes_back_to_the_queue_and_runs_elsewhere(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    now = timezone.now()
    gone = HostFactory.create(name="gone", heartbeat_at=ago(HOST_TIMEOUT_S + 1, now))
    job = job_on(gone, S.SCHEDULED)
    HostFactory.create(name="spare")

    with django_capture_on_commit_callbacks(execute=True):
        summary = reap(now=now)

    job.refresh_from_db()
    assert (job.status, job.status_reason) == (S.QUEUED, "host gone went offline before it started")
    assert not active(job)
    assert summary == {
        "hosts_offline": 1,
        "jobs_requeued": 1,
        "jobs_lost": 0,
        "allocations_released": 0,
    }
    assert sent == [SentTask("fleet.schedule")]

    schedule(now=now)

    assert Allocation.objects.get(job=job).host.name == "spare"


def test_a_job_whose_heartbeat_stopped_is_lost_on_a_live_host() -> None:
    now = timezone.now()
    host = HostFactory.create(heartbeat_at=now)
    silent, alive = job_on(host, S.RUNNING), job_on(host, S.RUNNING)
    heard_from(silent, ago(JOB_TIMEOUT_S + 1, now))
    heard_from(alive, ago(JOB_TIMEOUT_S - 1, now))

    summary = reap(now=now)

    silent.refresh_from_db()
    assert silent.status == S.LOST
    assert silent.status_reason == f"no heartbeat from its agent for {JOB_TIMEOUT_S} s"
    assert not active(silent)
    assert status_of(alive) == S.RUNNING
    assert active(alive)
    assert summary["jobs_lost"] == 1
    assert summary["hosts_offline"] == 0


def status_of(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def test_a_job_its_agent_never_started_is_lost_after_the_timeout() -> None:
    now = timezone.now()
    host = HostFactory.create(heartbeat_at=now)
    stuck = job_on(host, S.SCHEDULED, placed_at=ago(JOB_TIMEOUT_S + 1, now))
    just_placed = job_on(host, S.SCHEDULED, placed_at=ago(1, now))

    reap(now=now)

    stuck.refresh_from_db()
    assert stuck.status == S.LOST
    assert stuck.status_reason == f"its host's agent did not start it within {JOB_TIMEOUT_S} s"
    assert status_of(just_placed) == S.SCHEDULED


def test_a_job_placed_again_is_not_judged_by_its_old_heartbeat() -> None:
    now = timezone.now()
    host = HostFactory.create(heartbeat_at=now)
    job = job_on(host, S.SCHEDULED, placed_at=ago(10, now))
    heard_from(job, ago(JOB_TIMEOUT_S * 10, now))  # from a placement before its requeue

    reap(now=now)

    assert status_of(job) == S.SCHEDULED


def test_allocations_left_by_finished_jobs_are_released(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    host = HostFactory.create()
    finished = job_on(host, S.RUNNING)
    Job.objects.filter(id=finished.id).update(status=S.SUCCEEDED)  # an agent that died mid-exit
    running = job_on(host, S.RUNNING)
    heard_from(running, timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        summary = reap()

    assert summary["allocations_released"] == 1
    assert not active(finished)
    assert active(running)
    assert sent == [SentTask("fleet.schedule")]


def test_a_quiet_fleet_is_left_alone(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    host = HostFactory.create()
    job = job_on(host, S.RUNNING)
    heard_from(job, timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        summary = reap()

    assert summary == {
        "hosts_offline": 0,
        "jobs_requeued": 0,
        "jobs_lost": 0,
        "allocations_released": 0,
    }
    assert status_of(job) == S.RUNNING
    assert sent == []


def test_a_draining_host_runs_what_it_has_and_takes_nothing_new() -> None:
    now = timezone.now()
    host = HostFactory.create(state=HostState.DRAINING, heartbeat_at=now, gpus=gpus(2))
    running = job_on(host, S.RUNNING)
    heard_from(running, now)
    waiting = JobFactory.create(machine_type=machine_type("gpu"))

    reap(now=now)
    schedule(now=now)

    assert status_of(running) == S.RUNNING
    assert active(running)
    assert status_of(waiting) == S.QUEUED
    assert not Allocation.objects.filter(job=waiting).exists()


# --- retries ------------------------------------------------------------------------------------


def retrying(job: Job, max_retries: int) -> Job:
    Job.objects.filter(id=job.id).update(max_retries=max_retries)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("status", [S.STARTING, S.RUNNING])
def test_a_started_job_with_retries_left_goes_back_to_the_queue_as_its_next_attempt(
    status: JobStatus, sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    now = timezone.now()
    gone = HostFactory.create(name="gone", heartbeat_at=ago(HOST_TIMEOUT_S + 1, now))
    job = retrying(job_on(gone, status), max_retries=2)
    HostFactory.create(name="spare")

    with django_capture_on_commit_callbacks(execute=True):
        summary = reap(now=now)

    job.refresh_from_db()
    assert (job.status, job.attempt) == (S.QUEUED, 2)
    assert job.status_reason == "host gone went offline; queued again (attempt 2 of 3)"
    assert not active(job)
    assert (summary["jobs_requeued"], summary["jobs_lost"]) == (1, 0)
    assert [task.name for task in sent] == ["fleet.schedule"]  # to run it elsewhere


def test_a_job_that_used_up_its_retries_is_lost() -> None:
    now = timezone.now()
    gone = HostFactory.create(name="gone", heartbeat_at=ago(HOST_TIMEOUT_S + 1, now))
    job = retrying(job_on(gone, S.RUNNING), max_retries=1)
    Job.objects.filter(id=job.id).update(attempt=2)  # its one retry ran, and lost its host too

    summary = reap(now=now)

    job.refresh_from_db()
    assert (job.status, job.status_reason, job.attempt) == (S.LOST, "host gone went offline", 2)
    assert (summary["jobs_requeued"], summary["jobs_lost"]) == (0, 1)


def test_a_silent_job_with_retries_left_is_queued_again_not_lost() -> None:
    now = timezone.now()
    host = HostFactory.create(heartbeat_at=now)  # the host lives; the job's agent went quiet
    job = retrying(job_on(host, S.RUNNING), max_retries=1)
    heard_from(job, ago(JOB_TIMEOUT_S + 1, now))

    summary = reap(now=now)

    job.refresh_from_db()
    assert (job.status, job.attempt) == (S.QUEUED, 2)
    assert job.status_reason.startswith(f"no heartbeat from its agent for {JOB_TIMEOUT_S} s;")
    assert (summary["jobs_requeued"], summary["jobs_lost"]) == (1, 0)
    assert not active(job)
