"""Fixtures the job suites share.

The executor suites give their own ``executor`` and ``job_dir``; the agent's suites use ``api``
and ``submitted``.
"""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from fleet.inventory import inventory_read
from fleet.scheduler import schedule
from fleet.services import host_register
from jobs.agent import run_job
from jobs.executors import Executor, Handle
from jobs.models import Job
from tests.conftest import client_for
from tests.factories import ProjectFactory, UserFactory
from tests.jobs.test_executor_contract import spec_for


@pytest.fixture
def run(executor: Executor, job_dir: Path) -> Iterator[Callable[..., Handle]]:
    """Launches a job of ``command``; whatever still runs at the end of the test is stopped."""
    handles: list[Handle] = []

    def launch(command: str, **changes: object) -> Handle:
        handles.append(executor.launch(spec_for(job_dir, command, **changes)))
        return handles[-1]

    yield launch
    for handle in handles:
        executor.cleanup(handle)


# --- jobs run by the agent, through the API -----------------------------------------------------

JOBS = "/api/v1/projects/alice/mnist/jobs"


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> APIClient:
    """Alice's client, her project alice/mnist, and this machine registered as host "here"."""
    settings.FERRY_AGENT_DIR = tmp_path / "agent"
    settings.FERRY_JOB_STOP_GRACE_S = 1
    alice = UserFactory.create(username="alice")
    ProjectFactory.create(name="mnist", owner_user=alice)
    host_register("here", inventory_read())
    return client_for(alice)


def submitted(api: APIClient, command: str, **body: object) -> Job:
    """Submit a job of ``command`` and place it on a host; its agent is the test's to play."""
    response = api.post(JOBS, {"command": command, **body}, format="json")
    assert response.status_code == 202, response.json()
    assert schedule()["placed"] == 1, Job.objects.values("status", "status_reason")
    return Job.objects.get(number=response.json()["number"])


@pytest.fixture
def agent() -> Iterator[Callable[[Job], list[str]]]:
    """Runs a job in a thread as the host's agent would; the list it returns gets the outcome.
    At the end, jobs waiting for a test's go (a file ``go`` in their control directory) get it,
    and every thread is joined."""
    threads: list[threading.Thread] = []

    def start(job: Job) -> list[str]:
        outcome: list[str] = []

        def work() -> None:
            try:
                outcome.append(run_job(job.id))
            finally:
                connection.close()

        threads.append(threading.Thread(target=work))
        threads[-1].start()
        return outcome

    yield start
    for control in (Path(settings.FERRY_AGENT_DIR) / "jobs").glob("*/control"):
        (control / "go").touch()  # a test that failed half-way leaves no job waiting
    for thread in threads:
        thread.join(60)
