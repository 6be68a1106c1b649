"""The agent's side of a CLI test, in the test's own process: this machine registered as host
"here" with the local executor, and a job placed and run in a thread as the host's Celery
worker would run it."""

import threading
from pathlib import Path

import pytest
from django.db import connection
from pytest_django.fixtures import Settings

from fleet.inventory import inventory_read
from fleet.scheduler import schedule
from fleet.services import host_register
from jobs.agent import run_job
from jobs.models import Job


@pytest.fixture
def agent_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.FERRY_AGENT_DIR = tmp_path / "agent"
    settings.FERRY_JOB_STOP_GRACE_S = 1
    settings.FERRY_EXECUTOR = "local"
    host_register("here", inventory_read())
    return tmp_path / "agent"


def run_in_agent(number: int) -> threading.Thread:
    """Place job ``number`` and run it in a thread, as the host's agent would."""
    assert schedule()["placed"] == 1

    def agent() -> None:
        try:
            run_job(Job.objects.get(number=number).id)
        finally:
            connection.close()

    thread = threading.Thread(target=agent)
    thread.start()
    return thread
