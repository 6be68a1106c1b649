"""A job from submit to its end on this machine: scheduled, laid out, run, logged, kept.

The scheduler, the storage and the local executor are real; the Celery hop to the host's queue
is taken by calling the task's function here, in the test process.
"""

import time
from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

import jobs.agent
from blobs.storage import get_storage
from fleet.models import Allocation
from fleet.services import allocation_release
from jobs.agent import SUPERSEDED, outcome, run_job
from jobs.executors import Exit, LocalExecutor
from jobs.logs import log_append, log_read
from jobs.models import Job, JobStatus
from jobs.status import job_transition
from tests.blobs.test_upload_api import upload
from tests.jobs.conftest import JOBS, submitted
from tests.jobs.test_executor_contract import require_bwrap
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


def test_an_attempt_another_took_over_is_stopped_and_writes_nothing(
    api: APIClient, agent: Callable[[Job], list[str]]
) -> None:
    # What the reaper does when it gives up on a host that in fact still runs the job: queues
    # it again as attempt 2, which another host runs. This copy must end, and stay quiet.
    job = submitted(api, "echo started; sleep 30; echo finished")
    Job.objects.filter(id=job.id).update(max_retries=1)
    outcome = agent(job)
    deadline = time.monotonic() + 20
    while b"started" not in log_read(job, 0).data and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job_transition(job.id, JobStatus.QUEUED, reason="host went offline", attempt=2)
    allocation_release(job.id)
    while not outcome and time.monotonic() < deadline + 20:
        time.sleep(0.1)

    assert outcome == [SUPERSEDED]
    job.refresh_from_db()
    assert (job.status, job.attempt, job.output_tree) == (JobStatus.QUEUED, 2, None)
    assert b"finished" not in log_read(job, 0).data


def test_a_retried_attempt_continues_the_log_and_says_which_it_is(api: APIClient) -> None:
    job = submitted(api, "echo second")
    log_append(job.id, 0, b"first try\n")
    Job.objects.filter(id=job.id).update(max_retries=2, attempt=2)

    assert run_job(job.id) == "succeeded"

    assert log_read(job, 0).data == b"first try\n[ferry] attempt 2 of 3\nsecond\n"


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


def test_a_project_can_keep_its_jobs_off_the_network(api: APIClient) -> None:
    require_bwrap()  # only a sandbox (or a container) can take a job's network away
    changed = api.patch("/api/v1/projects/alice/mnist", {"job_network": False}, format="json")
    assert (changed.status_code, changed.json()["job_network"]) == (200, False)
    job = submitted(api, "cat /proc/net/dev")

    assert run_job(job.id) == "succeeded"

    interfaces = [
        line.split(":")[0].strip() for line in log_read(job, 0).data.decode().splitlines()[2:]
    ]
    assert interfaces == ["lo"]


def test_without_a_sandbox_a_job_off_the_network_fails_and_says_what_to_do(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs.agent, "make_executor", lambda: LocalExecutor(sandbox=False))
    api.patch("/api/v1/projects/alice/mnist", {"job_network": False}, format="json")
    job = submitted(api, "true")

    assert run_job(job.id) == "failed"

    job.refresh_from_db()
    assert "without network" in job.status_reason
    assert "install bubblewrap" in job.status_reason


def test_a_job_killed_at_its_memory_limit_says_so_and_what_to_do(api: APIClient) -> None:
    job = submitted(api, "true")

    status, reason = outcome(job.id, Exit(code=137, signal=None, oom_killed=True), "")

    assert status == "failed"
    assert reason == (
        "it ran out of memory: killed at the 4096 MB of its machine type cpu; "
        "run it on a machine type with more memory (ferry run --machine NAME)"
    )


def test_a_jobs_requirements_are_installed_first_and_logged(
    api: APIClient, pip_args: list[str], settings: Settings
) -> None:
    settings.FERRY_PIP_ARGS = pip_args
    code = upload(
        api,
        {
            "ferry_requirements.txt": b"ferry-tiny==2.0\n",
            "train.py": b"import ferry_tiny\nprint('tiny', ferry_tiny.VERSION)\n",
        },
    )
    job = submitted(api, "python3 train.py", code=code["digest"])

    assert run_job(job.id) == "succeeded"

    log = log_read(job, 0).data.decode()
    assert "Successfully installed ferry-tiny-2.0" in log  # pip's own words, first
    assert log.endswith("tiny 2.0\n")  # then the job's


def test_requirements_that_cannot_be_installed_fail_the_job_with_pips_words(
    api: APIClient, pip_args: list[str], settings: Settings
) -> None:
    settings.FERRY_PIP_ARGS = pip_args
    code = upload(api, {"ferry_requirements.txt": b"ferry-tiny==9.9\n", "train.py": b""})
    job = submitted(api, "python3 train.py", code=code["digest"])

    assert run_job(job.id) == "failed"

    job.refresh_from_db()
    assert job.status_reason.startswith("could not start:")
    assert "ferry-tiny==9.9" in job.status_reason
