"""The Redis the tests use: ``REDIS_URL`` if set, else a throw-away embedded server."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from config.embedded_redis import start_redis


def ping(url: str) -> None:
    with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
        client.ping()


def own_database(url: str) -> str:
    """Under pytest-xdist, a database of the shared server for each worker (gw0 takes 1, gw1
    takes 2, ...): two workers on one database would consume each other's Celery queues (an
    agent named "east" in each) and hear each other's websocket groups."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    parts = urlsplit(url)
    if not worker.startswith("gw") or parts.scheme not in {"redis", "rediss"}:
        return url
    return urlunsplit(parts._replace(path=f"/{int(worker[2:]) + 1}"))


@contextmanager
def redis_for_tests(workdir: Path) -> Iterator[str]:
    """Yield the URL of a Redis server that answers, stopping it afterwards if we started it."""
    external = os.environ.get("REDIS_URL")
    if external:
        url = own_database(external)
        ping(url)
        yield url
        return
    socket_path = workdir / "redis.sock"
    process: subprocess.Popen[bytes] = start_redis(socket_path, workdir / "data")
    try:
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=10)
