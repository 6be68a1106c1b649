"""HTTP through config.asgi: Django's WSGI handler on a pool of threads (core.http_threads).

The first tests send real requests through the deployed ASGI application to Ferry's views, on
committed rows (the views run in the pool's threads, on connections of their own). The others
put small WSGI applications behind the bridge, to hold a request open or stream without end.
"""

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async

from accounts.models import User
from accounts.services import api_token_create
from config.asgi import application
from core.http_threads import Message, WsgiOnThreads, wsgi_environ
from projects.models import Project
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.factories import JobFactory
from tracking.parsing import MetricPoint
from tracking.services import metrics_record

TIMEOUT = 10
MLFLOW = "/compat/mlflow/api/2.0/mlflow"


def http_scope(
    method: str, path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip


async def exchange(
    app: Any, scope: dict[str, Any], chunks: tuple[bytes, ...] = (b"",)
) -> list[Message]:
    """Sends the request body in ``chunks``; returns every message of the response."""
    communicator = ApplicationCommunicator(app, scope)
    for index, chunk in enumerate(chunks):
        more = index < len(chunks) - 1
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": more})
    messages = [await communicator.receive_output(TIMEOUT)]
    while messages[-1]["type"] != "http.response.body" or messages[-1].get("more_body"):
        messages.append(await communicator.receive_output(TIMEOUT))
    await communicator.wait(TIMEOUT)
    return messages


def body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def bearer_for(username: str) -> list[tuple[bytes, bytes]]:
    user = UserFactory.create(username=username)
    secret = api_token_create(user=user, name="asgi").secret
    return [(b"authorization", f"Bearer {secret}".encode())]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_body_sent_in_pieces_without_a_length_reaches_the_view_whole() -> None:
    headers = await database_sync_to_async(bearer_for)("olga")
    body = json.dumps({"name": "mnist"}).encode()
    headers.append((b"content-type", b"application/json"))
    scope = http_scope("POST", f"{MLFLOW}/experiments/create", headers=headers)
    messages = await exchange(application, scope, (body[:5], body[5:]))
    assert messages[0]["status"] == 200, body_of(messages)
    created = json.loads(body_of(messages))["experiment_id"]
    name = await database_sync_to_async(lambda: Project.objects.get(id=int(created)).name)()
    assert name == "mnist"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_query_string_in_utf8_reaches_the_view_as_sent() -> None:
    headers = await database_sync_to_async(bearer_for)("olga")
    scope = http_scope(
        "GET", f"{MLFLOW}/experiments/get-by-name", b"experiment_name=caf%C3%A9", headers
    )
    messages = await exchange(application, scope)
    assert messages[0]["status"] == 404
    assert "café" in json.loads(body_of(messages))["message"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_streamed_export_comes_in_chunks_and_whole() -> None:
    headers, path = await database_sync_to_async(_export_of_three_points)()
    messages = await exchange(application, http_scope("GET", path, headers=headers))
    assert messages[0]["status"] == 200
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert len(bodies) > 1
    assert all(m["more_body"] for m in bodies[:-1])
    lines = body_of(messages).decode().splitlines()
    assert lines[0].startswith("key,step")
    assert len(lines) == 4


def _export_of_three_points() -> tuple[list[tuple[bytes, bytes]], str]:
    headers = bearer_for("olga")
    project = ProjectFactory.create(owner_user=User.objects.get(username="olga"), name="mnist")
    job = JobFactory.create(project=project, number=1)
    metrics_record(job.id, [MetricPoint("loss", 1.0 / (n + 1), n) for n in range(3)])
    return headers, "/api/v1/projects/olga/mnist/jobs/1/metrics.csv"


class _Held:
    """A WSGI application whose requests wait for one another: it answers only when
    ``parties`` requests are in it at once."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=TIMEOUT)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.barrier.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"together"]


@pytest.mark.asyncio
async def test_requests_run_side_by_side_on_the_threads() -> None:
    bridge = WsgiOnThreads(_Held(parties=3), threads=3, spool_bytes=1024)
    answers = await asyncio.gather(
        *(exchange(bridge, http_scope("GET", f"/{n}")) for n in range(3))
    )
    assert [body_of(messages) for messages in answers] == [b"together"] * 3


class _Endless:
    """A WSGI application streaming chunks until it is closed."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        try:
            while self.sent < 100_000:
                self.sent += 1
                yield b"x" * 1024
        finally:
            self.closed.set()


async def _sending(
    app: _Endless, method: str, body: bytes, *, more: bool
) -> ApplicationCommunicator:
    """A request to ``app`` through the bridge, its first body message sent."""
    bridge = WsgiOnThreads(app, threads=1, spool_bytes=1024)
    communicator = ApplicationCommunicator(bridge, http_scope(method, "/endless"))
    await communicator.send_input({"type": "http.request", "body": body, "more_body": more})
    return communicator


@pytest.mark.asyncio
async def test_a_stream_stops_when_its_client_goes_away() -> None:
    endless = _Endless()
    communicator = await _sending(endless, "GET", b"", more=False)
    assert (await communicator.receive_output(TIMEOUT))["status"] == 200
    assert (await communicator.receive_output(TIMEOUT))["more_body"] is True
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(TIMEOUT)
    assert endless.closed.is_set()
    assert endless.sent < 100_000


@pytest.mark.asyncio
async def test_a_client_gone_before_its_body_ended_is_not_served() -> None:
    endless = _Endless()
    communicator = await _sending(endless, "POST", b"part", more=True)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(TIMEOUT)
    assert endless.sent == 0
    assert await communicator.receive_nothing()


def test_the_environ_keeps_to_wsgi_strings_and_to_what_arrived() -> None:
    scope = http_scope(
        "POST", "/ferry/api/café", b"a=1&b=%C3%A9",
        [
            (b"content-type", b"application/json"), (b"content-length", b"999"),
            (b"x-forwarded-for", b"10.0.0.1"), (b"x-forwarded-for", b"10.0.0.2"),
            (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x_user", b"admin"),
        ],
    )  # fmt: skip
    scope["root_path"] = "/ferry"
    environ = wsgi_environ(scope, io.BytesIO(b"{}"))
    assert environ["SCRIPT_NAME"] == "/ferry"
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/api/café"
    assert environ["QUERY_STRING"] == "a=1&b=%C3%A9"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "2"  # what came, not what the header claimed
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1,10.0.0.2"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_USER" not in environ
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
