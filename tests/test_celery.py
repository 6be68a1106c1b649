"""A real Celery worker consumes Ferry's tasks from the real broker."""

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_create
from accounts.tasks import KEEP_DEAD_TOKENS_FOR, purge_expired_tokens
from config.celery_app import app
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(redis_url: str) -> Iterator[None]:
    # The ping check needs a result backend, which Ferry does not use: tasks write their
    # results to the database.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def wait_until(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.1)
    return False


def test_worker_runs_a_task_sent_through_the_broker(worker: None) -> None:
    user = UserFactory.create()
    long_dead = api_token_create(user=user, name="old").token
    ApiToken.objects.filter(id=long_dead.id).update(
        revoked_at=timezone.now() - KEEP_DEAD_TOKENS_FOR - timedelta(days=1)
    )
    alive = api_token_create(user=user, name="current").token

    purge_expired_tokens.delay()

    assert wait_until(lambda: not ApiToken.objects.filter(id=long_dead.id).exists())
    assert ApiToken.objects.filter(id=alive.id).exists()


def test_broker_url_follows_the_test_redis(redis_url: str) -> None:
    assert redis_url == settings.REDIS_URL
    assert app.conf.broker_url.endswith(redis_url.split("://", 1)[1])


def test_beat_schedules_the_token_purge() -> None:
    schedule = app.conf.beat_schedule
    assert schedule["accounts.purge_expired_tokens"]["task"] == purge_expired_tokens.name
