"""The /ws/jobs/<id>/ websocket, through the real ASGI app and a real Redis channel layer."""

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from accounts.roles import Role
from accounts.services import api_token_create
from config.asgi import application
from jobs import consumers
from jobs.consumers import requested_offset, utf8_complete
from jobs.logs import log_append
from jobs.models import Job, JobStatus
from jobs.status import job_transition
from projects.models import Project, Visibility
from projects.services import project_member_add, project_member_remove
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.factories import JobFactory

TIMEOUT = 5
S = JobStatus
Test = TypeVar("Test", bound=Callable[..., Any])


def websocket_test(test: Test) -> Test:
    """A test through the ASGI app: async, on committed rows (the consumer reads them from its
    own threads), with the Redis channel layer."""
    marked: Test = pytest.mark.django_db(transaction=True)(pytest.mark.asyncio(test))
    return marked


@pytest.fixture
def owner() -> User:
    user: User = UserFactory.create(username="olga")
    return user


@pytest.fixture
def project(owner: User) -> Project:
    created: Project = ProjectFactory.create(
        owner_user=owner, name="secret", visibility=Visibility.PRIVATE
    )
    return created


@pytest.fixture
def job(project: Project, owner: User) -> Job:
    created: Job = JobFactory.create(project=project, number=1, created_by=owner)
    return created


@pytest.fixture(autouse=True)
def _needs_redis(request: pytest.FixtureRequest) -> None:
    """The websocket tests go through the Redis channel layer; the pure ones need none."""
    if request.node.get_closest_marker("asyncio"):
        request.getfixturevalue("redis_url")


def bearer(user: User) -> list[tuple[bytes, bytes]]:
    secret = api_token_create(user=user, name="ws").secret
    return [(b"authorization", f"Bearer {secret}".encode())]


async def watch(user: User, job: Job, query: str = "") -> tuple[WebsocketCommunicator, bool, Any]:
    headers = await sync_to_async(bearer)(user)
    communicator = WebsocketCommunicator(application, f"/ws/jobs/{job.id}/{query}", headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    if not connected:
        await gone(communicator)
    return communicator, connected, code


async def gone(communicator: WebsocketCommunicator) -> None:
    """Tell a consumer its client has gone, as a server does after any close; one never told
    runs on past the test, holding a database connection."""
    await communicator.disconnect()


async def receive(communicator: WebsocketCommunicator) -> dict[str, Any]:
    message: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    return message


async def move(job: Job, *statuses: JobStatus, **extra: Any) -> None:
    for status in statuses:
        assert await sync_to_async(job_transition)(job.id, status, **extra)


async def append(job: Job, offset: int, data: bytes) -> None:
    await sync_to_async(log_append)(job.id, offset, data)


async def assert_closed(communicator: WebsocketCommunicator, code: int) -> None:
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output == {"type": "websocket.close", "code": code}
    await gone(communicator)


@websocket_test
async def test_a_viewer_gets_status_and_log_live_and_the_end(owner: User, job: Job) -> None:
    communicator, connected, _ = await watch(owner, job)
    assert connected
    first = await receive(communicator)
    assert first == {
        "event": "status",
        "job": "olga/secret/1",
        "number": 1,
        "status": "queued",
        "previous": "",
        "reason": "",
        "exit_code": None,
    }

    await move(job, S.SCHEDULED)
    assert (await receive(communicator))["status"] == "scheduled"
    await move(job, S.STARTING, S.RUNNING)
    assert [(await receive(communicator))["status"] for _ in range(2)] == ["starting", "running"]

    await append(job, 0, b"epoch 1\n")
    assert await receive(communicator) == {
        "event": "log",
        "offset": 0,
        "end": 8,
        "text": "epoch 1\n",
    }
    await append(job, 8, b"epoch 2\n")
    assert (await receive(communicator))["text"] == "epoch 2\n"

    await move(job, S.SUCCEEDED, exit_code=0)
    last = await receive(communicator)
    assert (last["event"], last["status"], last["previous"], last["exit_code"]) == (
        "status",
        "succeeded",
        "running",
        0,
    )
    assert await receive(communicator) == {"event": "end", "status": "succeeded"}
    await assert_closed(communicator, 1000)


@websocket_test
async def test_a_late_joiner_gets_the_backlog_then_the_status(owner: User, job: Job) -> None:
    await move(job, S.SCHEDULED, S.STARTING, S.RUNNING)
    await append(job, 0, b"line 1\n")
    await append(job, 7, b"line 2\n")

    communicator, _, _ = await watch(owner, job)

    assert await receive(communicator) == {
        "event": "log",
        "offset": 0,
        "end": 14,
        "text": "line 1\nline 2\n",
    }
    assert (await receive(communicator))["status"] == "running"
    await append(job, 14, b"line 3\n")
    assert (await receive(communicator))["offset"] == 14
    await communicator.disconnect()


@websocket_test
async def test_a_client_resumes_from_its_offset(owner: User, job: Job) -> None:
    await append(job, 0, b"seen already\nnew\n")

    communicator, _, _ = await watch(owner, job, "?offset=13")

    assert await receive(communicator) == {"event": "log", "offset": 13, "end": 17, "text": "new\n"}
    await communicator.disconnect()


@websocket_test
async def test_joining_a_finished_job_gives_everything_then_the_end(owner: User, job: Job) -> None:
    await append(job, 0, b"all done\n")
    await move(job, S.SCHEDULED, S.STARTING, S.RUNNING)
    await move(job, S.FAILED, reason="exit 3", exit_code=3)

    communicator, _, _ = await watch(owner, job)

    assert (await receive(communicator))["text"] == "all done\n"
    status = await receive(communicator)
    assert (status["status"], status["reason"], status["exit_code"]) == ("failed", "exit 3", 3)
    assert await receive(communicator) == {"event": "end", "status": "failed"}
    await assert_closed(communicator, 1000)


@websocket_test
async def test_a_long_backlog_comes_in_pieces(
    owner: User, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "LOG_MESSAGE_BYTES", 4)
    await append(job, 0, b"abcdefghij")

    communicator, _, _ = await watch(owner, job)

    pieces = [await receive(communicator) for _ in range(3)]
    assert [(p["offset"], p["end"], p["text"]) for p in pieces] == [
        (0, 4, "abcd"),
        (4, 8, "efgh"),
        (8, 10, "ij"),
    ]
    assert (await receive(communicator))["event"] == "status"
    await communicator.disconnect()


@websocket_test
async def test_a_character_split_between_chunks_arrives_whole(owner: User, job: Job) -> None:
    await move(job, S.SCHEDULED, S.STARTING, S.RUNNING)
    snowman = "☃".encode()
    communicator, _, _ = await watch(owner, job)
    await receive(communicator)  # the status

    await append(job, 0, b"a" + snowman[:1])
    assert await receive(communicator) == {"event": "log", "offset": 0, "end": 1, "text": "a"}
    await append(job, 2, snowman[1:] + b"\xff\n")

    assert await receive(communicator) == {
        "event": "log",
        "offset": 1,
        "end": 6,
        "text": "☃\ufffd\n",
    }
    await communicator.disconnect()


@websocket_test
async def test_an_outsider_is_refused_as_if_there_were_no_such_job(job: Job) -> None:
    outsider = await sync_to_async(UserFactory.create)()

    _, connected, code = await watch(outsider, job)

    assert connected is False
    assert code == consumers.CLOSE_NOT_FOUND


@websocket_test
async def test_an_unknown_job_is_refused(owner: User, job: Job) -> None:
    ghost = Job(id=job.id + 1000, number=9)

    _, connected, code = await watch(owner, ghost)

    assert (connected, code) == (False, consumers.CLOSE_NOT_FOUND)


@websocket_test
async def test_anonymous_connections_are_refused(job: Job) -> None:
    path = f"/ws/jobs/{job.id}/"
    communicator = WebsocketCommunicator(application, path, [(b"origin", b"http://localhost")])

    connected, code = await communicator.connect(timeout=TIMEOUT)
    await gone(communicator)

    assert (connected, code) == (False, consumers.CLOSE_UNAUTHENTICATED)


@websocket_test
@pytest.mark.parametrize("query", ["?offset=-1", "?offset=abc", "?offset=1e3"])
async def test_a_bad_offset_is_refused(owner: User, job: Job, query: str) -> None:
    _, connected, code = await watch(owner, job, query)

    assert (connected, code) == (False, consumers.CLOSE_INVALID)


@websocket_test
async def test_anyone_signed_in_may_watch_a_job_of_a_public_project(owner: User) -> None:
    public = await sync_to_async(ProjectFactory.create)(
        owner_user=owner, name="open", visibility=Visibility.PUBLIC
    )
    job = await sync_to_async(JobFactory.create)(project=public)
    outsider = await sync_to_async(UserFactory.create)()

    communicator, connected, _ = await watch(outsider, job)

    assert connected
    assert (await receive(communicator))["status"] == "queued"
    await communicator.disconnect()


@websocket_test
async def test_a_collaborator_removed_from_the_project_stops_receiving(
    owner: User, project: Project, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    guest = await sync_to_async(UserFactory.create)(username="guest")
    await sync_to_async(project_member_add)(
        project=project, actor=owner, username="guest", role=Role.VIEWER
    )
    communicator, connected, _ = await watch(guest, job)
    assert connected
    await receive(communicator)  # the status
    await append(job, 0, b"visible\n")
    assert (await receive(communicator))["text"] == "visible\n"

    await sync_to_async(project_member_remove)(project=project, actor=owner, username="guest")
    await append(job, 8, b"secret\n")

    await assert_closed(communicator, consumers.CLOSE_FORBIDDEN)


@pytest.mark.parametrize(
    ("query", "offset"),
    [(b"", 0), (b"offset=", 0), (b"offset=42", 42), (b"a=1&offset=7", 7), (b"offset=-1", None)],
)
def test_requested_offset(query: bytes, offset: int | None) -> None:
    assert requested_offset(query) == offset


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"", 0),
        (b"abc", 3),
        ("é".encode(), 2),
        ("é".encode()[:1], 0),
        (b"a" + "☃".encode()[:2], 1),
        (b"a" + "😀".encode()[:3], 1),
        (b"a" + "😀".encode(), 5),
        (b"\x80\x80\x80\x80", 4),
    ],
)
def test_utf8_complete(data: bytes, complete: int) -> None:
    assert utf8_complete(data) == complete
