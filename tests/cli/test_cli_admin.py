"""`ferry admin ...` and `ferry run --priority/--retries` in-process against a live server."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from accounts.models import User
from accounts.services import api_token_create
from blobs.storage import get_storage
from config.celery_app import app
from fleet.inventory import Inventory
from fleet.models import Allocation, Host, HostState, Quota
from fleet.queue import QueueState, Waiting, group_key, queue_publish
from fleet.services import host_register
from jobs.models import Job, JobStatus
from tests.cli.conftest import Ferry
from tests.factories import ProjectFactory, TeamFactory, UserFactory
from tests.fleet.factories import JobFactory, gpus, machine_type

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def configured_storage(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The filesystem backend only: these commands store no files, so running them on every
    backend (as tests/cli/conftest.py's fixture does) would test nothing more."""
    settings.FERRY_STORAGE = "filesystem"
    settings.FERRY_STORAGE_DIR = tmp_path / "storage"
    get_storage.cache_clear()
    yield "filesystem"
    get_storage.cache_clear()


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Wakes of the scheduler have no worker to reach here; tests/fleet checks that they leave.
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def root(transactional_db: None) -> User:
    user: User = UserFactory.create(username="root", is_superuser=True, is_staff=True)
    return user


@pytest.fixture
def as_root(ferry: Ferry, root: User) -> Ferry:
    token = api_token_create(user=root, name="cli test").secret
    assert ferry("login", "--token", token).code == 0
    return ferry


def running_job(owner: User, host: Host, gpu_indices: list[int], **fields: Any) -> Job:
    project = ProjectFactory.create(name="mnist", owner_user=owner)
    job: Job = JobFactory.create(
        project=project, number=1, created_by=owner, status=JobStatus.RUNNING, **fields
    )
    Allocation.objects.create(job=job, host=host, cpus=4, memory_mb=8192, gpu_indices=gpu_indices)
    return job


def test_admin_hosts_shows_what_is_held_and_free(as_root: Ferry, alice: User) -> None:
    big = host_register(
        "gpu-1", Inventory(cpus=16, memory_mb=65536, gpus=gpus(4)), executor="docker"
    )
    host_register("laptop", Inventory(cpus=2, memory_mb=8192))
    running_job(alice, big, [0, 1])

    result = as_root("admin", "hosts")

    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "HOST", "STATE", "EXECUTOR", "FREE", "CPUS", "FREE", "MEMORY", "FREE", "GPUS", "JOBS",
    ]  # fmt: skip
    assert lines[1].split() == [
        "gpu-1", "online", "docker", "12/16", "57344/65536", "MB", "2,3", "of", "4",
        "alice/mnist/1", "(GPUs", "0,1)",
    ]  # fmt: skip
    assert lines[2].split() == ["laptop", "online", "local", "2/2", "8192/8192", "MB", "-", "-"]
    rows = json.loads(as_root("admin", "hosts", "--json").out)
    assert rows[0]["free"] == {"cpus": 12, "memory_mb": 57344, "gpu_indices": [2, 3]}


def test_admin_drain_and_undrain(as_root: Ferry, alice: User) -> None:
    host = host_register("gpu-1", Inventory(cpus=16, memory_mb=65536, gpus=gpus(2)))
    running_job(alice, host, [0])

    drained = as_root("admin", "drain", "gpu-1")
    assert drained.code == 0, drained
    assert drained.out.strip() == "Host gpu-1 is draining: 1 job(s) still run there"
    assert Host.objects.get(name="gpu-1").state == HostState.DRAINING

    undrained = as_root("admin", "undrain", "gpu-1")
    assert undrained.code == 0, undrained
    assert undrained.out.strip() == "Host gpu-1 is online and takes new work"
    assert Host.objects.get(name="gpu-1").state == HostState.ONLINE

    again = as_root("admin", "undrain", "gpu-1")
    assert again.code == 1
    assert "gpu-1 is online, not draining" in again.err
    unknown = as_root("admin", "drain", "gpu-9")
    assert unknown.code == 1
    assert "No host is registered as 'gpu-9'" in unknown.err


def test_admin_queue_lists_the_order_and_the_jobs_outside_it(as_root: Ferry, alice: User) -> None:
    project = ProjectFactory.create(name="mnist", owner_user=alice)
    _lower, second, stray = (
        JobFactory.create(project=project, number=n, created_by=alice, **fields)
        for n, fields in (
            (1, {"priority": -3, "replicas": 2}),
            (2, {}),
            (3, {"machine_type": machine_type("gpu8", gpus=8)}),
        )
    )
    queue_publish(
        QueueState(
            {
                group_key(second): Waiting(
                    "waiting for capacity: all hosts that fit it are busy", fits_nowhere=False
                ),
                group_key(stray): Waiting("no host has 8 GPUs", fits_nowhere=True),
            }
        )
    )

    result = as_root("admin", "queue")

    assert result.code == 0, result
    assert result.out.splitlines() == [
        "POSITION  JOB            USER   PRIORITY  MACHINE  REASON",
        "1         alice/mnist/2  alice  0         cpu      waiting for capacity: all hosts that "
        "fit it are busy",
        "2         alice/mnist/1  alice  -3        cpu x2   -",
        "-         alice/mnist/3  alice  0         gpu8     no host has 8 GPUs",
    ]
    rows = json.loads(as_root("admin", "queue", "--json").out)
    assert [(row["position"], row["job"]) for row in rows] == [
        (1, "alice/mnist/2"), (2, "alice/mnist/1"), (None, "alice/mnist/3"),
    ]  # fmt: skip
    assert str(stray) == "alice/mnist/3"


def test_admin_quotas_are_set_changed_listed_and_cleared(as_root: Ferry, alice: User) -> None:
    TeamFactory.create(name="vision")

    set_ = as_root("admin", "quota", "user", "alice", "--gpus", "4", "--share", "2")
    assert set_.code == 0, set_
    assert set_.out.strip() == ("User alice: at most 4 GPUs, any number of jobs at once; share 2")
    # Options left out keep their values.
    jobs = as_root("admin", "quota", "user", "alice", "--jobs", "3")
    assert jobs.out.strip() == "User alice: at most 4 GPUs, at most 3 jobs at once; share 2"
    unlimited = as_root("admin", "quota", "user", "alice", "--gpus", "none")
    assert (
        unlimited.out.strip() == "User alice: any number of GPUs, at most 3 jobs at once; share 2"
    )
    team = as_root("admin", "quota", "team", "vision", "--gpus", "8")
    assert team.out.strip() == "Team vision: at most 8 GPUs, any number of jobs at once"
    shown = json.loads(as_root("admin", "quota", "team", "vision", "--json").out)
    assert (shown["max_gpus"], shown["share"]) == (8, None)

    listed = as_root("admin", "quotas")
    assert listed.out.splitlines() == [
        "KIND  NAME    GPUS      JOBS      SHARE",
        "user  alice   no limit  3         2",
        "team  vision  8         no limit  -",
    ]

    cleared = as_root("admin", "quota", "user", "alice", "--clear")
    assert cleared.code == 0, cleared
    assert cleared.out.strip() == "Removed the quota of user alice: no limits, share 1"
    assert list(Quota.objects.values_list("team__name", flat=True)) == ["vision"]
    shown_after = as_root("admin", "quota", "user", "alice")
    assert shown_after.out.strip() == (
        "User alice: any number of GPUs, any number of jobs at once; share 1"
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["user", "alice", "--gpus", "-1"], "give 0 or more, or 'none'"),
        (["user", "alice", "--jobs", "lots"], "give a whole number, or 'none'"),
        (["user", "alice", "--share", "0"], "--share"),
        (["user", "alice", "--clear", "--gpus", "2"], "--clear removes the whole quota"),
        (["team", "vision", "--share", "2"], "A team has no share"),
        (["user", "nobody", "--gpus", "2"], "No user named 'nobody'"),
        (["team", "nobody", "--gpus", "2"], "No team named 'nobody'"),
    ],
)
def test_bad_quota_commands_say_what_is_wrong_and_change_nothing(
    as_root: Ferry, alice: User, argv: list[str], words: str
) -> None:
    TeamFactory.create(name="vision")
    Quota.objects.create(user=alice, max_gpus=1)

    result = as_root("admin", "quota", *argv)

    assert result.code != 0, result
    assert words in result.err, result.err
    assert list(Quota.objects.values_list("user__username", "max_gpus", "share")) == [
        ("alice", 1, 1.0)
    ]


def test_admin_commands_are_refused_for_everyone_else(logged_in: Ferry) -> None:
    host_register("gpu-1", Inventory(cpus=16, memory_mb=65536))

    for argv in (["hosts"], ["queue"], ["quotas"], ["drain", "gpu-1"]):
        result = logged_in("admin", *argv)
        assert result.code == 1, result
        assert "Only site admins may" in result.err
    assert Host.objects.get().state == HostState.ONLINE


def test_run_with_priority_and_retries_shows_its_place(logged_in: Ferry, workdir: Path) -> None:
    (workdir / "train.py").write_text("print(1)\n")
    assert logged_in("init", "alice/mnist").code == 0

    ran = logged_in("run", "--priority", "-5", "--retries", "2", "--json", "python3 train.py")

    assert ran.code == 0, ran
    submitted = json.loads(ran.out)
    assert (submitted["priority"], submitted["max_retries"]) == (-5, 2)
    info = json.loads(logged_in("info", "1").out)
    assert (info["queue_position"], info["queue_length"], info["attempt"]) == (1, 1, 1)
    assert "(position 1 of 1)" in logged_in("status").out
    raised = logged_in("run", "--priority", "5", "python3 train.py")
    assert raised.code == 1
    assert "priority 0 or lower" in raised.err
    assert Job.objects.count() == 1
    restarted = logged_in("restart", "--priority", "0", "1")
    assert restarted.code == 0, restarted
    assert Job.objects.get(number=2).priority == 0
