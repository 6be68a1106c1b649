"""A host's agent dies mid-job (SIGKILL: a crash, the OOM killer).

The agent here is the real ``manage.py agent``, a Celery worker in a process of its own,
fed by the real broker; the job runs on the real local executor. Two endings:

- the agent stays dead: the job is lost once its heartbeat is overdue, its allocation is
  freed, its last checkpoint stands as its output, and its process is stopped, not left
  holding what the server has given to others;
- the agent comes back in time: it takes the job up again, and the job's log is whole, with
  nothing lost or doubled, as are its metrics.
"""

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from fleet.inventory import inventory_read
from fleet.models import Allocation
from fleet.reaper import reap
from fleet.scheduler import schedule
from fleet.services import host_register
from jobs.logs import log_read
from jobs.models import Job
from tests.blobs.test_upload_api import upload
from tests.jobs.conftest import JOBS
from tests.support.agent_process import AgentProcess
from tracking.models import Metric

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("configured_storage", ["filesystem"], indirect=True),
    pytest.mark.usefixtures("configured_storage", "redis_url"),
]

HOST = "doomed"
# Keeps a checkpoint, then runs until stopped.
CHECKPOINT_THEN_RUN = b"""\
import os, pathlib, time, ferry
(pathlib.Path(os.environ["FERRY_OUTPUT"]) / "epoch1.pt").write_text("w1")
ferry.checkpoint(timeout=60)
print("pid", os.getpid(), flush=True)
while True:
    time.sleep(0.1)
"""
# Prints 50 metric lines, waits for the test's go, prints 50 more.
HALVES = b"""\
import json, os, pathlib, time
control = pathlib.Path(os.environ["FERRY_CONTROL"])
def lines(steps):
    for step in steps:
        print(json.dumps({"metric": "loss", "value": 1 / (step + 1), "step": step}), flush=True)
lines(range(50))
while not (control / "go").exists():
    time.sleep(0.05)
lines(range(50, 100))
"""


@pytest.fixture
def agents(api: APIClient, tmp_path: Path) -> Iterator[Callable[[], AgentProcess]]:
    """Starts agents for host HOST; every one still running is killed at the end."""
    host_register(HOST, inventory_read())
    started: list[AgentProcess] = []

    def start() -> AgentProcess:
        started.append(AgentProcess(HOST, tmp_path / f"agent-{len(started)}.log"))
        return started[-1]

    yield start
    for agent in started:
        agent.kill()


def placed(api: APIClient, script: bytes) -> Job:
    code = upload(api, {"train.py": script})
    response = api.post(
        JOBS, {"command": "python3 train.py", "code": code["digest"]}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert schedule()["placed"] == 1
    job = Job.objects.get(number=response.json()["number"])
    assert Allocation.objects.get(job=job).host.name == HOST
    return job


def wait_for(
    condition: Callable[[], object], what: str, agent: AgentProcess, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the agent said:\n{agent.output()}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def test_a_job_whose_agent_was_killed_is_lost_keeps_its_checkpoint_and_is_stopped(
    api: APIClient, agents: Callable[[], AgentProcess], settings: Settings
) -> None:
    settings.FERRY_JOB_HEARTBEAT_TIMEOUT_S = 3  # for the reaper here and the agent's keepalive
    agent = agents()
    job = placed(api, CHECKPOINT_THEN_RUN)
    wait_for(lambda: b"pid" in log_read(job, 0).data, "the job to checkpoint and run", agent)
    job.refresh_from_db()
    checkpoint, pid = job.output_tree, int(re.findall(rb"pid (\d+)", log_read(job, 0).data)[0])
    assert checkpoint is not None
    assert alive(pid)

    agent.kill()
    wait_for(lambda: reap()["jobs_lost"], "the reaper to lose the job", agent, timeout=30)

    job.refresh_from_db()
    assert (job.status, job.status_reason) == ("lost", "no heartbeat from its agent for 3 s")
    assert Allocation.objects.get(job=job).released_at is not None
    assert job.output_tree == checkpoint
    wait_for(lambda: not alive(pid), "the orphaned job to be stopped", agent, timeout=30)

    workdir = Path(settings.FERRY_AGENT_DIR) / "jobs" / str(job.id)
    assert workdir.is_dir()  # until an agent comes back to this host
    back = agents()
    wait_for(lambda: not workdir.exists(), "the agent back to clear the lost job", back)
    job.refresh_from_db()
    assert job.status == "lost"


def test_an_agent_killed_and_started_again_takes_its_job_up_and_loses_no_line(
    api: APIClient, agents: Callable[[], AgentProcess], settings: Settings
) -> None:
    settings.FERRY_JOB_HEARTBEAT_TIMEOUT_S = 60
    agent = agents()
    job = placed(api, HALVES)
    wait_for(lambda: b'"step": 49' in log_read(job, 0).data, "the first half", agent)

    agent.kill()
    (Path(settings.FERRY_AGENT_DIR) / "jobs" / str(job.id) / "control" / "go").touch()
    back = agents()
    wait_for(lambda: Job.objects.get(id=job.id).status == "succeeded", "the job's end", back)

    lines = log_read(job, 0).data.decode().splitlines()
    assert [int(re.findall(r'"step": (\d+)', line)[0]) for line in lines] == list(range(100))
    steps = Metric.objects.filter(job=job, key="loss").values_list("step", flat=True)
    assert sorted(steps) == list(range(100))
    released = Allocation.objects.filter(job=job, released_at__isnull=False).exists
    wait_for(released, "the allocation to be freed", back, timeout=10)  # just after the status
    assert "Watching 1 jobs again" in back.output()
