"""Several agents on one machine share two users' queued work: each agent a host of its own with
two GPUs faked through FERRY_AGENT_FAKE_GPUS, the real `manage.py agent` processes fed by the
real broker, and the scheduler's loop run here as its periodic task would run it. What is
faked: the GPUs (none here), so the jobs only see the indices they were given."""

import time
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from fleet.models import Allocation, Host, Quota
from fleet.scheduler import schedule
from jobs.logs import log_read
from jobs.models import FINISHED, Job, JobStatus, MachineType
from tests.conftest import client_for
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.conftest import waiting_reason
from tests.support.agent_process import AgentProcess

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("configured_storage", ["filesystem"], indirect=True),
    pytest.mark.usefixtures("configured_storage", "redis_url"),
]

HOSTS = ("east", "west", "north")
GPUS_PER_HOST = 2
# Long enough that a second wave of jobs must wait for the first.
COMMAND = 'echo "gpu=$CUDA_VISIBLE_DEVICES"; sleep 1'


@pytest.fixture
def fleet(settings: Settings, tmp_path: Path) -> Iterator[list[AgentProcess]]:
    """Three agents, each its own host with 2 fake A100s and its own directory."""
    settings.FERRY_EXECUTOR = "local"
    settings.FERRY_JOB_STOP_GRACE_S = 1
    MachineType.objects.create(name="a100", cpus=0.1, memory_mb=64, gpus=1, gpu_model="A100")
    agents = [
        AgentProcess(
            name,
            tmp_path / f"{name}.log",
            {"FERRY_AGENT_DIR": tmp_path / name, "FERRY_AGENT_FAKE_GPUS": f"{GPUS_PER_HOST}xA100"},
        )
        for name in HOSTS
    ]
    try:
        wait_until(lambda: Host.objects.filter(name__in=HOSTS).count() == len(HOSTS), agents)
        yield agents
    finally:
        for agent in agents:
            agent.kill()


def wait_until(condition: object, agents: list[AgentProcess], timeout: float = 90) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = "\n".join(f"--- {agent.log.name}\n{agent.output()[-3000:]}" for agent in agents)
            raise AssertionError(f"timed out; the agents said:\n{said}")
        time.sleep(0.2)


def user_with_project(name: str) -> tuple[User, APIClient]:
    user = UserFactory.create(username=name)
    ProjectFactory.create(name="train", owner_user=user)
    return user, client_for(user)


def submit(client: APIClient, user: User, count: int) -> list[int]:
    numbers = []
    for _ in range(count):
        response = client.post(
            f"/api/v1/projects/{user.username}/train/jobs",
            {"command": COMMAND, "machine": "a100"},
            format="json",
        )
        assert response.status_code == 202, response.json()
        numbers.append(response.json()["number"])
    return numbers


def run_everything(agents: list[AgentProcess]) -> None:
    """The scheduler's loop, as often as its periodic task would, until every job has ended."""

    def all_ended() -> bool:
        schedule()
        return not Job.objects.exclude(status__in=FINISHED).exists()

    wait_until(all_ended, agents, timeout=180)


def held_by(user: User) -> int:
    return Allocation.objects.active().filter(job__created_by=user).count()


def intervals(allocations: list[Allocation]) -> list[tuple[datetime, datetime]]:
    now = timezone.now()
    return sorted((a.created_at, a.released_at or now) for a in allocations)


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, change in events:  # an end sorts before a start at the same instant
        current += change
        most = max(most, current)
    return most


def assert_no_gpu_given_twice() -> None:
    by_gpu: dict[tuple[str, int], list[Allocation]] = {}
    for allocation in Allocation.objects.select_related("host"):
        for index in allocation.gpu_indices:
            by_gpu.setdefault((allocation.host.name, index), []).append(allocation)
    for gpu, held in by_gpu.items():
        for (_, first_end), (second_start, _) in pairwise(intervals(held)):
            assert first_end <= second_start, f"GPU {gpu} was held by two jobs at once"


def assert_each_job_saw_its_gpu() -> None:
    for job in Job.objects.all():
        assert job.status == JobStatus.SUCCEEDED, (job, job.status_reason)
        (allocation,) = Allocation.objects.filter(job=job)
        assert f"gpu={allocation.gpu_indices[0]}\n" in log_read(job, 0).data.decode()


def test_two_users_share_the_fleet_fairly_and_no_gpu_is_given_twice(
    fleet: list[AgentProcess],
) -> None:
    alice, alice_client = user_with_project("alice")
    bob, bob_client = user_with_project("bob")
    submit(alice_client, alice, 6)  # all of Alice's first: a FIFO queue would give her every GPU
    submit(bob_client, bob, 6)

    assert schedule()["placed"] == len(HOSTS) * GPUS_PER_HOST

    assert (held_by(alice), held_by(bob)) == (3, 3)
    run_everything(fleet)
    assert_no_gpu_given_twice()
    assert_each_job_saw_its_gpu()
    assert set(Allocation.objects.values_list("host__name", flat=True)) == set(HOSTS)


def test_a_users_gpu_quota_holds_while_the_other_uses_the_rest(fleet: list[AgentProcess]) -> None:
    alice, alice_client = user_with_project("alice")
    bob, bob_client = user_with_project("bob")
    Quota.objects.create(user=alice, max_gpus=2)
    submit(alice_client, alice, 4)
    submit(bob_client, bob, 4)

    schedule()

    assert (held_by(alice), held_by(bob)) == (2, 4)
    waiting = Job.objects.filter(created_by=alice, status=JobStatus.QUEUED)
    assert {waiting_reason(job) for job in waiting} == {"waiting: quota 2/2 GPUs"}
    run_everything(fleet)
    assert most_at_once(intervals(list(Allocation.objects.filter(job__created_by=alice)))) == 2
    assert_no_gpu_given_twice()
    assert_each_job_saw_its_gpu()
