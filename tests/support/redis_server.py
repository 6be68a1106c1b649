"""The Redis the tests use: ``REDIS_URL`` if set, else a throw-away embedded server."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from config.embedded_redis import start_redis


def ping(url: str) -> None:
    with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
        client.ping()


@contextmanager
def test_redis(workdir: Path) -> Iterator[str]:
    """Yield the URL of a Redis server that answers, stopping it afterwards if we started it."""
    external = os.environ.get("REDIS_URL")
    if external:
        ping(external)
        yield external
        return
    socket_path = workdir / "redis.sock"
    process: subprocess.Popen[bytes] = start_redis(socket_path, workdir / "data")
    try:
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=10)
