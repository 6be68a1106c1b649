"""Telling hosts what a pass gave them: one jobs.start per host, the big passes through
fleet.dispatch, and the agent handing itself the jobs after the first."""

import time

import pytest
from pytest_django import DjangoCaptureOnCommitCallbacks

from fleet import delivery
from fleet.delivery import SEND_AT_ONCE_HOSTS, deliver, send_starts
from fleet.scheduler import schedule
from fleet.tasks import dispatch_task
from jobs import tasks
from tests.fleet.conftest import SentTask, message_taken
from tests.fleet.factories import HostFactory, JobFactory, gpus, machine_type

pytestmark = pytest.mark.django_db


def test_a_pass_sends_each_host_one_message_with_its_jobs_in_order(
    sent: list[SentTask], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    first = HostFactory.create(name="a", gpus=gpus(2))
    second = HostFactory.create(name="b", gpus=gpus(1))
    jobs = JobFactory.create_batch(3, machine_type=machine_type("gpu"))

    with django_capture_on_commit_callbacks(execute=True):
        assert schedule()["placed"] == 3

    by_queue = {str(task.queue): task.args[0] for task in sent}
    assert [task.name for task in sent] == ["jobs.start", "jobs.start"]
    assert sorted(by_queue) == sorted([first.queue, second.queue])
    assert sorted(job_id for ids in by_queue.values() for job_id in ids) == [j.id for j in jobs]
    assert all(ids == sorted(ids) for ids in by_queue.values()), "oldest first on each host"


def test_a_pass_placing_on_many_hosts_hands_the_sends_to_dispatch(
    sent: list[SentTask], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    count = SEND_AT_ONCE_HOSTS + 1
    hosts = [HostFactory.create(name=f"h{i}", gpus=gpus(1)) for i in range(count)]
    JobFactory.create_batch(count, machine_type=machine_type("gpu"))

    with django_capture_on_commit_callbacks(execute=True):
        assert schedule()["placed"] == count

    [handed] = sent
    assert (handed.name, handed.queue) == ("fleet.dispatch", None)
    starts = handed.args[0]
    assert sorted(starts) == sorted(host.queue for host in hosts)

    sent.clear()
    assert dispatch_task.apply(args=(starts,)).get() == count
    assert sorted((task.name, task.queue) for task in sent) == sorted(
        ("jobs.start", host.queue) for host in hosts
    )


def test_a_fill_of_many_hosts_is_shared_out_among_dispatches(
    sent: list[SentTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "DISPATCH_HOSTS", 10)
    starts = {f"host.h{i}": [i] for i in range(25)}

    deliver(starts)

    assert [(task.name, len(task.args[0])) for task in sent] == [
        ("fleet.dispatch", 10), ("fleet.dispatch", 10), ("fleet.dispatch", 5),
    ]  # fmt: skip
    assert {q: ids for task in sent for q, ids in task.args[0].items()} == starts


def test_a_few_hosts_are_told_at_once(sent: list[SentTask]) -> None:
    deliver({"host.a": [1, 2], "host.b": [3]})

    assert sent == [
        SentTask("jobs.start", [[1, 2]], "host.a"),
        SentTask("jobs.start", [[3]], "host.b"),
    ]


def test_a_send_that_fails_does_not_keep_the_other_hosts_from_hearing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from config.celery_app import app

    told: list[str] = []

    def send_task(name: str, args: list[object], queue: str, **_: object) -> None:
        if queue == "host.down":
            raise ConnectionError("broker refused")
        told.append(queue)

    monkeypatch.setattr(app, "send_task", send_task)

    send_starts({"host.down": [1], "host.up": [2]})

    assert told == ["host.up"]
    assert "could not tell host.down to start jobs [1]" in caplog.text


def test_the_agent_runs_the_first_job_and_hands_itself_the_others(
    monkeypatch: pytest.MonkeyPatch, sent: list[SentTask]
) -> None:
    ran: list[int] = []

    def run_job(job_id: int) -> str:
        ran.append(job_id)
        return "succeeded"

    monkeypatch.setattr(tasks, "run_job", run_job)

    result = tasks.start_jobs_task.apply(args=([7, 8, 9],), routing_key="host.gpu1").get()

    assert (result, ran) == ("succeeded", [7])
    assert sent == [SentTask("jobs.run", [8], "host.gpu1"), SentTask("jobs.run", [9], "host.gpu1")]


@pytest.mark.django_db(transaction=True)
def test_a_host_hears_of_its_jobs_through_dispatch_on_the_real_broker(redis_url: str) -> None:

    suffix = time.monotonic_ns()
    queues = {f"host.real-{suffix}-{i}": [i, i + 100] for i in range(SEND_AT_ONCE_HOSTS + 1)}

    dispatch_task.apply(args=(queues,)).get()

    for queue_name, job_ids in queues.items():
        message = message_taken(queue_name)
        assert message.headers["task"] == "jobs.start"
        assert message.decode()[0] == [job_ids]
