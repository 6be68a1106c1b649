"""What fleet tests share: a record of the Celery tasks sent, fixed heartbeat timeouts, and
what the scheduler said of a waiting job."""

from dataclasses import dataclass, field
from typing import Any

import pytest
from kombu.message import Message
from pytest_django.fixtures import Settings

from config.celery_app import app
from fleet.queue import queue_state
from jobs.models import Job

HOST_TIMEOUT_S = 60
JOB_TIMEOUT_S = 120


@dataclass(frozen=True)
class SentTask:
    name: str
    args: list[Any] = field(default_factory=list)
    queue: str | None = None


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[SentTask]:
    """The tasks sent through ``app.send_task``, in order; recorded instead of published."""
    calls: list[SentTask] = []

    def record(name: str, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        calls.append(SentTask(name, list(args or []), options.get("queue")))

    monkeypatch.setattr(app, "send_task", record)
    return calls


@pytest.fixture(autouse=True)
def _timeouts(settings: Settings) -> None:
    settings.FERRY_HOST_HEARTBEAT_TIMEOUT_S = HOST_TIMEOUT_S
    settings.FERRY_JOB_HEARTBEAT_TIMEOUT_S = JOB_TIMEOUT_S


def waiting_reason(job: Job) -> str:
    """Why a queued job waits, as the scheduler's last pass said of its group (fleet.queue)."""
    job.refresh_from_db()
    waiting = queue_state().waiting(job)
    assert waiting is not None, f"the last pass said nothing of {job}"
    return waiting.reason


def message_taken(queue_name: str) -> Message:
    """The next message on ``queue_name`` of the real broker, taken off it (10 s at most)."""
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(queue_name)
        try:
            message: Message = queue.get(timeout=10)
            message.ack()
        finally:
            queue.close()
    return message
