"""The /ws/v1/events websocket, through the real ASGI app and a real Redis channel layer."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from accounts.services import api_token_create
from config.asgi import application
from projects import consumers
from projects.models import Project, Visibility
from projects.services import project_member_add, project_member_remove, project_update
from tests.factories import ProjectFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TIMEOUT = 5


@pytest.fixture(autouse=True)
def _needs_redis(redis_url: str) -> None:
    """Every test here goes through the Redis channel layer."""


def bearer(user: User) -> list[tuple[bytes, bytes]]:
    secret = api_token_create(user=user, name="ws").secret
    return [(b"authorization", f"Bearer {secret}".encode())]


async def connect(headers: list[tuple[bytes, bytes]], path: str = "/ws/v1/events") -> Any:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, code


@pytest.fixture
def owner() -> User:
    return UserFactory.create(username="olga")


@pytest.fixture
def private_project(owner: User) -> Project:
    return ProjectFactory.create(owner_user=owner, name="secret", visibility=Visibility.PRIVATE)


async def subscribe(communicator: WebsocketCommunicator, address: str) -> dict[str, Any]:
    await communicator.send_json_to({"type": "subscribe", "project": address})
    reply: dict[str, Any] = await communicator.receive_json_from(timeout=TIMEOUT)
    return reply


async def test_anonymous_browser_connections_are_closed_with_4401() -> None:
    _, connected, code = await connect(headers=[(b"origin", b"http://localhost")])

    assert connected is False
    assert code == consumers.CLOSE_UNAUTHENTICATED


async def test_unknown_token_is_treated_as_anonymous() -> None:
    _, connected, code = await connect([(b"authorization", b"Bearer fry_nope")])

    assert connected is False
    assert code == consumers.CLOSE_UNAUTHENTICATED


async def test_owner_receives_live_events_of_a_subscribed_project(
    owner: User, private_project: Project
) -> None:
    headers = await sync_to_async(bearer)(owner)
    communicator, connected, _ = await connect(headers)
    assert connected
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "hello",
        "user": "olga",
    }

    assert await subscribe(communicator, "olga/secret") == {
        "type": "subscribed",
        "project": "olga/secret",
    }
    await sync_to_async(project_update)(
        project=private_project, actor=owner, description="now with events"
    )

    event = await communicator.receive_json_from(timeout=TIMEOUT)
    assert event["type"] == "event"
    assert event["event"] == "project.updated"
    assert event["project"] == "olga/secret"
    await communicator.disconnect()


async def test_token_in_query_string_is_not_accepted(owner: User) -> None:
    # URLs are written to access logs; a secret in one would leak there.
    secret = (await sync_to_async(api_token_create)(user=owner, name="ws")).secret
    _, connected, _ = await connect([], path=f"/ws/v1/events?token={secret}")

    assert connected is False


async def test_outsider_cannot_subscribe_to_a_private_project(private_project: Project) -> None:
    outsider = await sync_to_async(UserFactory.create)()
    communicator, _, _ = await connect(await sync_to_async(bearer)(outsider))
    await communicator.receive_json_from(timeout=TIMEOUT)

    reply = await subscribe(communicator, "olga/secret")

    assert reply["type"] == "error"
    assert reply["error"]["code"] == "not_found"
    await communicator.disconnect()


async def test_outsider_may_watch_a_public_project(owner: User) -> None:
    await sync_to_async(ProjectFactory.create)(
        owner_user=owner, name="open", visibility=Visibility.PUBLIC
    )
    outsider = await sync_to_async(UserFactory.create)()
    communicator, _, _ = await connect(await sync_to_async(bearer)(outsider))
    await communicator.receive_json_from(timeout=TIMEOUT)

    assert (await subscribe(communicator, "olga/open"))["type"] == "subscribed"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "message",
    [
        "not json at all",
        '["a", "list"]',
        '{"type": "subscribe"}',
        '{"type": "dance", "project": "olga/secret"}',
        '{"type": "subscribe", "project": 7}',
    ],
)
async def test_malformed_messages_get_an_error_and_keep_the_socket_open(
    owner: User, private_project: Project, message: str
) -> None:
    communicator, _, _ = await connect(await sync_to_async(bearer)(owner))
    await communicator.receive_json_from(timeout=TIMEOUT)

    await communicator.send_to(text_data=message)
    reply = await communicator.receive_json_from(timeout=TIMEOUT)

    assert reply["type"] == "error"
    assert reply["error"]["code"] in {"invalid", "parse_error"}
    assert (await subscribe(communicator, "olga/secret"))["type"] == "subscribed"
    await communicator.disconnect()


async def test_a_collaborator_removed_from_a_project_stops_receiving_its_events(
    owner: User, private_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    guest = await sync_to_async(UserFactory.create)(username="guest")
    await sync_to_async(project_member_add)(
        project=private_project, actor=owner, username="guest", role=Role.VIEWER
    )
    communicator, _, _ = await connect(await sync_to_async(bearer)(guest))
    await communicator.receive_json_from(timeout=TIMEOUT)
    assert (await subscribe(communicator, "olga/secret"))["type"] == "subscribed"

    await sync_to_async(project_member_remove)(
        project=private_project, actor=owner, username="guest"
    )
    await sync_to_async(project_update)(project=private_project, actor=owner, description="x")

    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()


async def test_session_cookie_needs_an_allowed_origin(owner: User) -> None:
    client = Client()
    await sync_to_async(client.force_login)(owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    _, connected, _ = await connect([(b"cookie", cookie), (b"origin", b"http://evil.example")])
    assert connected is False

    local, connected, _ = await connect([(b"cookie", cookie), (b"origin", b"http://localhost")])
    assert connected is True
    assert (await local.receive_json_from(timeout=TIMEOUT))["user"] == "olga"
    await local.disconnect()
