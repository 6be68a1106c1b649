"""Fixtures the job suites share.

The executor suites give their own ``executor`` and ``job_dir``; the agent's suites use ``api``
and ``submitted``.
"""

import base64
import functools
import hashlib
import http.server
import threading
import zipfile
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
    settings.FERRY_EXECUTOR = "local"  # the Docker backend has suites of its own
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


# --- a package index for requirements -----------------------------------------------------------


def make_wheel(directory: Path, version: str) -> None:
    """A pure-Python wheel of ``ferry-tiny`` whose module says its version."""
    dist_info = f"ferry_tiny-{version}.dist-info"
    files = {
        "ferry_tiny/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: ferry-tiny\nVersion: {version}\n"
        .encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }  # fmt: skip

    def hashed(data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return f"sha256={digest.decode()},{len(data)}"

    record = "".join(f"{path},{hashed(data)}\n" for path, data in files.items())
    with zipfile.ZipFile(directory / f"ferry_tiny-{version}-py3-none-any.whl", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
        wheel.writestr(f"{dist_info}/RECORD", record + f"{dist_info}/RECORD,,\n")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def wheel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP directory of ferry-tiny 1.0 and 2.0, which pip reads as --find-links: a job in
    the sandbox sees no host path, but it sees the network."""
    wheels = tmp_path_factory.mktemp("wheels")
    for version in ("1.0", "2.0"):
        make_wheel(wheels, version)
    handler = functools.partial(QuietHandler, directory=str(wheels))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def pip_args(wheel_server: str) -> list[str]:
    return ["--no-index", "--find-links", wheel_server]
