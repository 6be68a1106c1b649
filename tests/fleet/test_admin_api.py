"""Site admins see every host and the queue, drain hosts and set quotas; everyone else is
refused, and every refused request changes nothing."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from accounts.models import Team, User
from fleet.models import Allocation, Host, HostState, Quota
from fleet.queue import QueueState, Waiting, group_key, queue_publish
from jobs.models import Job, JobStatus
from tests.conftest import client_for
from tests.factories import ProjectFactory, TeamFactory, UserFactory
from tests.fleet.conftest import SentTask
from tests.fleet.factories import HostFactory, JobFactory, gpus, machine_type
from tests.support.api_errors import assert_error

pytestmark = pytest.mark.django_db

Capture = DjangoCaptureOnCommitCallbacks
WAKE = SentTask("fleet.schedule")
ADMIN = "/api/v1/admin"


@pytest.fixture
def root() -> User:
    return UserFactory.create(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def admin_api(root: User) -> APIClient:
    return client_for(root)


@pytest.fixture
def alice() -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def alice_api(alice: User) -> APIClient:
    return client_for(alice)


@pytest.fixture
def team() -> Team:
    return TeamFactory.create(name="vision")


def fleet_state() -> dict[str, list[Any]]:
    """What the admin API may change: hosts' states, quotas, and the jobs."""
    return {
        "hosts": list(Host.objects.order_by("name").values_list("name", "state")),
        "quotas": list(
            Quota.objects.order_by("id").values_list(
                "user_id", "team_id", "max_gpus", "max_jobs", "share", "updated_at"
            )
        ),
        "jobs": list(Job.objects.order_by("id").values_list("id", "status", "priority")),
    }


def queued_job(owner: User, number: int, **fields: Any) -> Job:
    project = ProjectFactory.create(name=f"p{number}", owner_user=owner)
    job: Job = JobFactory.create(project=project, number=number, created_by=owner, **fields)
    return job


# --- hosts -------------------------------------------------------------------------------------


def test_an_admin_sees_what_each_host_holds_and_what_is_free(
    admin_api: APIClient, alice: User
) -> None:
    big = HostFactory.create(
        name="gpu-1", cpus=16, memory_mb=65536, gpus=gpus(4), labels={"zone": "eu"}
    )
    HostFactory.create(name="cpu-1", cpus=4, memory_mb=8192, state=HostState.DRAINING)
    job = queued_job(alice, 1, replicas=2, status=JobStatus.RUNNING)
    Allocation.objects.create(
        job=job, replica=0, host=big, cpus=4, memory_mb=16384, gpu_indices=[0]
    )
    Allocation.objects.create(
        job=job, replica=1, host=big, cpus=4, memory_mb=16384, gpu_indices=[2]
    )
    done = queued_job(alice, 2, status=JobStatus.SUCCEEDED)
    Allocation.objects.create(
        job=done, host=big, cpus=8, memory_mb=1, gpu_indices=[1], released_at=timezone.now()
    )

    response = admin_api.get(f"{ADMIN}/hosts")

    assert response.status_code == 200, response.json()
    rows = response.json()["results"]
    assert [(row["name"], row["state"]) for row in rows] == [
        ("cpu-1", "draining"),
        ("gpu-1", "online"),
    ]
    gpu_host = rows[1]
    assert (gpu_host["executor"], gpu_host["cpus"], gpu_host["memory_mb"]) == ("local", 16, 65536)
    assert gpu_host["labels"] == {"zone": "eu"}
    assert [gpu["index"] for gpu in gpu_host["gpus"]] == [0, 1, 2, 3]
    assert gpu_host["heartbeat_at"]
    assert gpu_host["allocations"] == [
        {"job": "alice/p1/1", "replica": 0, "gpu_indices": [0], "cpus": 4, "memory_mb": 16384},
        {"job": "alice/p1/1", "replica": 1, "gpu_indices": [2], "cpus": 4, "memory_mb": 16384},
    ]
    # The released allocation holds nothing any more.
    assert gpu_host["free"] == {"cpus": 8, "memory_mb": 32768, "gpu_indices": [1, 3]}
    assert rows[0]["allocations"] == []
    assert rows[0]["free"] == {"cpus": 4, "memory_mb": 8192, "gpu_indices": []}


def test_the_host_list_reads_the_same_few_queries_however_many_jobs_run(
    admin_api: APIClient, alice: User
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_api.get(f"{ADMIN}/hosts").status_code == 200
        return len(captured)

    host = HostFactory.create()
    Allocation.objects.create(job=queued_job(alice, 1), host=host, cpus=1, memory_mb=1)
    queries()  # the token's first use is stamped on it: a write the later requests skip
    one = queries()
    for number in range(2, 6):
        other = HostFactory.create()
        Allocation.objects.create(job=queued_job(alice, number), host=other, cpus=1, memory_mb=1)

    assert queries() == one


def test_drain_takes_an_online_host_out_and_undrain_brings_it_back(
    admin_api: APIClient, sent: list[SentTask], django_capture_on_commit_callbacks: Capture
) -> None:
    HostFactory.create(name="gpu-1")

    with django_capture_on_commit_callbacks(execute=True):
        drained = admin_api.post(f"{ADMIN}/hosts/gpu-1/drain")
    assert drained.status_code == 200, drained.json()
    assert drained.json()["state"] == "draining"
    assert Host.objects.get(name="gpu-1").state == HostState.DRAINING
    assert sent == []  # nothing can be placed because of a drain

    with django_capture_on_commit_callbacks(execute=True):
        undrained = admin_api.post(f"{ADMIN}/hosts/gpu-1/undrain")
    assert undrained.status_code == 200, undrained.json()
    assert undrained.json()["state"] == "online"
    assert Host.objects.get(name="gpu-1").state == HostState.ONLINE
    assert sent == [WAKE]  # its capacity may fit what waits


def test_draining_an_unknown_host_is_404(admin_api: APIClient) -> None:
    HostFactory.create(name="gpu-1")
    before = fleet_state()

    error = assert_error(admin_api.post(f"{ADMIN}/hosts/gpu-9/drain"), 404, "host_not_found")

    assert "'gpu-9'" in error["message"]
    assert fleet_state() == before


def test_undraining_an_unknown_host_is_404(admin_api: APIClient) -> None:
    before = fleet_state()

    assert_error(admin_api.post(f"{ADMIN}/hosts/gpu-9/undrain"), 404, "host_not_found")

    assert fleet_state() == before


@pytest.mark.parametrize("state", [HostState.ONLINE, HostState.OFFLINE])
def test_undraining_a_host_that_is_not_draining_says_its_state(
    admin_api: APIClient, state: HostState
) -> None:
    HostFactory.create(name="gpu-1", state=state)
    before = fleet_state()

    error = assert_error(admin_api.post(f"{ADMIN}/hosts/gpu-1/undrain"), 409, "host_not_draining")

    assert f"gpu-1 is {state.value}, not draining" in error["message"]
    assert fleet_state() == before


@pytest.mark.parametrize("state", [HostState.DRAINING, HostState.OFFLINE])
def test_draining_a_host_that_is_not_online_says_its_state(
    admin_api: APIClient, state: HostState
) -> None:
    HostFactory.create(name="gpu-1", state=state)
    before = fleet_state()

    error = assert_error(admin_api.post(f"{ADMIN}/hosts/gpu-1/drain"), 409, "host_not_online")

    assert f"gpu-1 is {state.value}; only an online host can be drained" in error["message"]
    assert fleet_state() == before


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_is_the_order_the_next_pass_takes_then_the_jobs_no_host_can_run(
    admin_api: APIClient, alice: User
) -> None:
    bob = UserFactory.create(username="bob")
    first = queued_job(alice, 1)
    bobs = queued_job(bob, 2)
    urgent = queued_job(alice, 3, priority=5, status_reason="submitted")
    never = queued_job(bob, 4, machine_type=machine_type("gpu2", gpus=2), replicas=2)
    queued_job(bob, 5, status=JobStatus.RUNNING)
    # Alice holds more than bob: after the urgent job, bob's goes before her older one.
    queue_publish(
        QueueState(
            {
                group_key(first): Waiting("waiting: no host with cpu free", fits_nowhere=False),
                group_key(never): Waiting("no host has 2 GPUs; the largest has 0", True),
            },
            standing={alice.id: (4.0, 4.0), bob.id: (0.0, 0.0)},
        )
    )

    response = admin_api.get(f"{ADMIN}/queue")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 4
    rows = body["results"]
    assert [(row["position"], row["job"], row["status_reason"]) for row in rows] == [
        (1, str(urgent), "submitted"),
        (2, str(bobs), ""),
        (3, str(first), "waiting: no host with cpu free"),
        (None, str(never), "no host has 2 GPUs; the largest has 0"),
    ]
    assert rows[3] == {
        "position": None,
        "job": "bob/p4/4",
        "created_by": "bob",
        "priority": 0,
        "machine": "gpu2",
        "replicas": 2,
        "attempt": 1,
        "status_reason": "no host has 2 GPUs; the largest has 0",
        "created_at": rows[3]["created_at"],
    }


def test_the_queue_reads_only_the_rows_of_its_page(admin_api: APIClient, alice: User) -> None:
    jobs = [queued_job(alice, number) for number in range(1, 6)]

    with CaptureQueriesContext(connection) as captured:
        page = admin_api.get(f"{ADMIN}/queue", {"page_size": 2, "page": 2}).json()

    assert page["count"] == 5
    assert [(row["position"], row["job"]) for row in page["results"]] == [
        (3, str(jobs[2])),
        (4, str(jobs[3])),
    ]
    # The order is ids; whole rows (with the command) are read for the page's two jobs only.
    [rows_read] = [q["sql"] for q in captured if '"jobs_job"."command"' in q["sql"]]
    [ids] = re.findall(r'"jobs_job"\."id" IN \(([^)]*)\)', rows_read)
    assert sorted(int(i) for i in ids.split(",")) == sorted([jobs[2].id, jobs[3].id])


def test_an_empty_queue_is_an_empty_list(admin_api: APIClient) -> None:
    assert admin_api.get(f"{ADMIN}/queue").json()["results"] == []


# --- quotas -------------------------------------------------------------------------------------


def test_an_admin_sets_reads_and_removes_a_user_quota(
    admin_api: APIClient,
    alice: User,
    sent: list[SentTask],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    path = f"{ADMIN}/quotas/users/alice"
    unset = admin_api.get(path).json()
    assert unset == {
        "kind": "user", "name": "alice", "max_gpus": None, "max_jobs": None, "share": 1.0,
        "updated_at": None,
    }  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.put(path, {"max_gpus": 4, "max_jobs": None, "share": 2.5}, "json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["kind"], body["name"], body["max_gpus"], body["max_jobs"], body["share"]) == (
        "user", "alice", 4, None, 2.5,
    )  # fmt: skip
    assert body["updated_at"]
    quota = Quota.objects.get(user=alice)
    assert (quota.max_gpus, quota.max_jobs, quota.share, quota.team) == (4, None, 2.5, None)
    assert sent == [WAKE]  # a raised limit may let waiting jobs run
    assert admin_api.get(path).json() == body

    with django_capture_on_commit_callbacks(execute=True):
        removed = admin_api.delete(path)
    assert removed.status_code == 204
    assert not Quota.objects.exists()
    assert sent == [WAKE, WAKE]
    assert admin_api.delete(path).status_code == 204  # twice is harmless


def test_a_put_replaces_the_whole_quota(admin_api: APIClient, alice: User) -> None:
    Quota.objects.create(user=alice, max_gpus=4, max_jobs=2, share=3)

    response = admin_api.put(f"{ADMIN}/quotas/users/ALICE", {"max_jobs": 5}, "json")

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "alice"
    quota = Quota.objects.get(user=alice)
    assert (quota.max_gpus, quota.max_jobs, quota.share) == (None, 5, 1.0)
    assert Quota.objects.count() == 1


def test_an_admin_sets_a_team_quota(admin_api: APIClient, team: Team) -> None:
    response = admin_api.put(f"{ADMIN}/quotas/teams/vision", {"max_gpus": 8}, "json")

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "kind": "team", "name": "vision", "max_gpus": 8, "max_jobs": None, "share": None,
        "updated_at": response.json()["updated_at"],
    }  # fmt: skip
    assert Quota.objects.get(team=team).max_gpus == 8
    assert admin_api.delete(f"{ADMIN}/quotas/teams/vision").status_code == 204
    assert not Quota.objects.exists()


def test_quotas_are_listed_users_first_then_teams(admin_api: APIClient, team: Team) -> None:
    zed, amy = UserFactory.create(username="zed"), UserFactory.create(username="amy")
    Quota.objects.create(team=team, max_jobs=3)
    Quota.objects.create(user=zed, max_gpus=1)
    Quota.objects.create(user=amy, share=2)

    rows = admin_api.get(f"{ADMIN}/quotas").json()["results"]

    assert [(r["kind"], r["name"], r["max_gpus"], r["max_jobs"], r["share"]) for r in rows] == [
        ("user", "amy", None, None, 2.0),
        ("user", "zed", 1, None, 1.0),
        ("team", "vision", None, 3, None),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "quotas/users/nobody"),
        ("get", "quotas/users/nobody"),
        ("delete", "quotas/users/nobody"),
        ("put", "quotas/teams/nobody"),
        ("delete", "quotas/teams/nobody"),
    ],
)
def test_a_quota_of_an_unknown_user_or_team_is_404(
    admin_api: APIClient, method: str, path: str
) -> None:
    before = fleet_state()

    response = getattr(admin_api, method)(f"{ADMIN}/{path}", {"max_gpus": 1}, "json")

    error = assert_error(response, 404, "not_found")
    assert "'nobody'" in error["message"]
    assert fleet_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_gpus": -1}, "max_gpus"),
        ({"max_jobs": -3}, "max_jobs"),
        ({"max_gpus": 1.5}, "max_gpus"),
        ({"max_gpus": "many"}, "max_gpus"),
        ({"max_jobs": True}, "max_jobs"),
        ({"max_gpus": 2**31}, "max_gpus"),
        ({"share": 0}, "share"),
        ({"share": -1}, "share"),
        ({"share": "big"}, "share"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_numbers_are_refused(
    admin_api: APIClient, alice: User, body: dict[str, Any], field: str
) -> None:
    Quota.objects.create(user=alice, max_gpus=2)
    before = fleet_state()

    response = admin_api.put(f"{ADMIN}/quotas/users/alice", body, "json")

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert field in error["fields"], error
    assert fleet_state() == before


def test_a_team_has_no_share(admin_api: APIClient, team: Team) -> None:
    before = fleet_state()

    response = admin_api.put(f"{ADMIN}/quotas/teams/vision", {"max_gpus": 2, "share": 2}, "json")

    error = assert_error(response, 400, "team_share")
    assert "A team has no share" in error["message"]
    assert "share" in error["fields"]
    assert fleet_state() == before


# --- who may ------------------------------------------------------------------------------------

ADMIN_REQUESTS = [
    ("get", "hosts", None),
    ("post", "hosts/gpu-1/drain", None),
    ("post", "hosts/gpu-1/undrain", None),
    ("post", "hosts/gpu-9/drain", None),  # an unknown host: the refusal names no host
    ("get", "queue", None),
    ("get", "quotas", None),
    ("get", "quotas/users/alice", None),
    ("put", "quotas/users/alice", {"max_gpus": 100}),
    ("delete", "quotas/users/alice", None),
    ("put", "quotas/teams/vision", {"max_gpus": 100}),
    ("delete", "quotas/teams/vision", None),
]


@pytest.fixture
def fleet(alice: User, team: Team) -> None:
    """A draining host, quotas on alice and her team, and a queued job of hers."""
    HostFactory.create(name="gpu-1", state=HostState.DRAINING)
    Quota.objects.create(user=alice, max_gpus=1)
    Quota.objects.create(team=team, max_gpus=1)
    queued_job(alice, 1)


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_REQUESTS)
def test_only_site_admins_may_use_the_admin_api(
    alice_api: APIClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = fleet_state()

    response = getattr(alice_api, method)(f"{ADMIN}/{path}", body, "json")

    error = assert_error(response, 403, "permission_denied")
    assert error["message"].startswith("Only site admins may")
    assert fleet_state() == before


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_REQUESTS)
def test_the_admin_api_wants_a_login(
    api_client: APIClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = fleet_state()

    response = getattr(api_client, method)(f"{ADMIN}/{path}", body, "json")

    assert_error(response, 401, "not_authenticated")
    assert fleet_state() == before


def test_a_quota_written_twice_stays_one_row(admin_api: APIClient, alice: User) -> None:
    for gpus_wanted in (1, 2):
        admin_api.put(f"{ADMIN}/quotas/users/alice", {"max_gpus": gpus_wanted}, "json")

    assert list(Quota.objects.values_list("max_gpus", flat=True)) == [2]
    assert Quota.objects.get().updated_at > timezone.now() - timedelta(minutes=1)
