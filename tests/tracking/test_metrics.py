"""Recording a job's metrics and reading the latest of each."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from tests.fleet.factories import JobFactory
from tracking.models import Metric
from tracking.parsing import MetricPoint
from tracking.selectors import metrics_latest
from tracking.services import metrics_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def job() -> Job:
    created: Job = JobFactory.create()
    return created


def series(job: Job, key: str) -> list[tuple[int, float]]:
    return list(Metric.objects.filter(job=job, key=key).order_by("id").values_list("step", "value"))


def test_points_without_a_step_count_up_per_key(job: Job) -> None:
    points = [
        MetricPoint("loss", 0.9, None),
        MetricPoint("acc", 0.1, None),
        MetricPoint("loss", 0.5, None),
    ]

    assert metrics_record(job.id, points) == 3

    assert series(job, "loss") == [(0, 0.9), (1, 0.5)]
    assert series(job, "acc") == [(0, 0.1)]


def test_counting_goes_on_from_what_is_stored(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("loss", 0.9, None), MetricPoint("loss", 0.8, None)])

    metrics_record(job.id, [MetricPoint("loss", 0.7, None)])

    assert series(job, "loss") == [(0, 0.9), (1, 0.8), (2, 0.7)]


def test_a_stepless_point_follows_the_highest_step_given(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("loss", 0.9, 10)])

    metrics_record(
        job.id,
        [
            MetricPoint("loss", 0.8, None),
            MetricPoint("loss", 0.7, 20),
            MetricPoint("loss", 0.6, None),
        ],
    )

    assert series(job, "loss") == [(10, 0.9), (11, 0.8), (20, 0.7), (21, 0.6)]


def test_other_jobs_do_not_count(job: Job) -> None:
    other = JobFactory.create(project=job.project)
    metrics_record(other.id, [MetricPoint("loss", 1.0, 5)])

    metrics_record(job.id, [MetricPoint("loss", 0.5, None)])

    assert series(job, "loss") == [(0, 0.5)]


def test_a_batch_costs_as_many_statements_whatever_its_size(job: Job) -> None:
    def statements(count: int) -> int:
        points = [MetricPoint(f"m{i % 10}", float(i), None) for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            metrics_record(job.id, points)
        return len(queries)

    assert statements(10) == statements(1000) <= 8
    assert Metric.objects.filter(job=job).count() == 1010


def test_nothing_to_record_costs_nothing(job: Job) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert metrics_record(job.id, []) == 0

    assert len(queries) == 0


def test_latest_is_each_keys_value_at_its_highest_step(job: Job) -> None:
    metrics_record(
        job.id,
        [
            MetricPoint("loss", 0.9, 1),
            MetricPoint("loss", 0.2, 3),
            MetricPoint("loss", 0.5, 2),  # reported late: not the latest
            MetricPoint("acc", 0.1, 0),
            MetricPoint("acc", 0.3, 0),  # the same step again: the last one recorded wins
        ],
    )
    JobFactory.create(project=job.project)

    with CaptureQueriesContext(connection) as queries:
        latest = metrics_latest(job)

    assert latest == {"loss": {"value": 0.2, "step": 3}, "acc": {"value": 0.3, "step": 0}}
    assert len(queries) == 1


def test_a_job_without_metrics_has_no_latest(job: Job) -> None:
    assert metrics_latest(job) == {}


def test_metrics_go_with_their_job(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("loss", 0.5, None)])

    job.delete()

    assert not Metric.objects.exists()
