"""The MLflow-compatible API's answers to what it refuses, and to whom: MLflow's error bodies,
and nothing written."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import TokenScope, User
from accounts.services import api_token_create, api_token_for_job
from jobs.models import Job, JobStatus
from jobs.status import job_transition
from tests.conftest import client_for
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.factories import JobFactory
from tracking.models import DeletedRun, Metric, Param, Tag

pytestmark = pytest.mark.django_db

API = "/compat/mlflow/api/2.0/mlflow"


@pytest.fixture
def alice() -> User:
    user: User = UserFactory.create(username="alice")
    return user


@pytest.fixture
def client(alice: User) -> APIClient:
    return client_for(alice)


@pytest.fixture
def run(client: APIClient) -> str:
    experiment = client.post(f"{API}/experiments/create", {"name": "exp"}, format="json")
    created = client.post(
        f"{API}/runs/create", {"experiment_id": experiment.json()["experiment_id"]}, format="json"
    )
    run_id: str = created.json()["run"]["info"]["run_id"]
    return run_id


def assert_refused(response: Any, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == code
    for word in words:
        assert word in body["message"]


def nothing_logged(run_id: str) -> None:
    job = Job.objects.get(id=int(run_id))
    assert not Metric.objects.filter(job=job).exists()
    assert not Param.objects.filter(job=job).exists()
    assert set(Tag.objects.filter(job=job).values_list("key", flat=True)) <= {"mlflow.runName"}


def test_no_token_is_unauthenticated(api_client: APIClient) -> None:
    assert_refused(
        api_client.get(f"{API}/experiments/get", {"experiment_id": "1"}),
        401, "UNAUTHENTICATED", "MLFLOW_TRACKING_TOKEN",
    )  # fmt: skip


def test_an_unknown_run_or_experiment_does_not_exist(client: APIClient) -> None:
    assert_refused(
        client.get(f"{API}/runs/get", {"run_id": "4242"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_refused(client.get(f"{API}/runs/get", {"run_id": "abc"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_refused(
        client.get(f"{API}/experiments/get-by-name", {"experiment_name": "nope"}),
        404, "RESOURCE_DOES_NOT_EXIST",
    )  # fmt: skip


def test_another_users_private_run_is_not_found(run: str) -> None:
    mallory = client_for(UserFactory.create(username="mallory"))
    assert_refused(mallory.get(f"{API}/runs/get", {"run_id": run}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_refused(
        mallory.post(f"{API}/runs/log-metric", {"run_id": run, "key": "x", "value": 1, "timestamp": 1, "step": 0}, format="json"),  # noqa: E501
        404, "RESOURCE_DOES_NOT_EXIST",
    )  # fmt: skip
    nothing_logged(run)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"key": "loss", "value": "fast", "timestamp": 1, "step": 0}, ["number", "'fast'"]),
        ({"key": "loss", "value": True, "timestamp": 1, "step": 0}, ["number"]),
        ({"key": "loss", "value": 1.0, "timestamp": 1, "step": 2**63}, ["64-bit"]),
        ({"key": "loss", "value": 1.0, "timestamp": "soon", "step": 0}, ["64-bit"]),
        ({"key": "", "value": 1.0, "timestamp": 1, "step": 0}, ["key"]),
        ({"key": "k" * 251, "value": 1.0, "timestamp": 1, "step": 0}, ["250"]),
        ({"key": "loss", "value": 1.0, "timestamp": 10**17, "step": 0}, ["out of range"]),
    ],
)
def test_a_bad_metric_is_refused(
    client: APIClient, run: str, body: dict[str, Any], words: list[str]
) -> None:
    response = client.post(f"{API}/runs/log-metric", {"run_id": run, **body}, format="json")
    assert_refused(response, 400, "INVALID_PARAMETER_VALUE", *words)
    nothing_logged(run)


def test_a_batch_over_mlflows_limits_is_refused_whole(client: APIClient, run: str) -> None:
    metrics = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    response = client.post(
        f"{API}/runs/log-batch", {"run_id": run, "metrics": metrics}, format="json"
    )
    assert_refused(response, 400, "INVALID_PARAMETER_VALUE", "at most 1000 metrics", "Split it")
    nothing_logged(run)


def test_a_batch_with_one_bad_part_writes_nothing(client: APIClient, run: str) -> None:
    client.post(
        f"{API}/runs/log-parameter", {"run_id": run, "key": "lr", "value": "0.1"}, format="json"
    )
    body = {
        "run_id": run,
        "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 1}],
        "params": [{"key": "lr", "value": "0.2"}],
        "tags": [{"key": "t", "value": "v"}],
    }
    assert_refused(
        client.post(f"{API}/runs/log-batch", body, format="json"),
        400, "INVALID_PARAMETER_VALUE", "cannot change",
    )  # fmt: skip
    job = Job.objects.get(id=int(run))
    assert not Metric.objects.filter(job=job).exists()
    assert not Tag.objects.filter(job=job, key="t").exists()


def test_a_batch_giving_a_param_twice_with_two_values_is_refused(
    client: APIClient, run: str
) -> None:
    params = [{"key": "lr", "value": "0.1"}, {"key": "lr", "value": "0.2"}]
    response = client.post(
        f"{API}/runs/log-batch", {"run_id": run, "params": params}, format="json"
    )
    assert_refused(response, 400, "INVALID_PARAMETER_VALUE", "twice")
    nothing_logged(run)


def test_logging_to_a_deleted_run_is_refused_until_it_is_restored(
    client: APIClient, run: str
) -> None:
    assert client.post(f"{API}/runs/delete", {"run_id": run}, format="json").status_code == 200
    assert DeletedRun.objects.filter(job_id=int(run)).exists()
    metric = {"run_id": run, "key": "x", "value": 1, "timestamp": 1, "step": 0}
    assert_refused(
        client.post(f"{API}/runs/log-metric", metric, format="json"),
        400,
        "INVALID_PARAMETER_VALUE",
        "restore",
    )
    nothing_logged(run)

    assert client.post(f"{API}/runs/restore", {"run_id": run}, format="json").status_code == 200
    assert client.post(f"{API}/runs/log-metric", metric, format="json").status_code == 200


@pytest.mark.parametrize(
    ("search", "words"),
    [
        ({"filter": "metrics.acc > 0.9 OR params.lr = '1'"}, []),
        ({"filter": "metrics.acc > 'high'"}, []),
        ({"order_by": ["metrics.acc SIDEWAYS"]}, []),
        ({"max_results": 0}, ["between 1 and"]),
        ({"page_token": "not-a-token"}, ["page_token"]),
    ],
)
def test_a_bad_search_is_refused(
    client: APIClient, run: str, search: dict[str, Any], words: list[str]
) -> None:
    experiment = Job.objects.get(id=int(run)).project_id
    body = {"experiment_ids": [str(experiment)], **search}
    assert_refused(
        client.post(f"{API}/runs/search", body, format="json"),
        400,
        "INVALID_PARAMETER_VALUE",
        *words,
    )


def test_an_experiment_name_that_is_no_project_name_is_refused(client: APIClient) -> None:
    assert_refused(
        client.post(f"{API}/experiments/create", {"name": "a/b/c"}, format="json"),
        400, "INVALID_PARAMETER_VALUE", "'owner/name'",
    )  # fmt: skip


def test_an_existing_experiment_cannot_be_created_again(client: APIClient) -> None:
    assert (
        client.post(f"{API}/experiments/create", {"name": "twice"}, format="json").status_code
        == 200
    )
    again = client.post(f"{API}/experiments/create", {"name": "twice"}, format="json")
    assert again.status_code in (400, 409)
    assert again.json()["error_code"] in (
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "INVALID_STATE",
    )


def test_a_jobs_own_token_reaches_its_run_only(alice: User) -> None:
    project = ProjectFactory.create(name="p", owner_user=alice)
    job, other = JobFactory.create_batch(2, project=project, created_by=alice)
    job_transition(job.id, JobStatus.SCHEDULED)
    token = api_token_for_job(job)
    as_job = APIClient()
    as_job.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    metric = {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}

    assert (
        as_job.post(
            f"{API}/runs/log-metric", {"run_id": str(job.id), **metric}, format="json"
        ).status_code
        == 200
    )
    assert_refused(
        as_job.post(f"{API}/runs/log-metric", {"run_id": str(other.id), **metric}, format="json"),
        403, "PERMISSION_DENIED", f"job {job.id}'s own",
    )  # fmt: skip
    assert_refused(
        as_job.post(f"{API}/runs/create", {"experiment_id": str(project.id)}, format="json"),
        403, "PERMISSION_DENIED", "MLFLOW_RUN_ID",
    )  # fmt: skip
    # Ferry's own API is closed to it.
    assert as_job.get("/api/v1/projects/alice/p/jobs").status_code == 403
    assert not Metric.objects.filter(job=other).exists()


def test_a_finished_jobs_token_no_longer_works(alice: User) -> None:
    job = JobFactory.create(created_by=alice)
    token = api_token_for_job(job)
    for status in (JobStatus.SCHEDULED, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.SUCCEEDED):
        job_transition(job.id, status)
    as_job = APIClient()
    as_job.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_refused(as_job.get(f"{API}/runs/get", {"run_id": str(job.id)}), 401, "UNAUTHENTICATED")


def test_a_read_only_token_cannot_log(alice: User, run: str) -> None:
    secret = api_token_create(user=alice, name="ro", scope=TokenScope.READ).secret
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert reader.get(f"{API}/runs/get", {"run_id": run}).status_code == 200
    metric = {"run_id": run, "key": "x", "value": 1, "timestamp": 1, "step": 0}
    assert_refused(
        reader.post(f"{API}/runs/log-metric", metric, format="json"),
        403,
        "PERMISSION_DENIED",
        "read-only",
    )
    nothing_logged(run)
