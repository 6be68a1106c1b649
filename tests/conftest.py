"""Shared fixtures: real PostgreSQL and Redis, API clients, and the users tests act as."""

import importlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_create
from blobs.storage import get_storage
from config.redis_urls import celery_broker_url
from tests.factories import UserFactory
from tests.support.redis_server import redis_for_tests
from tests.support.seaweed import S3Server, start_seaweed
from tests.support.services import is_required, start_postgres_cluster, unavailable

_REDIS_PROBLEM: list[str] = []


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
) -> Iterator[None]:
    """Run the suite on PostgreSQL: DATABASE_URL's, or a throw-away cluster made with initdb."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        yield
        return
    try:
        cluster = start_postgres_cluster()
    except Exception as exc:
        if is_required("postgres"):
            pytest.fail(f"PostgreSQL is required but could not start: {exc}", pytrace=False)
        yield  # the suite runs on SQLite; tests marked `postgres` skip
        return
    _use_database(cluster.database_settings())
    try:
        yield
    finally:
        cluster.stop()


def _use_database(new: dict[str, object]) -> None:
    # Edit the settings dict in place: Django's connection handler holds this very object.
    from django.db import connections

    # OPTIONS too: the embedded SQLite's (config/settings.py) mean nothing to PostgreSQL.
    settings.DATABASES["default"].update({"OPTIONS": {}, **new})
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = None
    connections.close_all()
    with suppress(AttributeError):
        del connections["default"]


@pytest.fixture(scope="session", autouse=True)
def _test_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Point the broker and the channel layer at a test Redis, never at a running `make up`."""
    try:
        with redis_for_tests(Path(tmp_path_factory.mktemp("redis"))) as url:
            _use_redis(url)
            yield url
    except Exception as exc:
        _REDIS_PROBLEM.append(f"{type(exc).__name__}: {exc}")
        _use_redis("redis://127.0.0.1:1/0")  # refuses at once instead of reaching a real server
        yield None


def _use_redis(url: str) -> None:
    from channels.layers import channel_layers

    from config.celery_app import app

    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = celery_broker_url(url)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [url], "prefix": "ferry-test:ws"},
        }
    }
    app.conf.update(broker_url=celery_broker_url(url))
    channel_layers.backends.clear()


@pytest.fixture
def redis_url(_test_redis: str | None) -> str:
    """The URL of a running Redis; skips (or fails, if required) when there is none."""
    if _test_redis is None:
        unavailable("redis", _REDIS_PROBLEM[0] if _REDIS_PROBLEM else "could not start")
    assert _test_redis is not None
    return _test_redis


@pytest.fixture
def postgres(db: None) -> None:
    """For tests that need PostgreSQL itself (locking, concurrency), not just a database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        unavailable("postgres", "the suite is running on SQLite (no initdb, no DATABASE_URL)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
        if "s3" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.s3)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # Throttle counters live in the cache; one test's login attempts must not limit the next's.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_scheduler_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scheduler keeps the queue, the holdings and its memos from one pass to the next in
    # the process. Each test's database rolls back: what an earlier test's passes kept would
    # describe rows that are gone, and which test ran before (another order, another xdist
    # worker) would change what this one does.
    from fleet import scheduler

    monkeypatch.setattr(scheduler, "_QUEUE", scheduler._QueueCache())
    monkeypatch.setattr(scheduler, "_HELD", scheduler._HeldCache())
    monkeypatch.setattr(scheduler, "_MEMOS", scheduler._Memos())


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Tests create users by the hundred; the production hasher spends ~0.3 s on each password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- acting as someone --------------------------------------------------------------------------


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def client_for(user: User | None) -> APIClient:
    """An API client authenticated with a fresh bearer token of ``user`` (anonymous if None)."""
    client = APIClient()
    if user is not None:
        secret = api_token_create(user=user, name="test").secret
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def as_user() -> Callable[[User | None], APIClient]:
    return client_for


@pytest.fixture
def alice(db: None) -> User:
    user: User = UserFactory.create(username="alice")
    return user


@pytest.fixture
def alice_client(alice: User) -> APIClient:
    return client_for(alice)


# --- S3 -----------------------------------------------------------------------------------------

_S3_PROBLEM: list[str] = []


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server | None]:
    """A throw-away SeaweedFS S3 server (or FERRY_TEST_S3_ENDPOINT's), started on first use."""
    with ExitStack() as stack:
        # Only the start is guarded: an error while stopping must surface, not yield twice.
        try:
            server = stack.enter_context(start_seaweed(tmp_path_factory.mktemp("seaweed")))
        except Exception as exc:
            _S3_PROBLEM.append(f"{type(exc).__name__}: {exc}")
            server = None
        yield server


@pytest.fixture
def s3(s3_server: S3Server | None) -> S3Server:
    """The S3 server and its bucket; skips (or fails, if required) when there is none."""
    if s3_server is None:
        unavailable("s3", _S3_PROBLEM[0] if _S3_PROBLEM else "could not start")
    assert s3_server is not None
    return s3_server


# --- blob storage ---------------------------------------------------------------------------


@pytest.fixture(params=["filesystem", "s3"])
def configured_storage(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[str]:
    """Point FERRY_STORAGE at the filesystem or at the real test S3 server; yields which."""
    settings.FERRY_STORAGE = request.param
    if request.param == "filesystem":
        settings.FERRY_STORAGE_DIR = tmp_path / "storage"
    else:
        server = request.getfixturevalue("s3")
        settings.FERRY_S3_ENDPOINT_URL = server.endpoint_url
        settings.FERRY_S3_BUCKET = server.bucket
        settings.FERRY_S3_ACCESS_KEY = server.access_key
        settings.FERRY_S3_SECRET_KEY = server.secret_key
        settings.FERRY_S3_REGION = server.region
        settings.FERRY_S3_PREFIX = f"test-{secrets.token_hex(4)}/"
    get_storage.cache_clear()
    yield request.param
    get_storage.cache_clear()


@pytest.fixture(autouse=True)
def job_catalog(request: pytest.FixtureRequest) -> None:
    """The environments and machine types a migration seeds, for every test using the database.

    A transactional test empties every table when it ends, seeded rows included; putting them
    back (idempotently) keeps later tests independent of the order tests run in.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    seeding = importlib.import_module("jobs.migrations.0002_seed_environments_and_machines")
    seeding.seed(django_apps, None)
