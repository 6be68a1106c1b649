"""Moving many jobs at once (``job_transition_many``): the rules, events and announcements of
``job_transition``, for thousands of jobs in one go.

Each of its tests runs both ways the jobs can be moved: PostgreSQL's one statement, and the
model instances SQLite gets (PostgreSQL takes that way too when told it is SQLite), so the two
are held to the same story.
"""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import Team
from core import realtime
from core.realtime import Update, live_updates_drain
from jobs.models import Job, JobEvent, JobStatus
from jobs.status import job_transition, job_transition_many
from projects.models import Project
from tests.factories import ProjectFactory, TeamFactory, UserFactory
from tests.fleet.factories import JobFactory
from tests.support.services import unavailable

pytestmark = pytest.mark.django_db

S = JobStatus
QUEUED = frozenset({S.QUEUED})
Capture = DjangoCaptureOnCommitCallbacks
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeLayer:
    """A channel layer that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[Update] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append((group, message))


@pytest.fixture(params=["one statement", "model instances"])
def way(request: pytest.FixtureRequest, db: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which way job_transition_many moves the jobs; it picks by the database's vendor."""
    if request.param == "one statement" and connection.vendor != "postgresql":
        unavailable("postgres", "the suite is running on SQLite: no one-statement move there")
    if request.param == "model instances":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    return str(request.param)


@pytest.fixture
def layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLayer]:
    """What leaves for the websocket groups, through the real sender thread."""
    fake = FakeLayer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: fake)
    yield fake
    live_updates_drain()  # nothing of this test is sent to the next one's layer


@pytest.fixture
def mnist() -> Project:
    return ProjectFactory.create(name="mnist", owner_user=UserFactory.create(username="alice"))


@pytest.fixture
def vision() -> Project:
    team: Team = TeamFactory.create(name="lab")
    return ProjectFactory.create(name="vision", owner_user=None, owner_team=team)


def jobs_in(project: Project, status: JobStatus, count: int, **fields: Any) -> list[Job]:
    return [JobFactory.create(project=project, status=status, **fields) for _ in range(count)]


def statuses(jobs: list[Job]) -> list[tuple[str, str]]:
    """Each job's status and reason, as the database has them now."""
    rows = Job.objects.filter(id__in=[job.id for job in jobs])
    found = {
        id_: (status, reason)
        for id_, status, reason in rows.values_list("id", "status", "status_reason")
    }
    return [found[job.id] for job in jobs]


def events_of(jobs: list[Job]) -> list[tuple[int, str, str, str]]:
    rows = JobEvent.objects.filter(job__in=jobs).order_by("job_id", "id")
    return list(rows.values_list("job_id", "from_status", "to_status", "reason"))


def announcement(job: Job, previous: str, status: str, reason: str) -> list[Update]:
    """The project's event, then the job's own message: what one move sends."""
    full_name = job.project.full_name
    payload = {
        "job": f"{full_name}/{job.number}",
        "number": job.number,
        "status": status,
        "previous": previous,
        "reason": reason,
        "exit_code": job.exit_code,
    }
    project_message = {
        "type": "project.event",
        "project_id": job.project_id,
        "payload": {"event": "job.status", "project": full_name, "data": payload},
    }
    job_message = {"type": "job.event", "payload": payload}
    return [(f"project.{job.project_id}", project_message), (f"job.{job.id}", job_message)]


def test_each_job_moves_with_its_own_reason_and_event(
    way: str, mnist: Project, vision: Project
) -> None:
    jobs = jobs_in(mnist, S.QUEUED, 3) + jobs_in(vision, S.QUEUED, 2)
    untouched = JobFactory.create(project=mnist, status=S.QUEUED, status_reason="waiting")
    reasons = {job.id: f"placed on host{n}" for n, job in enumerate(jobs)}

    moved = job_transition_many(reasons, S.SCHEDULED, only_from=QUEUED)

    assert moved == [job.id for job in jobs]
    assert statuses(jobs) == [(S.SCHEDULED, f"placed on host{n}") for n in range(5)]
    assert statuses([untouched]) == [(S.QUEUED, "waiting")]
    assert events_of(jobs) == [
        (job.id, S.QUEUED, S.SCHEDULED, f"placed on host{n}") for n, job in enumerate(jobs)
    ]
    assert events_of([untouched]) == []


def test_jobs_not_in_an_allowed_status_are_left_alone_and_not_returned(
    way: str, mnist: Project, layer: FakeLayer, django_capture_on_commit_callbacks: Capture
) -> None:
    queued = JobFactory.create(project=mnist, status=S.QUEUED)
    stopped = JobFactory.create(project=mnist, status=S.STOPPED, status_reason="by alice")
    # In only_from, but no way from there to scheduled.
    succeeded = JobFactory.create(project=mnist, status=S.SUCCEEDED, status_reason="done")
    reasons = {job.id: "placed" for job in (stopped, queued, succeeded)}
    reasons[queued.id + 1000] = "no such job"

    with django_capture_on_commit_callbacks(execute=True):
        moved = job_transition_many(
            reasons, S.SCHEDULED, only_from=frozenset({S.QUEUED, S.SUCCEEDED})
        )
    live_updates_drain()

    assert moved == [queued.id]
    assert statuses([stopped, succeeded]) == [(S.STOPPED, "by alice"), (S.SUCCEEDED, "done")]
    assert events_of([stopped, succeeded]) == []
    assert layer.sent == announcement(queued, S.QUEUED, S.SCHEDULED, "placed")


def test_each_event_says_the_status_its_job_came_from(
    way: str, mnist: Project, layer: FakeLayer, django_capture_on_commit_callbacks: Capture
) -> None:
    scheduled = JobFactory.create(project=mnist, status=S.SCHEDULED)
    running = JobFactory.create(project=mnist, status=S.RUNNING)
    reasons = {running.id: "stop asked", scheduled.id: "stop asked"}

    with django_capture_on_commit_callbacks(execute=True):
        moved = job_transition_many(
            reasons, S.STOPPING, only_from=frozenset({S.SCHEDULED, S.RUNNING})
        )
    live_updates_drain()

    assert moved == [scheduled.id, running.id]  # in id order, whatever the order given
    assert events_of([scheduled, running]) == [
        (scheduled.id, S.SCHEDULED, S.STOPPING, "stop asked"),
        (running.id, S.RUNNING, S.STOPPING, "stop asked"),
    ]
    assert layer.sent == [
        *announcement(scheduled, S.SCHEDULED, S.STOPPING, "stop asked"),
        *announcement(running, S.RUNNING, S.STOPPING, "stop asked"),
    ]


def test_running_sets_started_at_only_the_first_time(way: str, mnist: Project) -> None:
    first_start = NOW - timedelta(hours=1)
    fresh = JobFactory.create(project=mnist, status=S.STARTING)
    # Queued again after its host went away: it keeps the start of its first try.
    again = JobFactory.create(project=mnist, status=S.STARTING, started_at=first_start)

    with time_machine.travel(NOW, tick=False):
        moved = job_transition_many(
            {fresh.id: "", again.id: ""}, S.RUNNING, only_from=frozenset({S.STARTING})
        )

    assert moved == [fresh.id, again.id]
    times = Job.objects.filter(id__in=moved).order_by("id").values_list("started_at", "finished_at")
    assert list(times) == [(NOW, None), (first_start, None)]


def test_a_finished_status_sets_finished_at(way: str, mnist: Project) -> None:
    started = NOW - timedelta(minutes=5)
    jobs = jobs_in(mnist, S.RUNNING, 2, started_at=started)

    with time_machine.travel(NOW, tick=False):
        job_transition_many(
            {job.id: "ok" for job in jobs}, S.SUCCEEDED, only_from=frozenset({S.RUNNING})
        )

    times = Job.objects.filter(id__in=[job.id for job in jobs]).values_list(
        "started_at", "finished_at"
    )
    assert list(times) == [(started, NOW), (started, NOW)]
    events = JobEvent.objects.filter(job__in=jobs)
    assert set(events.values_list("to_status", "created_at")) == {(S.SUCCEEDED, NOW)}


def test_announcements_leave_once_the_transaction_commits(
    way: str,
    mnist: Project,
    vision: Project,
    layer: FakeLayer,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    jobs = [JobFactory.create(project=mnist), JobFactory.create(project=vision)]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_transition_many({job.id: "placed" for job in jobs}, S.SCHEDULED, only_from=QUEUED)
    live_updates_drain()
    assert layer.sent == []

    for callback in callbacks:
        callback()
    live_updates_drain()
    assert layer.sent == [
        *announcement(jobs[0], S.QUEUED, S.SCHEDULED, "placed"),
        *announcement(jobs[1], S.QUEUED, S.SCHEDULED, "placed"),
    ]


def test_nothing_to_move_writes_and_sends_nothing(way: str, layer: FakeLayer) -> None:
    assert job_transition_many({}, S.SCHEDULED, only_from=QUEUED) == []
    assert job_transition_many({1: "x"}, S.SCHEDULED, only_from=frozenset({S.LOST})) == []
    live_updates_drain()
    assert layer.sent == []
    assert not JobEvent.objects.exists()


def test_one_job_moved_alone_is_announced_the_same_way(
    vision: Project, layer: FakeLayer, django_capture_on_commit_callbacks: Capture
) -> None:
    job = JobFactory.create(project=vision, status=S.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        assert job_transition(job.id, S.FAILED, reason="exit 3", exit_code=3)
    live_updates_drain()

    job.refresh_from_db()
    assert layer.sent == announcement(job, S.RUNNING, S.FAILED, "exit 3")


# --- a change made by someone else while the batch waits for the row ---------------------------


def commit_once_someone_waits(job_id: int, to: JobStatus, holding: threading.Event) -> None:
    """In a connection of its own: move the job to ``to``, and commit only once another
    connection waits for the row's lock (or after 10 s, so a broken test does not hang)."""
    try:
        with transaction.atomic():
            assert job_transition(job_id, to, reason="meanwhile")
            holding.set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _a_lock_is_awaited():
                time.sleep(0.01)
    finally:
        connection.close()


def _a_lock_is_awaited() -> bool:
    # pg_locks, not pg_stat_activity: the latter is read once per transaction.
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted)")
        (waiting,) = cursor.fetchone() or (False,)
    return bool(waiting)


def moved_while_another_holds(
    job: Job,
    meanwhile: JobStatus,
    reasons: dict[int, str],
    to: JobStatus,
    only_from: frozenset[str],
) -> list[int]:
    holding = threading.Event()
    holder = threading.Thread(target=commit_once_someone_waits, args=(job.id, meanwhile, holding))
    holder.start()
    try:
        assert holding.wait(10)
        return job_transition_many(reasons, to, only_from=only_from)
    finally:
        holder.join(15)


@pytest.mark.django_db(transaction=True)
def test_a_job_moved_elsewhere_while_the_batch_waited_stays_where_it_went(
    postgres: None, way: str, mnist: Project, layer: FakeLayer
) -> None:
    raced, other = jobs_in(mnist, S.QUEUED, 2)
    reasons = {raced.id: "placed", other.id: "placed"}

    moved = moved_while_another_holds(raced, S.STOPPED, reasons, S.SCHEDULED, QUEUED)

    assert moved == [other.id]
    assert statuses([raced, other]) == [(S.STOPPED, "meanwhile"), (S.SCHEDULED, "placed")]
    assert events_of([raced]) == [(raced.id, S.QUEUED, S.STOPPED, "meanwhile")]


@pytest.mark.django_db(transaction=True)
def test_a_job_moved_to_another_allowed_status_meanwhile_moves_from_that_one(
    postgres: None, way: str, mnist: Project, layer: FakeLayer
) -> None:
    raced, other = jobs_in(mnist, S.QUEUED, 2)
    reasons = {raced.id: "stop asked", other.id: "stop asked"}
    either = frozenset({S.QUEUED, S.SCHEDULED})

    moved = moved_while_another_holds(raced, S.SCHEDULED, reasons, S.STOPPED, either)
    live_updates_drain()

    assert moved == [raced.id, other.id]
    assert events_of([raced]) == [
        (raced.id, S.QUEUED, S.SCHEDULED, "meanwhile"),
        (raced.id, S.SCHEDULED, S.STOPPED, "stop asked"),
    ]
    assert layer.sent[-4:] == [
        *announcement(raced, S.SCHEDULED, S.STOPPED, "stop asked"),
        *announcement(other, S.QUEUED, S.STOPPED, "stop asked"),
    ]
