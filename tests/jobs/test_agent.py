"""A job from submit to its end on this machine: scheduled, laid out, run, logged, kept.

The scheduler, the storage and the local executor are real; the Celery hop to the host's queue
is taken by calling the task's function here, in the test process.
"""

import time
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from blobs.storage import get_storage
from fleet.models import Allocation
from jobs.agent import run_job
from jobs.logs import log_read
from jobs.models import Job
from tests.blobs.test_upload_api import upload
from tests.jobs.conftest import JOBS, submitted
from tracking.models import Metric

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("configured_storage"),
]

TRAIN = b"""\
import os, json, pathlib
data = pathlib.Path(os.environ["FERRY_INPUT_MNIST"]) / "train.csv"
print("rows:", len(data.read_text().splitlines()), flush=True)
print(json.dumps({"metric": "accuracy", "value": 0.98, "step": 1}), flush=True)
pathlib.Path(os.environ["FERRY_OUTPUT"], "model.txt").write_text("weights")
"""


def test_a_job_reads_its_input_prints_and_keeps_its_output(api: APIClient) -> None:
    assert api.post("/api/v1/datasets", {"name": "mnist"}, format="json").status_code == 201
    data = upload(api, {"train.csv": b"1,2\n3,4\n5,6\n"})
    api.post("/api/v1/datasets/alice/mnist/versions", {"tree": data["digest"]}, format="json")
    code = upload(api, {"train.py": TRAIN})
    job = submitted(
        api, "python3 train.py", code=code["digest"], inputs=[{"source": "alice/datasets/mnist"}]
    )

    assert run_job(job.id) == "succeeded"

    job.refresh_from_db()
    assert (job.status, job.exit_code) == ("succeeded", 0)
    log = log_read(job, 0).data.decode()
    assert "rows: 3" in log
    assert '"metric": "accuracy"' in log
    points = Metric.objects.filter(job=job).values_list("key", "value", "step")
    assert list(points) == [("accuracy", 0.98, 1)]
    assert job.output_tree is not None
    assert list(job.output_tree.entries.values_list("path", "size")) == [("model.txt", 7)]
    assert Allocation.objects.get(job=job).released_at is not None
    events = list(job.events.values_list("to_status", flat=True))
    assert events == ["queued", "scheduled", "starting", "running", "succeeded"]


def test_a_failing_command_fails_with_its_code(api: APIClient) -> None:
    job = submitted(api, "echo oops >&2; exit 3")

    assert run_job(job.id) == "failed"

    job.refresh_from_db()
    assert (job.exit_code, job.status_reason) == (3, "exited with code 3")
    assert log_read(job, 0).data == b"oops\n"


def test_a_job_delivered_twice_runs_once(api: APIClient) -> None:
    job = submitted(api, "true")

    assert run_job(job.id) == "succeeded"
    assert run_job(job.id) == "not scheduled"


def test_a_running_job_stops_when_asked(api: APIClient, agent: Callable[[Job], list[str]]) -> None:
    job = submitted(
        api, "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.1; done"
    )
    outcome = agent(job)
    deadline = time.monotonic() + 20
    while b"started" not in log_read(job, 0).data and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.post(f"{JOBS}/{job.number}/stop").json()["status"] == "stopping"
    while not outcome and time.monotonic() < deadline + 30:
        time.sleep(0.1)

    assert outcome == ["stopped"]
    job.refresh_from_db()
    assert job.status == "stopped"
    assert b"bye" in log_read(job, 0).data


def test_a_job_that_cannot_be_laid_out_fails_and_says_why(api: APIClient) -> None:
    code = upload(api, {"train.py": b"print(1)\n"})
    job = submitted(api, "python3 train.py", code=code["digest"])
    for digest in job.code_tree.entries.values_list("blob_id", flat=True):  # type: ignore[union-attr]
        get_storage().delete(digest)  # the bytes went missing from the store

    assert run_job(job.id) == "failed"

    job.refresh_from_db()
    assert job.status_reason.startswith("could not start:")
    assert Allocation.objects.get(job=job).released_at is not None


def test_a_line_is_stored_within_a_second_or_two_even_if_the_job_goes_quiet(
    api: APIClient, agent: Callable[[Job], list[str]]
) -> None:
    job = submitted(api, "echo hello; sleep 4")
    agent(job)
    deadline = time.monotonic() + 20
    while Job.objects.get(id=job.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    while b"hello" not in log_read(job, 0).data and time.monotonic() - started < 3.5:
        time.sleep(0.05)

    assert log_read(job, 0).data == b"hello\n"
    assert time.monotonic() - started < 2.5  # one beat's flush, not the job's end
    assert Job.objects.get(id=job.id).status == "running"
