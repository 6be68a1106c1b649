"""Ferry's real ASGI app (``config.asgi:application``, as the Procfile's web process runs it)
under uvicorn in a thread of the test's own process.

pytest-django's ``live_server`` speaks WSGI only; the browser UI also needs the websockets of
Channels (``/ws/jobs/<id>/``). Being in-process, the server sees the test's database, Redis and
settings (a test's ``settings`` fixture included) exactly as the test does; tests must commit
what it should read (``transactional_db``).
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class AsgiServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def asgi_server(host: str = "127.0.0.1") -> Iterator[AsgiServer]:
    """Serve Ferry on a free port until the block ends."""
    from config.asgi import application  # sets Django up: only once settings are final

    port = free_port()
    config = uvicorn.Config(
        application, host=host, port=port, lifespan="off", log_level="warning",
        ws="websockets-sansio", server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    # Not the main thread: uvicorn leaves signal handling to pytest.
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield AsgiServer(host, port)
    finally:
        server.should_exit = True
        thread.join(15)
