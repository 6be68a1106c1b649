"""A job's log: appended by chunks, read from any offset, followed until the job ends."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from jobs.logs import log_append, log_read
from jobs.models import Environment, Job, JobStatus, MachineType
from jobs.status import job_transition
from tests.conftest import client_for
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/projects/alice/mnist/jobs/1/logs"


@pytest.fixture
def job() -> Job:
    alice = UserFactory.create(username="alice")
    project = ProjectFactory.create(name="mnist", owner_user=alice)
    return Job.objects.create(
        project=project, number=1, command="train", created_by=alice,
        environment=Environment.objects.get(name="python-3.11"),
        machine_type=MachineType.objects.get(name="cpu"),
    )  # fmt: skip


def finish(job: Job) -> None:
    for status in (JobStatus.SCHEDULED, JobStatus.STARTING, JobStatus.RUNNING):
        assert job_transition(job.id, status)
    assert job_transition(job.id, JobStatus.SUCCEEDED, exit_code=0)


def test_bytes_are_read_from_any_offset(job: Job) -> None:
    log_append(job.id, 0, b"hello ")
    log_append(job.id, 6, b"world\n")
    log_append(job.id, 6, b"world\n")  # a retried chunk is kept once

    assert log_read(job, 0).data == b"hello world\n"
    assert log_read(job, 3).data == b"lo world\n"
    assert log_read(job, 12).data == b""
    assert log_read(job, 0, limit=8).next_offset == 8


def test_reading_stops_at_a_gap(job: Job) -> None:
    log_append(job.id, 0, b"abc")
    log_append(job.id, 10, b"later")  # bytes 3..9 are not there yet

    found = log_read(job, 0)

    assert (found.data, found.next_offset) == (b"abc", 3)


def test_the_end_is_known_only_once_the_job_ended_and_all_is_read(job: Job) -> None:
    log_append(job.id, 0, b"done\n")
    assert not log_read(job, 5).finished
    finish(job)

    assert not log_read(job, 0).finished  # bytes left to read
    assert log_read(job, 5).finished


@pytest.mark.django_db(transaction=True)
def test_a_follower_gets_bytes_as_they_come_and_the_end(job: Job) -> None:
    api: APIClient = client_for(job.created_by)

    def write_later() -> None:
        try:
            time.sleep(0.3)
            log_append(job.id, 0, b"line 1\n")
            finish(job)
        finally:
            connection.close()  # this thread's own connection

    writer = threading.Thread(target=write_later)
    writer.start()
    first = api.get(LOGS, {"offset": 0, "wait": 5})
    writer.join()
    last = api.get(f"{LOGS}?offset={first['X-Ferry-Log-Offset']}&wait=5")

    assert first.content == b"line 1\n"
    assert first["X-Ferry-Log-Finished"] == "false"
    assert (last.content, last["X-Ferry-Log-Finished"], last["X-Ferry-Job-Status"]) == (
        b"",
        "true",
        "succeeded",
    )


def test_bad_offsets_are_refused(job: Job) -> None:
    response = client_for(job.created_by).get(LOGS, {"offset": -1})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
