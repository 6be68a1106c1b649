"""Comparing jobs of a project: params, the latest of each metric, each metric downsampled."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from accounts.services import api_token_for_job
from jobs.models import Job, JobStatus
from projects.models import Project
from tests.conftest import client_for
from tests.factories import ProjectFactory, ProjectMemberFactory, UserFactory
from tests.fleet.factories import JobFactory
from tracking.parsing import MetricPoint
from tracking.serializers import MAX_COMPARED_JOBS
from tracking.services import metrics_record, params_record

pytestmark = pytest.mark.django_db


def make_job(project: Project, number: int, status: JobStatus = JobStatus.SUCCEEDED) -> Job:
    job: Job = JobFactory.create(
        project=project, number=number, status=status, created_by=project.owner_user
    )
    return job


def compare(client: APIClient, project: Project, **query: Any) -> Any:
    return client.get(f"/api/v1/projects/{project.full_name}/compare", query)


@pytest.fixture
def three(project: Project) -> list[Job]:
    """Jobs 1, 2 and 5: loss over 1000 steps (job 5 diverges), acc on 1 and 5, params."""
    jobs = [make_job(project, 1), make_job(project, 2, JobStatus.FAILED), make_job(project, 5)]
    for job in jobs:
        scale = job.number
        points = [MetricPoint("loss", scale / (step + 1), step) for step in range(1000)]
        if job.number == 5:
            points.append(MetricPoint("loss", float("nan"), 1000))
        if job.number != 2:
            points += [MetricPoint("acc", 0.1 * scale, step) for step in range(10)]
        metrics_record(job.id, points)
        params_record(job.id, {"lr": f"0.{scale}", "batch": "64", "seed": str(scale)})
    return jobs


def test_jobs_come_side_by_side_in_the_order_asked(
    client: APIClient, project: Project, three: list[Job]
) -> None:
    answer = compare(client, project, jobs="5,1,2", metrics="loss,acc", params="lr,batch")

    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["project"] == "olga/mnist"
    assert body["metrics"] == ["loss", "acc"]
    assert [(j["number"], j["name"], j["status"]) for j in body["jobs"]] == [
        (5, "olga/mnist/5", "succeeded"),
        (1, "olga/mnist/1", "succeeded"),
        (2, "olga/mnist/2", "failed"),
    ]
    five, one, two = body["jobs"]
    assert five["params"] == {"batch": "64", "lr": "0.5"}
    assert (five["latest"]["loss"]["value"], five["latest"]["loss"]["step"]) == ("NaN", 1000)
    assert isinstance(five["latest"]["loss"]["timestamp"], int)
    assert one["latest"]["loss"]["value"] == pytest.approx(1 / 1000)
    assert one["latest"]["acc"]["step"] == 9
    assert two["latest"]["acc"] is None
    assert two["series"]["acc"] is None
    assert one["series"]["acc"]["width"] == 1
    assert [b["last"] for b in one["series"]["acc"]["buckets"]] == [0.1] * 10


def test_each_metric_comes_downsampled(
    client: APIClient, project: Project, three: list[Job]
) -> None:
    answer = compare(client, project, jobs="1,5", metrics="loss", buckets=20)

    one, five = answer.json()["jobs"]
    loss = one["series"]["loss"]
    assert loss["points"] == 1000
    assert loss["width"] > 1
    assert 0 < len(loss["buckets"]) <= 20
    assert sum(bucket["points"] for bucket in loss["buckets"]) == 1000
    assert loss["buckets"][0]["max"] == 1.0
    assert five["series"]["loss"]["points"] == 1001


def test_without_params_named_every_param_comes(
    client: APIClient, project: Project, three: list[Job]
) -> None:
    answer = compare(client, project, jobs="2", metrics="loss")

    (two,) = answer.json()["jobs"]
    assert two["params"] == {"batch": "64", "lr": "0.2", "seed": "2"}


def test_params_given_at_submit_come_too_and_logged_ones_win(
    client: APIClient, project: Project
) -> None:
    job = make_job(project, 1)
    job.params = {"lr": 0.1, "epochs": 3}
    job.save(update_fields=["params"])
    params_record(job.id, {"lr": "0.05", "seed": "7"})

    every = compare(client, project, jobs="1").json()["jobs"][0]["params"]
    named = compare(client, project, jobs="1", params="epochs").json()["jobs"][0]["params"]

    assert every == {"epochs": "3", "lr": "0.05", "seed": "7"}
    assert list(every) == ["epochs", "lr", "seed"]
    assert named == {"epochs": "3"}


def test_without_metrics_named_the_latest_of_each_comes(
    client: APIClient, project: Project, three: list[Job]
) -> None:
    answer = compare(client, project, jobs="1,2")

    one, two = answer.json()["jobs"]
    assert list(one["latest"]) == ["acc", "loss"]
    assert list(two["latest"]) == ["loss"]
    assert one["series"] == {}


def test_unknown_jobs_are_named(client: APIClient, project: Project, three: list[Job]) -> None:
    answer = compare(client, project, jobs="1,3,5,7", metrics="loss")

    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "unknown_jobs"
    assert error["message"] == "olga/mnist has no job 3, 7."


def test_jobs_of_another_project_are_not_compared(
    client: APIClient, project: Project, owner: User
) -> None:
    elsewhere = ProjectFactory.create(owner_user=owner, name="cifar")
    make_job(elsewhere, 1)

    answer = compare(client, project, jobs="1")

    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"jobs": ",".join(str(n) for n in range(1, MAX_COMPARED_JOBS + 2))}, "jobs"),
        ({"jobs": "1", "metrics": ",".join(f"m{i}" for i in range(21))}, "metrics"),
        ({"jobs": "1,two"}, "jobs"),
        ({"jobs": "1,-2"}, "jobs"),
        ({"jobs": "1,12345678901"}, "jobs"),
        ({"jobs": ""}, "jobs"),
        ({}, "jobs"),
        ({"jobs": "1", "buckets": 0}, "buckets"),
        ({"jobs": "1", "buckets": 1001}, "buckets"),
    ],
    ids=[
        "21 jobs", "21 metrics", "not a number", "negative", "too long", "empty", "none",
        "0 buckets",
        "too many buckets",
    ],
)  # fmt: skip
def test_a_bad_comparison_is_refused(
    client: APIClient, project: Project, three: list[Job], query: dict[str, Any], field: str
) -> None:
    answer = compare(client, project, **query)

    assert answer.status_code == 400
    assert list(answer.json()["error"]["fields"]) == [field]


def test_twenty_jobs_may_be_compared(client: APIClient, project: Project) -> None:
    for number in range(1, 21):
        make_job(project, number)

    answer = compare(client, project, jobs=",".join(str(n) for n in range(20, 0, -1)))

    assert answer.status_code == 200
    assert [job["number"] for job in answer.json()["jobs"]] == list(range(20, 0, -1))


def test_queries_grow_by_two_per_job_and_metric(client: APIClient, project: Project) -> None:
    jobs = [make_job(project, number) for number in range(1, 5)]
    for job in jobs:
        points = [MetricPoint(key, 1.0, step) for key in ("a", "b", "c") for step in range(600)]
        metrics_record(job.id, points)
        params_record(job.id, {"lr": "0.1"})
    compare(client, project, jobs="1", metrics="a")  # the token's last use is written once

    def queries(jobs: str, metrics: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert compare(client, project, jobs=jobs, metrics=metrics).status_code == 200
        return len(captured)

    one = queries("1", "a")
    many = queries("1,2,3,4", "a,b,c")

    assert many - one == 2 * (4 * 3 - 1)
    assert one <= 12


def test_viewers_compare_and_outsiders_do_not(project: Project, three: list[Job]) -> None:
    viewer = ProjectMemberFactory.create(project=project, role=Role.VIEWER).user

    seen = compare(client_for(viewer), project, jobs="1,2")
    unseen = compare(client_for(UserFactory.create()), project, jobs="1,2")

    assert seen.status_code == 200
    assert unseen.status_code == 404


def test_a_job_s_own_token_cannot_compare(project: Project, three: list[Job]) -> None:
    running = make_job(project, 9, JobStatus.RUNNING)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_for_job(running)}")

    answer = compare(client, project, jobs="9")

    assert answer.status_code == 403
