"""The unmodified MLflow client against Ferry's MLflow-compatible API, on a live server."""

import math
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.services import api_token_create
from jobs.models import Job, JobMode, JobStatus
from tests.factories import UserFactory
from tracking.models import MetricSeries
from tracking.models import Param as ParamRow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice() -> User:
    user: User = UserFactory.create(username="alice")
    return user


@pytest.fixture
def tracking(
    live_server: LiveServer, alice: User, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The client pointed at Ferry with alice's token, as a user would set it up."""
    uri = f"{live_server.url}/compat/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", api_token_create(user=alice, name="mlflow").secret)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()


def test_a_fluent_script_lands_on_an_external_run(tracking: str, alice: User) -> None:
    mlflow.set_experiment("mnist")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"layers": 3, "optimizer": "adam"})
        mlflow.set_tag("stage", "dev")
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": math.nan}, step=4)

    job = Job.objects.get(id=int(run.info.run_id))
    assert job.mode == JobMode.EXTERNAL
    assert job.status == JobStatus.SUCCEEDED
    assert job.project.full_name == "alice/mnist"
    assert MetricSeries.objects.get(job=job, key="loss").points == 5
    assert dict(ParamRow.objects.filter(job=job).values_list("key", "value")) == {
        "lr": "0.01", "layers": "3", "optimizer": "adam",
    }  # fmt: skip

    client = MlflowClient()
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.run_name == "baseline"
    assert fetched.info.status == "FINISHED"
    assert fetched.data.metrics["loss"] == pytest.approx(0.2)
    assert math.isnan(fetched.data.metrics["f1"])
    assert fetched.data.params["lr"] == "0.01"
    assert fetched.data.tags["stage"] == "dev"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]


def test_log_batch_and_search(tracking: str) -> None:
    client = MlflowClient()
    experiment = client.create_experiment("sweep")
    ids = []
    for lr in (0.1, 0.01, 0.001):
        run = client.create_run(experiment, run_name=f"lr-{lr}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", 1 - lr, 0, step) for step in range(3)],
            params=[Param("lr", str(lr))],
            tags=[RunTag("kind", "sweep")],
        )
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)

    found = client.search_runs([experiment], "metrics.acc > 0.95", order_by=["metrics.acc DESC"])

    assert [run.info.run_id for run in found] == [ids[2], ids[1]]
    assert found[0].data.params == {"lr": "0.001"}


def test_errors_come_as_mlflows(tracking: str) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_run("999999")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    experiment = client.create_experiment("errors")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "cannot change" in changed.value.message


def test_artifacts_go_up_list_and_come_back(tracking: str, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (tmp_path / "model" / "config.json").write_text('{"layers": 3}')
    (tmp_path / "notes.txt").write_text("first try")
    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(tmp_path / "model"), artifact_path="model")

    client = MlflowClient()
    listed = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id)}
    assert listed == {("model", True, None), ("notes.txt", False, 9)}
    inside = [f.path for f in client.list_artifacts(run.info.run_id, "model")]
    assert inside == ["model/config.json", "model/weights.bin"]
    back = Path(client.download_artifacts(run.info.run_id, "model", str(tmp_path / "back")))
    assert (back / "weights.bin").read_bytes() == b"\x00\x01" * 1000
    assert (back / "config.json").read_text() == '{"layers": 3}'


def test_an_artifact_path_that_escapes_is_refused(tracking: str, live_server: LiveServer) -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("escape"))
    location = f"{run.info.experiment_id}/{run.info.run_id}/artifacts/../../x"
    answer = requests.put(
        f"{tracking}/api/2.0/mlflow-artifacts/artifacts/{location}",
        data=b"x",
        headers={"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"},
        timeout=10,
    )
    assert answer.status_code in (400, 404)
    assert answer.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert client.list_artifacts(run.info.run_id) == []
