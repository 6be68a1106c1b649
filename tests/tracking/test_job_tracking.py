"""A job's tracking data as its agent gathers it: MLflow's client in the job's code, TensorBoard
files under its output, system metrics; and the job's own token, which ends with the job.

The agent, the local executor and a live Ferry server are real. The executor runs unsandboxed
here so that the job's Python is this test's (which has mlflow and tensorboardX installed), as a
job's image would provide them.
"""

import json
import math
import sys

import pytest
import requests
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer
from rest_framework.test import APIClient

import jobs.agent
from jobs.agent import run_job
from jobs.executors import LocalExecutor
from jobs.logs import log_read
from jobs.models import Job
from tests.blobs.test_upload_api import upload
from tests.jobs.conftest import api, submitted
from tracking.models import Metric, MetricSeries, Param, Tag

__all__ = ["api"]  # the fixture, shared with the agent's suites

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("configured_storage"),
]


@pytest.fixture(autouse=True)
def _served(live_server: LiveServer, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.FERRY_URL = live_server.url
    monkeypatch.setattr(jobs.agent, "make_executor", lambda: LocalExecutor(sandbox=False))


def run_script(api: APIClient, script: bytes) -> Job:
    code = upload(api, {"train.py": script})
    job = submitted(api, f"{sys.executable} train.py", code=code["digest"])
    outcome = run_job(job.id)
    job.refresh_from_db()
    assert outcome == "succeeded", log_read(job, 0).data.decode()
    return job


MLFLOW_ONLY = b"""\
import mlflow
mlflow.log_param("lr", 0.01)
mlflow.set_tag("model", "cnn")
for step in range(20):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
"""


def test_a_job_that_only_calls_mlflow_shows_its_metrics_in_ferry(api: APIClient) -> None:
    job = run_script(api, MLFLOW_ONLY)

    series = MetricSeries.objects.get(job=job, key="loss")
    assert (series.points, series.last_step, series.latest_value) == (20, 19, 1 / 20)
    assert Param.objects.get(job=job, key="lr").value == "0.01"
    assert Tag.objects.get(job=job, key="model").value == "cnn"
    # Its client ending the run left the job's own end to the job.
    assert job.status == "succeeded"


TENSORBOARD = b"""\
import os
from tensorboardX import SummaryWriter
writer = SummaryWriter(os.path.join(os.environ["FERRY_OUTPUT"], "logs", "train"))
for step in range(50):
    writer.add_scalar("loss", 2.0 - step / 50, step)
writer.close()
"""


def test_tensorboard_scalars_a_job_writes_are_recorded(api: APIClient) -> None:
    job = run_script(api, TENSORBOARD)

    points = list(
        Metric.objects.filter(job=job, key="logs/train/loss")
        .order_by("step")
        .values_list("step", "value")
    )
    assert [step for step, _ in points] == list(range(50))
    assert all(math.isclose(v, 2.0 - s / 50, rel_tol=1e-6) for s, v in points)


BUSY = b"""\
import time
block = bytearray(50 * 1024 * 1024)
end = time.monotonic() + 3.5
while time.monotonic() < end:
    sum(range(10000))
"""


def test_a_running_jobs_cpu_and_memory_are_sampled(api: APIClient, settings: Settings) -> None:
    settings.FERRY_SYSTEM_METRICS_INTERVAL_S = 1

    job = run_script(api, BUSY)

    sampled = dict(MetricSeries.objects.filter(job=job).values_list("key", "max_value"))
    assert (sampled["system/cpu_percent"] or 0) > 30
    assert (sampled["system/memory_mb"] or 0) > 50
    assert MetricSeries.objects.get(job=job, key="system/memory_mb").points >= 2


TOKEN = b"""\
import os, json, urllib.request
print(json.dumps({"token": os.environ["FERRY_JOB_TOKEN"], "url": os.environ["FERRY_URL"],
                  "job": os.environ["FERRY_JOB"], "run": os.environ["MLFLOW_RUN_ID"]}))
"""


def test_the_jobs_own_token_works_for_its_job_only_and_ends_with_it(
    api: APIClient, live_server: LiveServer
) -> None:
    job = run_script(api, TOKEN)

    given = json.loads(log_read(job, 0).data.decode().strip().splitlines()[-1])
    assert given["job"] == f"alice/mnist/{job.number}"
    assert given["run"] == str(job.id)
    assert given["url"] == live_server.url
    answer = requests.get(
        f"{live_server.url}/compat/mlflow/api/2.0/mlflow/runs/get",
        params={"run_id": str(job.id)},
        headers={"Authorization": f"Bearer {given['token']}"},
        timeout=10,
    )
    assert answer.status_code == 401  # the job has ended


SDK = b"""\
import ferry
ferry.log_params({"lr": 0.1, "layers": 3})
ferry.set_tags({"stage": "dev"})
for step in range(1500):
    ferry.log_metric("acc", step / 1500)
"""


def test_a_job_using_ferrys_sdk_records_without_waiting_for_it(api: APIClient) -> None:
    job = run_script(api, SDK)

    series = MetricSeries.objects.get(job=job, key="acc")
    assert (series.points, series.first_step, series.last_step) == (1500, 0, 1499)
    assert dict(Param.objects.filter(job=job).values_list("key", "value")) == {
        "lr": "0.1",
        "layers": "3",
    }
    assert Tag.objects.get(job=job, key="stage").value == "dev"
