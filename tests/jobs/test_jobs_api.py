"""Submitting, reading and stopping jobs through the API; every bad request changes nothing."""

import secrets
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.ownership import Visibility
from accounts.roles import Role
from blobs.models import Tree
from datasets.models import Dataset
from fleet.queue import QueueState, Waiting, group_key, queue_publish
from jobs.models import Job, JobEvent, JobStatus
from jobs.status import job_transition
from projects.models import Project
from tests.blobs.test_upload_api import upload
from tests.conftest import client_for
from tests.factories import ProjectFactory, ProjectMemberFactory, UserFactory
from tests.support.api_errors import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("configured_storage")]

JOBS = "/api/v1/projects/alice/mnist/jobs"


@pytest.fixture
def alice() -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def project(alice: User) -> Project:
    return ProjectFactory.create(name="mnist", owner_user=alice)


@pytest.fixture
def api(alice: User, project: Project) -> APIClient:
    return client_for(alice)


def submit(api: APIClient, body: dict[str, Any], **headers: str) -> Any:
    return api.post(JOBS, body, format="json", headers=headers)


def dataset_with_version(api: APIClient, name: str = "mnist") -> str:
    assert api.post("/api/v1/datasets", {"name": name}, format="json").status_code == 201
    tree = upload(api, {"train.csv": secrets.token_bytes(100)})
    response = api.post(f"/api/v1/datasets/alice/{name}/versions", {"tree": tree["digest"]}, "json")
    assert response.status_code == 201, response.json()
    return str(tree["digest"])


def test_a_submitted_job_is_queued_with_the_defaults(api: APIClient) -> None:
    response = submit(api, {"command": "python train.py", "message": "first"})

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["number"], body["name"], body["status"]) == (1, "alice/mnist/1", "queued")
    assert (body["environment"], body["machine"], body["code"]) == ("python-3.11", "cpu", None)
    assert submit(api, {"command": "true"}).json()["number"] == 2
    events = api.get(f"{JOBS}/1/events").json()["results"]
    assert [(e["from_status"], e["to_status"]) for e in events] == [("", "queued")]


def test_code_and_inputs_are_fixed_at_submit(api: APIClient) -> None:
    dataset_tree = dataset_with_version(api)
    code = upload(api, {"train.py": b"print('hi')\n"})

    response = submit(
        api,
        {
            "command": "python train.py",
            "code": code["digest"],
            "inputs": [
                {"source": "alice/datasets/mnist"},
                {"source": "alice/datasets/mnist/1", "mount": "v1"},
            ],
            "params": {"lr": 0.1, "epochs": 3},
            "machine": "gpu",
            "environment": "pytorch-2.5",
        },
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["code"] == code["digest"]
    assert body["inputs"] == [
        {
            "name": "mnist",
            "kind": "dataset",
            "source": "alice/datasets/mnist/1",
            "tree": dataset_tree,
        },
        {"name": "v1", "kind": "dataset", "source": "alice/datasets/mnist/1", "tree": dataset_tree},
    ]
    assert body["params"] == {"lr": 0.1, "epochs": 3}


def test_a_job_output_mounts_once_it_exists(api: APIClient) -> None:
    submit(api, {"command": "true"})
    early = submit(api, {"command": "ls", "inputs": [{"source": "alice/projects/mnist/1/output"}]})
    assert_error(early, 400, "invalid_input")
    assert "has no output yet" in early.json()["error"]["message"]

    output = upload(api, {"model.pt": b"weights"})
    job = Job.objects.get(number=1)
    for status in (JobStatus.SCHEDULED, JobStatus.STARTING, JobStatus.RUNNING):
        assert job_transition(job.id, status)
    assert job_transition(
        job.id,
        JobStatus.SUCCEEDED,
        exit_code=0,
        output_tree=Tree.objects.get(digest=output["digest"]),
    )
    later = submit(
        api, {"command": "ls", "inputs": [{"source": "alice/projects/mnist/1", "mount": "prev"}]}
    )

    assert later.status_code == 202, later.json()
    assert later.json()["inputs"][0]["source"] == "alice/mnist/1/output"


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"command": "  "}, "empty_command", "Give a command"),
        (
            {"command": "x", "environment": "nope"},
            "unknown_environment",
            "python-3.11, pytorch-2.13, pytorch-2.5",
        ),
        ({"command": "x", "machine": "tpu"}, "unknown_machine", "cpu, cpu2, gpu, gpu2"),
        (
            {"command": "x", "inputs": [{"source": "alice/datasets/ghost"}]},
            "invalid_input",
            "No dataset",
        ),
        (
            {"command": "x", "inputs": [{"source": "alice/datasets/mnist/7"}]},
            "invalid_input",
            "no version 7",
        ),
        ({"command": "x", "inputs": [{"source": "mnist"}]}, "invalid_input", "OWNER/datasets/NAME"),
        (
            {"command": "x", "inputs": [{"source": "alice/projects/mnist/9"}]},
            "invalid_input",
            "no job 9",
        ),
        (
            {
                "command": "x",
                "inputs": [
                    {"source": "alice/datasets/mnist"},
                    {"source": "alice/datasets/mnist/1", "mount": "mnist"},
                ],
            },
            "duplicate_mount",
            "'mnist'",
        ),
        (
            {"command": "x", "inputs": [{"source": "alice/datasets/mnist", "mount": "../etc"}]},
            "invalid_input",
            "mount name",
        ),
        ({"command": "x", "code": "a" * 64}, "unknown_tree", "upload the files"),
        ({"command": "x", "params": {"lr": [1, 2]}}, "invalid", "parameters"),
        ({"command": "x", "max_runtime_s": 0}, "invalid", ""),
        ({"command": "x", "priority": -101}, "invalid", "priority"),
        ({"command": "x", "priority": 101}, "invalid", "priority"),
        ({"command": "x", "priority": "high"}, "invalid", "priority"),
        ({"command": "x", "max_retries": -1}, "invalid", "max_retries"),
        ({"command": "x", "max_retries": 11}, "invalid", "max_retries"),
        ({"command": "x", "max_retries": 1.5}, "invalid", "max_retries"),
        ({"command": "x", "surprise": 1}, "invalid", ""),
    ],
)
def test_bad_submits_are_refused_and_make_nothing(
    api: APIClient, body: dict[str, Any], code: str, words: str
) -> None:
    dataset_with_version(api)

    response = submit(api, body)

    error = assert_error(response, 400, code)
    assert words in error["message"] + str(error["fields"]), error
    assert not Job.objects.exists()


def test_too_many_inputs_are_refused(api: APIClient, settings: Settings) -> None:
    dataset_with_version(api)
    settings.FERRY_MAX_JOB_INPUTS = 2
    inputs = [{"source": "alice/datasets/mnist", "mount": f"m{i}"} for i in range(3)]

    error = assert_error(submit(api, {"command": "x", "inputs": inputs}), 400, "too_many_inputs")

    assert "at most 2" in error["message"]
    assert not Job.objects.exists()


def test_code_over_the_limit_says_what_to_do(api: APIClient, settings: Settings) -> None:
    code = upload(api, {"train.py": b"x" * 1000})
    settings.FERRY_MAX_CODE_BYTES = 999

    error = assert_error(
        submit(api, {"command": "x", "code": code["digest"]}), 400, "code_too_large"
    )

    assert ".ferryignore" in error["message"]
    assert not Job.objects.exists()


def test_a_retried_submit_with_the_same_key_makes_one_job(api: APIClient) -> None:
    first = submit(api, {"command": "true"}, **{"Idempotency-Key": "abc"})
    again = submit(api, {"command": "true"}, **{"Idempotency-Key": "abc"})

    assert first.status_code == again.status_code == 202
    assert first.json()["number"] == again.json()["number"] == 1
    assert Job.objects.count() == 1


def test_who_may_submit_and_see(alice: User, project: Project) -> None:
    viewer, outsider = UserFactory.create(), UserFactory.create()
    ProjectMemberFactory.create(project=project, user=viewer, role=Role.VIEWER)
    submit(client_for(alice), {"command": "true"})

    assert_error(submit(client_for(viewer), {"command": "true"}), 403, "permission_denied")
    assert client_for(viewer).get(f"{JOBS}/1").status_code == 200
    assert_error(submit(client_for(outsider), {"command": "true"}), 404, "not_found")
    assert_error(client_for(outsider).get(f"{JOBS}/1"), 404, "not_found")
    assert_error(
        client_for(None).post(JOBS, {"command": "true"}, format="json"), 401, "not_authenticated"
    )
    assert Job.objects.count() == 1


def test_a_queued_job_stops_at_once_and_a_finished_one_cannot_stop(api: APIClient) -> None:
    submit(api, {"command": "sleep 100"})

    stopped = api.post(f"{JOBS}/1/stop")
    again = api.post(f"{JOBS}/1/stop")

    assert stopped.status_code == 202
    assert stopped.json()["status"] == "stopped"
    error = assert_error(again, 409, "job_finished")
    assert "already finished (stopped)" in error["message"]
    assert JobEvent.objects.filter(job__number=1).count() == 2


def test_a_running_job_is_asked_to_stop(api: APIClient) -> None:
    submit(api, {"command": "sleep 100"})
    job = Job.objects.get()
    for status in (JobStatus.SCHEDULED, JobStatus.STARTING, JobStatus.RUNNING):
        assert job_transition(job.id, status)

    response = api.post(f"{JOBS}/1/stop")

    assert response.json()["status"] == "stopping"
    assert api.post(f"{JOBS}/1/stop").json()["status"] == "stopping"  # twice is harmless


def test_environments_and_machine_types_are_listed(api: APIClient) -> None:
    machines = api.get("/api/v1/machine-types").json()["results"]
    environments = api.get("/api/v1/environments").json()["results"]

    assert [m["name"] for m in machines] == ["cpu", "cpu2", "gpu", "gpu2"]
    assert {e["name"] for e in environments} >= {"python-3.11", "pytorch-2.5"}


def test_a_restart_reuses_code_and_inputs_with_changes(api: APIClient, project: Project) -> None:
    dataset_with_version(api)
    code = upload(api, {"train.py": b"print(1)\n"})
    submit(
        api,
        {"command": "python train.py", "code": code["digest"], "params": {"lr": 1, "epochs": 2},
         "inputs": [{"source": "alice/datasets/mnist", "mount": "data"}]},
    )  # fmt: skip
    member = UserFactory.create()  # holds none of the code's blobs, and may read the data
    ProjectMemberFactory.create(project=project, user=member, role=Role.MEMBER)
    Dataset.objects.update(visibility=Visibility.PUBLIC)

    response = client_for(member).post(
        f"{JOBS}/1/restart", {"machine": "cpu2", "params": {"lr": 0.5}}, format="json"
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["number"], body["machine"], body["code"]) == (2, "cpu2", code["digest"])
    assert body["params"] == {"lr": 0.5, "epochs": 2}
    assert [(i["name"], i["source"]) for i in body["inputs"]] == [
        ("data", "alice/datasets/mnist/1")
    ]
    assert Job.objects.get(number=2).restart_of == Job.objects.get(number=1)
    assert_error(
        api.post(f"{JOBS}/1/restart", {"machine": "tpu"}, format="json"), 400, "unknown_machine"
    )


def test_a_jobs_code_is_listed_and_its_missing_output_named(api: APIClient) -> None:
    code = upload(api, {"train.py": b"print(1)\n", "lib/util.py": b""})
    submit(api, {"command": "python train.py", "code": code["digest"]})

    listed = api.get(f"{JOBS}/1/code/manifest").json()["results"]
    missing = api.get(f"{JOBS}/1/output/manifest")
    one = api.get(f"{JOBS}/1/code/files/train.py")

    assert [row["path"] for row in listed] == ["lib/util.py", "train.py"]
    assert "has no output yet (queued)" in assert_error(missing, 404, "not_found")["message"]
    assert one.status_code in (200, 302)


# --- scheduling: priority, retries, the place in the queue --------------------------------------


def test_priority_and_retries_are_kept_and_a_restart_keeps_them(api: APIClient) -> None:
    response = submit(api, {"command": "true", "priority": -20, "max_retries": 3})

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["priority"], body["max_retries"], body["replicas"], body["attempt"]) == (
        -20, 3, 1, 1,
    )  # fmt: skip
    job = Job.objects.get(number=1)
    assert (job.priority, job.max_retries) == (-20, 3)
    restarted = api.post(f"{JOBS}/1/restart", {}, format="json").json()
    assert (restarted["priority"], restarted["max_retries"]) == (-20, 3)
    changed = api.post(f"{JOBS}/1/restart", {"priority": 0, "max_retries": 0}, format="json")
    assert (changed.json()["priority"], changed.json()["max_retries"]) == (0, 0)


def test_a_job_submitted_without_them_has_priority_0_and_no_retries(api: APIClient) -> None:
    body = submit(api, {"command": "true"}).json()

    assert (body["priority"], body["max_retries"], body["attempt"]) == (0, 0, 1)


def test_a_site_admin_may_raise_a_priority(project: Project) -> None:
    root = UserFactory.create(username="root", is_superuser=True)

    response = submit(client_for(root), {"command": "true", "priority": 100})

    assert response.status_code == 202, response.json()
    assert Job.objects.get().priority == 100


def test_a_priority_above_0_is_only_for_site_admins(api: APIClient) -> None:
    error = assert_error(
        submit(api, {"command": "true", "priority": 1}), 403, "priority_not_allowed"
    )

    assert "Only site admins" in error["message"]
    assert "priority 0 or lower" in error["message"]
    assert "priority" in error["fields"]
    assert not Job.objects.exists()
    assert not JobEvent.objects.exists()


def test_restarting_a_raised_job_asks_a_member_to_lower_it(api: APIClient) -> None:
    submit(api, {"command": "true"})
    Job.objects.update(priority=50)  # raised by a site admin

    refused = api.post(f"{JOBS}/1/restart", {}, format="json")

    assert_error(refused, 403, "priority_not_allowed")
    assert Job.objects.count() == 1
    lowered = api.post(f"{JOBS}/1/restart", {"priority": 0}, format="json")
    assert lowered.status_code == 202, lowered.json()
    assert lowered.json()["priority"] == 0


def test_a_queued_job_says_why_it_waits_and_where_it_stands(api: APIClient) -> None:
    for priority in (0, 0, -1):
        submit(api, {"command": "true", "priority": priority})
    first, second, _third = Job.objects.order_by("number")
    assert job_transition(second.id, JobStatus.SCHEDULED, reason="placed on gpu-1")
    # What the scheduler's last pass said of the first one's group (the third has its own).
    queue_publish(QueueState({group_key(first): Waiting("waiting: no host with cpu free", False)}))

    one = api.get(f"{JOBS}/1").json()
    two = api.get(f"{JOBS}/2").json()
    three = api.get(f"{JOBS}/3").json()

    assert (one["queue_position"], one["queue_length"]) == (1, 2)
    assert one["status_reason"] == "waiting: no host with cpu free; position 1 of 2"
    assert (two["queue_position"], two["queue_length"]) == (None, None)
    assert two["status_reason"] == "placed on gpu-1"
    # Lower priority: behind the older one. Its group was not seen by the pass: its own reason.
    assert (three["queue_position"], three["status_reason"]) == (2, "position 2 of 2")


def test_a_queued_job_no_host_can_run_has_no_position(api: APIClient) -> None:
    submit(api, {"command": "true"})
    job = Job.objects.get()
    queue_publish(QueueState({group_key(job): Waiting("no host is registered", True)}))

    body = api.get(f"{JOBS}/1").json()

    assert (body["queue_position"], body["queue_length"]) == (None, None)
    assert body["status_reason"] == "no host is registered"


def test_a_list_of_jobs_reads_the_queue_once(api: APIClient) -> None:
    for _ in range(4):
        submit(api, {"command": "true"})
    job = Job.objects.get(number=1)
    queue_publish(QueueState({group_key(job): Waiting("waiting: no host with cpu free", False)}))

    with CaptureQueriesContext(connection) as captured:
        rows = api.get(JOBS).json()["results"]

    assert [(row["number"], row["queue_position"]) for row in rows] == [
        (4, 4), (3, 3), (2, 2), (1, 1),
    ]  # fmt: skip
    snapshot_reads = [q for q in captured if "fleet_queuesnapshot" in q["sql"]]
    order_reads = [q for q in captured if '"jobs_job"."priority" DESC' in q["sql"]]
    assert (len(snapshot_reads), len(order_reads)) == (1, 1)
