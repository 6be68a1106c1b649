"""HTTP under ASGI, served by Django's WSGI handler on a pool of threads.

Every HTTP view of Ferry is synchronous. Django's own ASGI handler runs such a view by hopping
between the event loop and a thread for each sync middleware, each signal and the view itself:
about thirty hand-overs a request, which cost 10 ms on a small machine, where the same request
through WSGI takes 0.6 ms. So a request is read on the event loop, handed whole to a thread
that runs Django's WSGI handler, and its response comes back in one piece: one hand-over each
way. A streaming response (a dataset's tar, a metrics export) is sent chunk by chunk, and stops
when the client goes away. Websockets stay with Channels (config/asgi.py).

Requests now run side by side, one per thread, as under any threaded WSGI server; Django's
connections are per thread and come from the pool (settings: FERRY_DATABASE_POOL_SIZE).
"""

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WsgiOnThreads:
    """An ASGI application for ``http`` scopes that runs ``app``, a WSGI application, on
    ``threads`` threads."""

    def __init__(self, app: WsgiApp, *, threads: int, spool_bytes: int) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ferry-http")
        # Bodies up to this size stay in memory; larger ones (uploads) go to a temporary file.
        self.spool_bytes = spool_bytes

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"{type(self).__name__} serves HTTP only, not {scope['type']!r}.")
        body = await self._body(receive)
        if body is None:
            return  # the client left before it had sent its request
        loop = asyncio.get_running_loop()
        exchange = _Exchange(loop, receive, send)
        try:
            last = await loop.run_in_executor(self.executor, self._respond, scope, body, exchange)
        finally:
            exchange.stop_watching()
            body.close()
        for message in last:
            await send(message)

    async def _body(self, receive: Receive) -> IO[bytes] | None:
        # Closed by the caller once the response is made; here only if the client left.
        body = tempfile.SpooledTemporaryFile(max_size=self.spool_bytes, mode="w+b")  # noqa: SIM115
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body.close()
                return None
            body.write(message.get("body", b""))
            if not message.get("more_body", False):
                body.seek(0)
                return body

    def _respond(self, scope: Message, body: IO[bytes], exchange: "_Exchange") -> list[Message]:
        """In a thread: the WSGI application's response. Chunks but the last are sent from here
        as they come; what is left to send is returned, so that a response of one piece (nearly
        all of them) crosses back to the event loop once."""
        start = _Start()
        result = self.app(wsgi_environ(scope, body), start)
        try:
            held: bytes | None = None
            for chunk in result:
                if not chunk:
                    continue
                if held is not None and not exchange.send_now(start, held):
                    return []  # the client went away: stop making the rest
                held = chunk
            return exchange.last_messages(start, held or b"")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django's request_finished: the thread's connection back to the pool


class _Start:
    """WSGI's ``start_response``, keeping the status and headers for the ASGI start message."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status = int(status[:3])
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]

    def message(self) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}


class _Exchange:
    """The event loop's side of one request, as the thread sees it: sending from the thread,
    and whether the client is still there."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive, send: Send) -> None:
        self.loop = loop
        self.receive = receive
        self.send = send
        self.started = False
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    def send_now(self, start: _Start, chunk: bytes) -> bool:
        """Sends a chunk of a streamed body from the thread, waiting until it is sent: a slow
        client slows the stream instead of filling memory. False once the client is gone."""
        if self.gone:
            return False
        messages = [*self._first(start), _body(chunk, more=True)]
        asyncio.run_coroutine_threadsafe(self._send_all(messages), self.loop).result()
        return not self.gone

    def last_messages(self, start: _Start, chunk: bytes) -> list[Message]:
        return [] if self.gone else [*self._first(start), _body(chunk, more=False)]

    def _first(self, start: _Start) -> list[Message]:
        if self.started:
            return []
        self.started = True
        return [start.message()]

    async def _send_all(self, messages: list[Message]) -> None:
        if self.watcher is None:
            # Only a streamed response watches for the client leaving: a short one is done first.
            self.watcher = asyncio.create_task(self._watch())
        for message in messages:
            await self.send(message)

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.gone = True

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()


def _body(chunk: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


def wsgi_environ(scope: Message, body: IO[bytes]) -> dict[str, Any]:
    """PEP 3333's environ for an ASGI ``http`` scope whose whole body is ``body``."""
    script_name = scope.get("root_path", "")
    path = scope["path"]
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    server_name, server_port = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        # WSGI's strings are bytes read as Latin-1; ASGI's path is already decoded as UTF-8.
        "SCRIPT_NAME": script_name.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server_name),
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        # The length of what arrived, whatever the headers said: a chunked upload has none,
        # and WSGI reads no further than CONTENT_LENGTH.
        "CONTENT_LENGTH": str(_size(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = scope["client"][0], str(scope["client"][1])
    environ.update(_header_variables(scope.get("headers", [])))
    return environ


def _header_variables(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").upper()
        if "_" in name:
            # As Django's runserver does: X_User and X-User would both read as HTTP_X_USER, so
            # a header spelt with "_" could pass for one a proxy set.
            continue
        if name == "CONTENT-LENGTH":
            continue
        key = "CONTENT_TYPE" if name == "CONTENT-TYPE" else "HTTP_" + name.replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in variables:
            value = variables[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        variables[key] = value
    return variables


def _size(body: IO[bytes]) -> int:
    size = body.seek(0, 2)
    body.seek(0)
    return size
