"""A job from submit to its end on the Docker executor: the agent's side, on the real engine,
in an environment whose image is the test image (``tests.support.docker_image``)."""

import importlib
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from fleet.models import Allocation
from jobs.agent import AgentPaths, agent_paths, docker_ready, make_executor, run_job
from jobs.executors import DockerExecutor
from jobs.logs import log_read
from jobs.models import Environment
from jobs.recovery import recover_jobs
from tests.blobs.test_upload_api import upload
from tests.jobs.conftest import submitted
from tests.jobs.test_executor_contract import docker_executor
from tracking.models import Metric

PYTORCH = importlib.import_module("jobs.migrations.0006_seed_pytorch_2_13")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("configured_storage", ["filesystem"], indirect=True),
    pytest.mark.usefixtures("configured_storage"),
]

TRAIN = b"""\
import os, json, pathlib, ferry
data = pathlib.Path("/ferry/input/mnist/train.csv")
print("rows:", len(data.read_text().splitlines()), "uid:", os.getuid(), flush=True)
print(json.dumps({"metric": "accuracy", "value": 0.5, "step": 1}), flush=True)
pathlib.Path("/ferry/output/model.txt").write_text("weights")
print("kept:", ferry.checkpoint(timeout=60), flush=True)
"""


@pytest.fixture
def in_docker(api: APIClient, settings: Settings) -> str:
    """The agent on the docker executor; the environment "test-image" runs the test image."""
    image = docker_executor().default_image
    assert image is not None
    settings.FERRY_EXECUTOR = "docker"
    Environment.objects.create(name="test-image", image=image)
    return image


def test_a_job_reads_its_input_checkpoints_and_keeps_its_output_in_a_container(
    api: APIClient, in_docker: str
) -> None:
    assert api.post("/api/v1/datasets", {"name": "mnist"}, format="json").status_code == 201
    data = upload(api, {"train.csv": b"1,2\n3,4\n"})
    api.post("/api/v1/datasets/alice/mnist/versions", {"tree": data["digest"]}, format="json")
    code = upload(api, {"train.py": TRAIN})
    job = submitted(
        api, "python3 train.py", code=code["digest"], environment="test-image",
        inputs=[{"source": "alice/datasets/mnist"}],
    )  # fmt: skip

    assert run_job(job.id) == "succeeded", log_read(job, 0).data

    job.refresh_from_db()
    log = log_read(job, 0).data.decode()
    assert "rows: 2 uid: 10001" in log  # not root
    assert "kept: True" in log
    assert list(job.output_tree.entries.values_list("path", flat=True)) == ["model.txt"]  # type: ignore[union-attr]
    assert Allocation.objects.get(job=job).released_at is not None
    assert not DockerExecutor().containers(under=agent_paths().jobs)  # removed at its end


def test_an_image_the_host_lacks_fails_the_job_saying_how_to_get_it(
    api: APIClient, in_docker: str
) -> None:
    Environment.objects.create(name="absent", image="ferry-test/absent:never")
    job = submitted(api, "true", environment="absent")

    assert run_job(job.id) == "failed"

    job.refresh_from_db()
    assert "ferry-test/absent:never is not on this host" in job.status_reason
    assert "make images" in job.status_reason


def test_an_agent_starting_removes_containers_nothing_watches(
    api: APIClient, in_docker: str, tmp_path: Path
) -> None:
    job = submitted(api, "sleep 60", environment="test-image")
    executor = DockerExecutor()
    paths = agent_paths()
    from jobs.agent import prepare

    handle = executor.launch(prepare(job, paths, link_inputs=True))
    assert [c.job_id for c in executor.containers(under=paths.jobs)] == [str(job.id)]
    # The agent died; the job was lost meanwhile; its directory went with the crash.
    job.status = "lost"
    job.save(update_fields=["status"])
    executor.stop(handle, grace_s=0)

    recover_jobs("here", executor, AgentPaths(paths.root))

    assert executor.containers(under=paths.jobs) == []


@pytest.mark.parametrize(("image", "backend"), [("test", "docker"), ("absent", "local")])
def test_auto_picks_docker_once_it_holds_the_default_image(
    settings: Settings, in_docker: str, image: str, backend: str
) -> None:
    settings.FERRY_EXECUTOR = "auto"
    default_image = in_docker if image == "test" else "ferry-test/absent:never"
    Environment.objects.filter(is_default=True).update(image=default_image)
    docker_ready.cache_clear()
    try:
        assert make_executor().name == backend
    finally:
        docker_ready.cache_clear()


def test_an_unknown_executor_setting_says_what_to_use(settings: Settings) -> None:
    settings.FERRY_EXECUTOR = "kubernetes"

    with pytest.raises(ImproperlyConfigured, match="use auto, docker or local"):
        make_executor()


TRAIN_TORCH = b"""\
import json, torch, ferry
torch.manual_seed(0)
x = torch.randn(256, 3)
y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.1
model = torch.nn.Linear(3, 1)
optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(1, 101):
    loss = torch.nn.functional.mse_loss(model(x), y)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    if step % 20 == 0:
        print(json.dumps({"metric": "loss", "value": loss.item(), "step": step}), flush=True)
torch.save(model.state_dict(), "/ferry/output/model.pt")
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), flush=True)
print("kept:", ferry.checkpoint(timeout=60), flush=True)
"""


def test_a_model_trains_on_cpu_in_the_standard_pytorch_environment(
    api: APIClient, settings: Settings
) -> None:
    # The image is the real one, `make images IMAGES=pytorch-2.13`: PyTorch is too big for CI
    # to build on every run, so this test runs where the image has been built.
    # As its migration seeds it (a transactional test's database starts empty).
    image = Environment.objects.get_or_create(name=PYTORCH.NAME, defaults=PYTORCH.FIELDS)[0].image
    if not docker_executor().has_image(image):
        pytest.skip(f"{image} is not built here: make images IMAGES=pytorch-2.13")
    settings.FERRY_EXECUTOR = "docker"
    code = upload(api, {"train.py": TRAIN_TORCH})
    job = submitted(api, "python train.py", code=code["digest"], environment=PYTORCH.NAME)

    assert run_job(job.id) == "succeeded", log_read(job, 0).data

    job.refresh_from_db()
    log = log_read(job, 0).data.decode()
    assert "torch 2.13." in log
    assert "cuda False" in log
    assert "kept: True" in log
    losses = list(
        Metric.objects.filter(job=job, key="loss").order_by("step").values_list("value", flat=True)
    )
    assert len(losses) == 5
    assert losses[-1] < losses[0] / 10, losses  # it learnt
    assert list(job.output_tree.entries.values_list("path", flat=True)) == ["model.pt"]  # type: ignore[union-attr]
