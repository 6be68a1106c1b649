"""The placement loop on the real database: allocations, statuses, messages, one loop at once."""

import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries, DjangoCaptureOnCommitCallbacks
from pytest_django.fixtures import Settings

from fleet import scheduler
from fleet.inventory import Inventory
from fleet.models import Allocation, Host, HostState
from fleet.placement import (
    FleetMemo,
    Group,
    GroupsResult,
    HostCapacity,
    Policy,
    Usage,
    place_groups,
)
from fleet.scheduler import ScheduleSummary, placement_lock, schedule
from fleet.services import host_register, host_set_state
from jobs.models import Job, JobStatus
from jobs.status import job_transition
from tests.fleet.conftest import HOST_TIMEOUT_S, SentTask, message_taken, waiting_reason
from tests.fleet.factories import HostFactory, JobFactory, gpus, machine_type
from tests.support.concurrency import at_once

pytestmark = pytest.mark.django_db

Capture = DjangoCaptureOnCommitCallbacks


def status_of(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def test_a_queued_job_is_allocated_scheduled_and_sent_to_its_host(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    host = HostFactory.create(name="gpu1", gpus=gpus(2))
    job = JobFactory.create(machine_type=machine_type("gpu"))

    with django_capture_on_commit_callbacks(execute=True):
        summary = schedule()

    assert summary == {"ran": True, "placed": 1, "waiting": 0}
    allocation = Allocation.objects.get(job=job)
    assert (allocation.host, allocation.gpu_indices, allocation.released_at) == (host, [0], None)
    assert (allocation.cpus, allocation.memory_mb) == (4, 16384)
    assert status_of(job) == JobStatus.SCHEDULED
    assert job.status_reason == "placed on gpu1 (GPUs 0)"
    assert sent == [SentTask("jobs.start", [[job.id]], "host.gpu1")]


def test_nothing_is_sent_before_the_loop_commits(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    HostFactory.create()
    JobFactory.create()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        schedule()

    assert sent == []
    for callback in callbacks:  # the commit
        callback()
    assert [task.name for task in sent] == ["jobs.start"]


def test_gpus_held_by_running_jobs_are_not_given_again(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    host = HostFactory.create(gpus=gpus(2))
    gpu = machine_type("gpu")
    running = JobFactory.create(machine_type=gpu, status=JobStatus.RUNNING)
    Allocation.objects.create(job=running, host=host, cpus=4, memory_mb=16384, gpu_indices=[0])
    first, second = JobFactory.create_batch(2, machine_type=gpu)

    with django_capture_on_commit_callbacks(execute=True):
        summary = schedule()

    assert summary["placed"] == 1
    assert Allocation.objects.get(job=first).gpu_indices == [1]
    assert status_of(second) == JobStatus.QUEUED
    assert waiting_reason(second) == "waiting: no host with gpu free"
    assert [task.args for task in sent] == [[[first.id]]]


def test_the_oldest_job_goes_first() -> None:
    HostFactory.create(gpus=gpus(1))
    gpu = machine_type("gpu")
    newer = JobFactory.create(machine_type=gpu)
    older = JobFactory.create(machine_type=gpu, created_at=timezone.now() - timedelta(hours=1))

    schedule()

    assert (status_of(older), status_of(newer)) == (JobStatus.SCHEDULED, JobStatus.QUEUED)


def test_released_allocations_free_their_gpus() -> None:
    host = HostFactory.create(gpus=gpus(1))
    gpu = machine_type("gpu")
    done = JobFactory.create(machine_type=gpu, status=JobStatus.SUCCEEDED)
    Allocation.objects.create(
        job=done, host=host, cpus=4, memory_mb=16384, gpu_indices=[0], released_at=timezone.now()
    )
    job = JobFactory.create(machine_type=gpu)

    schedule()

    assert Allocation.objects.get(job=job).gpu_indices == [0]


def test_a_requeued_job_gets_its_allocation_row_back(
    sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    gone, fresh = HostFactory.create(state=HostState.OFFLINE), HostFactory.create(name="fresh")
    job = JobFactory.create()
    long_ago = timezone.now() - timedelta(hours=1)
    Allocation.objects.create(
        job=job, host=gone, cpus=2, memory_mb=4096, created_at=long_ago, released_at=long_ago
    )

    with django_capture_on_commit_callbacks(execute=True):
        schedule()

    allocation = Allocation.objects.get(job=job)
    assert (allocation.host, allocation.released_at) == (fresh, None)
    assert allocation.created_at > long_ago
    assert sent == [SentTask("jobs.start", [[job.id]], "host.fresh")]


@pytest.mark.parametrize(
    ("state", "heartbeat_age_s"),
    [(HostState.DRAINING, 0), (HostState.OFFLINE, 0), (HostState.ONLINE, HOST_TIMEOUT_S + 1)],
    ids=["draining", "offline", "silent"],
)
def test_hosts_that_take_no_new_work_get_nothing(
    sent: list[SentTask], state: HostState, heartbeat_age_s: int
) -> None:
    heartbeat_at = timezone.now() - timedelta(seconds=heartbeat_age_s)
    HostFactory.create(name="h1", state=state, heartbeat_at=heartbeat_at)
    job = JobFactory.create()

    summary = schedule()

    assert summary == {"ran": True, "placed": 0, "waiting": 1}
    assert not Allocation.objects.exists()
    assert status_of(job) == JobStatus.QUEUED
    assert waiting_reason(job) == (
        "waiting for a host: those that could run it (h1) take no new work now"
    )
    assert sent == []


def test_what_a_pass_learnt_of_the_hosts_is_forgotten_when_one_stops_taking_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler, "_MEMOS", scheduler._Memos())
    HostFactory.create(name="big", gpus=gpus(2))
    HostFactory.create(name="small", gpus=gpus(1))
    _, second = JobFactory.create_batch(2, machine_type=machine_type("gpu2", gpus=2))
    assert schedule()["placed"] == 1
    assert waiting_reason(second) == "waiting: no host with gpu2 free"

    host_set_state("big", HostState.DRAINING)
    schedule()

    assert waiting_reason(second) == (
        "waiting for a host: those that could run it (big) take no new work now"
    )


def test_a_job_no_host_can_ever_run_says_why() -> None:
    HostFactory.create(gpus=gpus(1))
    job = JobFactory.create(machine_type=machine_type("gpu2"))

    schedule()

    assert status_of(job) == JobStatus.QUEUED
    assert waiting_reason(job) == "no host has 2 GPUs; the largest has 1"


def test_the_machine_types_gpu_model_is_honoured() -> None:
    HostFactory.create(name="t4", gpus=gpus(4, model="Tesla T4"))
    a100 = HostFactory.create(name="a100", gpus=gpus(1))
    job = JobFactory.create(machine_type=machine_type("a100", gpus=1, gpu_model="A100"))

    schedule()

    assert Allocation.objects.get(job=job).host == a100


def spy_on_place(monkeypatch: pytest.MonkeyPatch, after: Callable[[GroupsResult], object]) -> None:
    """Run ``after`` once placement has decided, before the loop writes anything."""

    def placing(
        hosts: Sequence[HostCapacity], groups: Sequence[Group], policy: Policy, memo: FleetMemo
    ) -> GroupsResult:
        result = place_groups(hosts, groups, policy, memo)
        after(result)
        return result

    monkeypatch.setattr(scheduler, "place_groups", placing)


def test_a_job_stopped_while_the_loop_decides_keeps_no_allocation(
    monkeypatch: pytest.MonkeyPatch,
    sent: list[SentTask],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    HostFactory.create()
    stopped, placed = JobFactory.create_batch(2)
    spy_on_place(monkeypatch, lambda _: job_transition(stopped.id, JobStatus.STOPPED))

    with django_capture_on_commit_callbacks(execute=True):
        summary = schedule()

    assert summary["placed"] == 1
    assert not Allocation.objects.filter(job=stopped).exists()
    assert status_of(stopped) == JobStatus.STOPPED
    assert status_of(placed) == JobStatus.SCHEDULED
    assert sent == [SentTask("jobs.start", [[placed.id]], placed_queue(placed))]


def placed_queue(job: Job) -> str:
    return Allocation.objects.get(job=job).host.queue


def test_no_queued_jobs_is_a_quick_no_op(
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    HostFactory.create_batch(3)

    with django_assert_max_num_queries(4):
        assert schedule() == {"ran": True, "placed": 0, "waiting": 0}


# --- one loop at a time ---------------------------------------------------------------------


def test_on_sqlite_a_second_loop_on_the_machine_finds_the_lock_taken(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    # The embedded setup's lock is a file under var/, shared by all its worker processes; a
    # second open of it (here, in the same thread) is refused just as another process's is.
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(connection, "vendor", "sqlite")

    with placement_lock() as first, placement_lock() as second:
        assert (first, second) == (True, False)
    with placement_lock() as again:
        assert again is True


@pytest.mark.django_db(transaction=True)
def test_a_loop_that_finds_another_running_returns_at_once() -> None:
    HostFactory.create()
    job = JobFactory.create()
    holding, done = threading.Event(), threading.Event()

    def other_loop() -> None:
        try:
            with placement_lock() as held:
                assert held
                holding.set()
                done.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_loop)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        summary = schedule()
        assert time.monotonic() - started < 1
    finally:
        done.set()
        thread.join(10)

    assert summary == {"ran": False, "placed": 0, "waiting": 0}
    assert status_of(job) == JobStatus.QUEUED
    assert schedule()["placed"] == 1  # once the other loop has ended


@pytest.mark.django_db(transaction=True)
def test_two_loops_at_once_never_hand_out_a_gpu_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loop A reads one GPU free and job `later`, and dwells before writing. Meanwhile an older
    # job arrives and loop B starts: were it to run, it would read the same GPU free and give
    # it to the older job, while A gives it to `later`.
    host = HostFactory.create(gpus=gpus(1))
    gpu = machine_type("gpu")
    later = JobFactory.create(machine_type=gpu)
    deciding = threading.Event()

    def dwell(_: GroupsResult) -> None:
        deciding.set()
        time.sleep(0.5)

    spy_on_place(monkeypatch, dwell)
    summaries: list[ScheduleSummary] = []

    def loop_a() -> None:
        try:
            summaries.append(schedule())
        finally:
            connection.close()

    thread = threading.Thread(target=loop_a)
    thread.start()
    try:
        assert deciding.wait(10)
        older = JobFactory.create(machine_type=gpu, created_at=timezone.now() - timedelta(hours=1))
        loop_b = schedule()
    finally:
        thread.join(10)

    active = list(Allocation.objects.active().filter(host=host))
    assert [(a.job_id, a.gpu_indices) for a in active] == [(later.id, [0])]
    assert status_of(older) == JobStatus.QUEUED
    assert loop_b["ran"] is False
    assert summaries == [{"ran": True, "placed": 1, "waiting": 0}]


@pytest.mark.django_db(transaction=True)
def test_many_loops_at_once_place_each_job_once(sent: list[SentTask]) -> None:
    host = HostFactory.create(gpus=gpus(2))
    JobFactory.create_batch(6, machine_type=machine_type("gpu"))
    summaries: list[ScheduleSummary] = []

    outcomes = at_once(*[lambda: summaries.append(schedule()) for _ in range(4)])

    assert outcomes == ["ok"] * 4
    assert sum(s["placed"] for s in summaries) == 2
    active = list(Allocation.objects.active().filter(host=host))
    assert sorted(index for a in active for index in a.gpu_indices) == [0, 1]
    # One message per pass per host: the pass that placed both sends one with the two.
    assert [task.name for task in sent] == ["jobs.start"]
    assert sorted(job_id for task in sent for job_id in task.args[0]) == sorted(
        a.job_id for a in active
    )


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_job_reaches_its_host_queue_on_the_real_broker(redis_url: str) -> None:

    host = HostFactory.create(name=f"broker-{time.monotonic_ns()}")
    job = JobFactory.create()

    schedule()

    message = message_taken(Host.objects.get(id=host.id).queue)
    assert message.headers["task"] == "jobs.start"
    args, _kwargs, _embed = message.decode()
    assert args == [[job.id]]


def test_the_queue_kept_between_passes_follows_what_leaves_and_joins_it() -> None:
    gpu = machine_type("gpu")
    alice, bob = (JobFactory.create().created_by for _ in range(2))
    start = timezone.now() - timedelta(hours=1)

    def submit(minute: int, user: Any, machine: Any = None, priority: Any = 0) -> Job:
        fields = {"machine_type": machine} if machine else {}
        job: Job = JobFactory.create(
            created_by=user, priority=priority, created_at=start + timedelta(minutes=minute),
            **fields,
        )  # fmt: skip
        return job

    jobs = [
        submit(minute, *ask)
        for minute, ask in enumerate([(alice, gpu), (bob, gpu), (alice,), (alice, gpu, 5)] * 3)
    ]
    kept = scheduler._QueueCache()
    kept.read()
    # Between passes: one placed, one stopped, and a new one submitted earlier than the rest.
    assert job_transition(jobs[0].id, JobStatus.SCHEDULED)
    assert job_transition(jobs[5].id, JobStatus.STOPPED)
    oldest = submit(-30, bob, gpu)

    assert kept.read() == scheduler._QueueCache().read()
    by_age = sorted(
        (age, job_id)
        for ids, ages in kept.read().values()
        for job_id, age in zip(ids, ages, strict=True)
    )
    assert [job_id for _, job_id in by_age] == list(
        Job.objects.queued().order_by("created_at", "id").values_list("id", flat=True)
    )
    assert by_age[0][1] == oldest.id


def whole_queue_reads(queries: Sequence[dict[str, Any]]) -> list[str]:
    """The statements that read every queued job's id: what a pass with its fingerprint
    matched does not."""
    only_ids = re.compile(r'^SELECT "jobs_job"."id"( AS "id")? FROM "jobs_job" WHERE [^>]*$')
    return [query["sql"] for query in queries if only_ids.match(query["sql"])]


def test_a_pass_takes_out_what_it_placed_and_the_next_reads_only_the_new_ids(
    django_capture_on_commit_callbacks: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "_QUEUE", scheduler._QueueCache())
    HostFactory.create(gpus=gpus(2))
    JobFactory.create_batch(4, machine_type=machine_type("gpu"))
    with django_capture_on_commit_callbacks(execute=True):
        assert schedule()["placed"] == 2
    late = JobFactory.create(machine_type=machine_type("gpu"))

    with CaptureQueriesContext(connection) as queries:
        kept = scheduler._QUEUE.read()

    assert whole_queue_reads(queries.captured_queries) == []
    assert kept == scheduler._QueueCache().read()
    assert late.id in [job_id for ids, _ in kept.values() for job_id in ids]


def test_a_job_queued_again_with_an_older_id_is_seen_by_the_next_pass(
    django_capture_on_commit_callbacks: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "_QUEUE", scheduler._QueueCache())
    host = HostFactory.create(gpus=gpus(1))
    first, second = JobFactory.create_batch(2, machine_type=machine_type("gpu"))
    with django_capture_on_commit_callbacks(execute=True):
        assert schedule()["placed"] == 1
    # Its host went away before it started: queued again, below the newest id.
    Host.objects.filter(id=host.id).update(state=HostState.OFFLINE)
    assert job_transition(first.id, JobStatus.QUEUED)

    with CaptureQueriesContext(connection) as queries:
        kept = scheduler._QUEUE.read()

    assert len(whole_queue_reads(queries.captured_queries)) == 1
    assert kept == scheduler._QueueCache().read()
    assert sorted(job_id for ids, _ in kept.values() for job_id in ids) == [first.id, second.id]


def test_what_is_held_kept_between_passes_follows_allocations_made_and_released() -> None:
    from fleet.services import allocation_release
    from tests.factories import ProjectFactory, TeamFactory, UserFactory

    team_project = ProjectFactory.create(owner_team=TeamFactory.create(), owner_user=None)
    host, other = HostFactory.create(gpus=gpus(4)), HostFactory.create(gpus=gpus(4))
    alice, bob = UserFactory.create_batch(2)
    solo, gang, team_job = (
        JobFactory.create(created_by=alice),
        JobFactory.create(created_by=bob, replicas=2),
        JobFactory.create(created_by=alice, project=team_project),
    )

    def allocate(job: Job, replica: int, on: Host, indices: list[int]) -> None:
        Allocation.objects.create(
            job=job, replica=replica, host=on, cpus=1.5, memory_mb=1024, gpu_indices=indices
        )

    allocate(solo, 0, host, [0])
    allocate(gang, 0, host, [1, 2])
    kept = scheduler._HeldCache()
    kept.read()
    # Between passes: the gang's second replica placed, the solo job ends, a team's job starts.
    allocate(gang, 1, other, [0, 1])
    allocation_release(solo.id)
    allocate(team_job, 0, other, [2])

    held = kept.read()

    assert held == scheduler._HeldCache().read()
    assert held.on_host == {
        host.id: (1.5, 1024, frozenset({1, 2})),
        other.id: (3.0, 2048, frozenset({0, 1, 2})),
    }
    assert held.by_user == {
        bob.id: Usage(gpus=4, jobs=1),  # one job, of two replicas
        alice.id: Usage(gpus=1, jobs=1),  # the team's job; her own one ended
    }
    assert held.by_team == {team_project.owner_team_id: Usage(gpus=1, jobs=1)}


def test_what_a_pass_allocated_is_known_to_the_next_without_reading_it_back(
    django_capture_on_commit_callbacks: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "_HELD", scheduler._HeldCache())
    HostFactory.create(gpus=gpus(4))
    JobFactory.create_batch(3, machine_type=machine_type("gpu"))
    JobFactory.create(machine_type=machine_type("gpu2", gpus=2))

    with django_capture_on_commit_callbacks(execute=True):
        assert schedule()["placed"] == 3

    read_back: list[list[int]] = []
    real_add = scheduler._HELD._add

    def add(ids: list[int]) -> None:
        read_back.append(ids)
        real_add(ids)

    monkeypatch.setattr(scheduler._HELD, "_add", add)
    assert scheduler._HELD.read() == scheduler._HeldCache().read()
    assert read_back == []


def test_a_host_registered_again_with_other_gpus_is_seen_by_the_next_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler, "_INVENTORIES", scheduler._Inventories())
    host = HostFactory.create(name="gpu1", gpus=gpus(1))
    two = machine_type("gpu2", gpus=2)
    job = JobFactory.create(machine_type=two)
    assert schedule()["placed"] == 0

    inventory = Inventory(cpus=host.cpus, memory_mb=host.memory_mb, gpus=gpus(2))
    host_register(host.name, inventory, labels={"zone": "eu"})

    assert schedule()["placed"] == 1
    assert Allocation.objects.get(job=job).gpu_indices == [0, 1]
