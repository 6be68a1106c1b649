"""A running job's output is kept while it runs, and an output that cannot be stored is retried,
never recorded in part, and never lost.

The jobs run for real on the local executor and store into the real storage backends; the
only thing faked is a storage outage, by a wrapper around the real storage whose ``save``
fails while the test says so.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

import blobs.services
import jobs.checkpoints
from blobs.models import Tree
from blobs.storage import get_storage
from jobs.logs import log_read
from jobs.models import Job
from tests.blobs.test_upload_api import upload
from tests.jobs.conftest import submitted

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("configured_storage"),
]

# Writes epoch 1, keeps it, waits for the test's go, writes epoch 2, ends.
TRAIN = b"""\
import os, pathlib, time, ferry
out, control = pathlib.Path(os.environ["FERRY_OUTPUT"]), pathlib.Path(os.environ["FERRY_CONTROL"])
(out / "epoch1.pt").write_text("w1")
print("kept:", ferry.checkpoint(timeout=60), flush=True)
while not (control / "go").exists():
    time.sleep(0.05)
(out / "epoch2.pt").write_text("w2")
"""
# Writes epoch 1 and waits for the test's go, asking for nothing.
QUIET = b"""\
import os, pathlib, time
out, control = pathlib.Path(os.environ["FERRY_OUTPUT"]), pathlib.Path(os.environ["FERRY_CONTROL"])
(out / "epoch1.pt").write_text("w1")
print("written", flush=True)
while not (control / "go").exists():
    time.sleep(0.05)
"""


class FlakyStorage:
    """The real storage, except that ``save`` fails while ``broken`` (or ``fail_next`` times)."""

    def __init__(self, real: Any) -> None:
        self.real, self.broken, self.fail_next, self.failures = real, False, 0, 0

    def save(self, digest: str, stream: Any) -> Any:
        if self.broken or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            self.failures += 1
            raise OSError("the store is unreachable")
        return self.real.save(digest, stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.checkpoints, "RETRY_DELAYS_S", (0.05, 0.05))


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> FlakyStorage:
    storage = FlakyStorage(get_storage())
    monkeypatch.setattr(blobs.services, "get_storage", lambda: storage)
    return storage


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            jobs = list(Job.objects.values("status", "status_reason"))
            raise AssertionError(f"timed out waiting for {what}; jobs: {jobs}")
        time.sleep(0.05)


def go(job: Job) -> None:
    (Path(settings.FERRY_AGENT_DIR) / "jobs" / str(job.id) / "control" / "go").touch()


def output_files(job: Job) -> list[str]:
    job.refresh_from_db()
    tree = job.output_tree
    return [] if tree is None else sorted(tree.entries.values_list("path", flat=True))


def job_started(api: APIClient, script: bytes) -> Job:
    code = upload(api, {"train.py": script})
    return submitted(api, "python3 train.py", code=code["digest"])


def test_ferry_checkpoint_keeps_the_output_while_the_job_runs(
    api: APIClient, agent: Callable[[Job], list[str]]
) -> None:
    job = job_started(api, TRAIN)
    outcome = agent(job)

    wait_for(lambda: b"kept:" in log_read(job, 0).data, "the checkpoint")

    assert b"kept: True" in log_read(job, 0).data
    assert output_files(job) == ["epoch1.pt"]
    assert (job.status, job.output_at is not None) == ("running", True)
    checkpointed = api.get(f"/api/v1/projects/alice/mnist/jobs/{job.number}").json()
    assert checkpointed["output"] == job.output_tree.digest  # type: ignore[union-attr]

    go(job)
    wait_for(lambda: outcome, "the job's end")

    assert outcome == ["succeeded"]
    assert output_files(job) == ["epoch1.pt", "epoch2.pt"]


def test_a_changed_output_is_kept_every_interval_unasked(
    api: APIClient, agent: Callable[[Job], list[str]], settings: Settings
) -> None:
    settings.FERRY_CHECKPOINT_INTERVAL_S = 1
    job = job_started(api, QUIET)
    outcome = agent(job)

    wait_for(lambda: output_files(job), "a periodic checkpoint")

    assert output_files(job) == ["epoch1.pt"]
    trees = Tree.objects.count()
    time.sleep(2.5)  # two more intervals, the output unchanged: nothing stored again
    assert Tree.objects.count() == trees
    go(job)
    wait_for(lambda: outcome, "the job's end")
    assert outcome == ["succeeded"]


def test_an_output_upload_that_fails_once_is_retried(
    api: APIClient, agent: Callable[[Job], list[str]], flaky: FlakyStorage
) -> None:
    job = job_started(api, QUIET)
    outcome = agent(job)
    wait_for(lambda: b"written" in log_read(job, 0).data, "the job to write")

    flaky.fail_next = 1
    go(job)
    wait_for(lambda: outcome, "the job's end")

    assert outcome == ["succeeded"]
    assert flaky.failures == 1
    assert output_files(job) == ["epoch1.pt"]


def test_an_output_that_cannot_be_stored_is_not_recorded_in_part_nor_lost(
    api: APIClient, agent: Callable[[Job], list[str]], flaky: FlakyStorage
) -> None:
    job = job_started(api, TRAIN)
    outcome = agent(job)
    wait_for(lambda: b"kept:" in log_read(job, 0).data, "the checkpoint")
    checkpoint = Job.objects.get(id=job.id).output_tree
    trees = Tree.objects.count()

    flaky.broken = True  # epoch 2 cannot be stored: every attempt fails
    go(job)
    wait_for(lambda: outcome, "the job's end")

    assert outcome == ["failed"]
    assert flaky.failures == 3
    job.refresh_from_db()
    assert job.status_reason.startswith("its output could not be kept (the store is unreachable)")
    assert job.output_tree == checkpoint  # the last checkpoint stands, nothing partial
    assert output_files(job) == ["epoch1.pt"]
    assert Tree.objects.count() == trees
    left = Path(settings.FERRY_AGENT_DIR) / "unsaved" / str(job.id)
    assert str(left) in job.status_reason
    assert sorted(p.name for p in left.iterdir()) == ["epoch1.pt", "epoch2.pt"]


def test_a_request_the_job_garbled_is_ignored(
    api: APIClient, agent: Callable[[Job], list[str]]
) -> None:
    script = b"""\
import os, pathlib
control = pathlib.Path(os.environ["FERRY_CONTROL"])
(control / "checkpoint.request").write_bytes(b"\\xff{not json")
(pathlib.Path(os.environ["FERRY_OUTPUT"]) / "model.pt").write_text("w")
import time; time.sleep(1.5)
"""
    job = job_started(api, script)
    outcome = agent(job)
    wait_for(lambda: outcome, "the job's end")

    assert outcome == ["succeeded"]
    assert output_files(job) == ["model.pt"]
