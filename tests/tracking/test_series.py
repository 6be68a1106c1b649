"""A series summed up as it is recorded, and read back downsampled from those sums."""

import math
import random
import re
from collections.abc import Sequence
from functools import partial

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import ValidationFailed
from jobs.models import Job
from tests.fleet.factories import JobFactory
from tests.support.concurrency import at_once
from tracking.models import Metric, MetricBucket, MetricSeries, Param, Tag, bucket_width
from tracking.parsing import MetricPoint
from tracking.selectors import Bucket, series_read
from tracking.services import (
    BucketSum,
    _Row,
    bucket_sums,
    metrics_record,
    params_record,
    tags_set,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def job() -> Job:
    created: Job = JobFactory.create()
    return created


def stored_buckets(job: Job) -> dict[tuple[int, int, int], BucketSum]:
    return {
        (b.series_id, b.level, b.start): BucketSum(
            b.points, b.finite, b.min_value, b.max_value, b.total, b.last_step, b.last_value
        )
        for b in MetricBucket.objects.filter(series__job=job)
    }


def expected_buckets(job: Job) -> dict[tuple[int, int, int], BucketSum]:
    """The sums worked out from the stored points, in Python, in the order they were stored."""
    series = dict(MetricSeries.objects.filter(job=job).values_list("key", "id"))
    rows = [
        _Row(series[key], key, step, value, at)
        for key, step, value, at in Metric.objects.filter(job=job)
        .order_by("id")
        .values_list("key", "step", "value", "timestamp")
    ]
    return bucket_sums(rows)


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))


def assert_sums_equal(
    got: dict[tuple[int, int, int], BucketSum], want: dict[tuple[int, int, int], BucketSum]
) -> None:
    assert got.keys() == want.keys()
    for key, sums in want.items():
        found = got[key]
        assert (found.points, found.finite, found.last_step) == (
            sums.points,
            sums.finite,
            sums.last_step,
        ), key
        for name in ("min_value", "max_value", "total", "last_value"):
            assert same(getattr(found, name), getattr(sums, name)), (key, name)


def test_the_database_sums_the_buckets_as_python_does(job: Job) -> None:
    rng = random.Random(3)
    for _ in range(4):
        points = [
            MetricPoint(
                rng.choice(["loss", "acc", "system/gpu0/utilization_percent"]),
                rng.choice([rng.uniform(-5, 5), math.nan, math.inf, 0.0]),
                rng.randrange(-300, 70_000),  # out of order, repeated, negative
            )
            for _ in range(500)
        ]
        metrics_record(job.id, points)

    assert_sums_equal(stored_buckets(job), expected_buckets(job))


def test_a_series_summary_follows_its_points(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("loss", 0.9, 5), MetricPoint("loss", math.nan, 9)])
    metrics_record(job.id, [MetricPoint("loss", 0.1, 2), MetricPoint("loss", 0.4, 9)])

    series = MetricSeries.objects.get(job=job, key="loss")
    assert (series.points, series.first_step, series.last_step) == (4, 2, 9)
    assert (series.min_value, series.max_value) == (0.1, 0.9)  # NaN left out
    # Of the two points at the highest step, the one recorded last.
    assert (series.latest_step, series.latest_value) == (9, 0.4)


def brute_force(points: Sequence[tuple[int, float]], first: int, last: int) -> Bucket:
    inside = [(step, value) for step, value in points if first <= step <= last]
    finite = [value for _, value in inside if not math.isnan(value)]
    top = max(step for step, _ in inside)
    return Bucket(
        first_step=first,
        last_step=top,
        points=len(inside),
        min=min(finite, default=None),
        max=max(finite, default=None),
        mean=sum(finite) / len(finite) if finite else None,
        last=[value for step, value in inside if step == top][-1],
    )


def test_a_long_series_reads_as_at_most_the_buckets_asked_for(job: Job) -> None:
    rng = random.Random(5)
    points = [(step, rng.gauss(0, 1)) for step in range(20_000)]
    for first in range(0, len(points), 5000):
        chunk = points[first : first + 5000]
        metrics_record(job.id, [MetricPoint("loss", value, step) for step, value in chunk])

    read = series_read(job, "loss", buckets=100)

    assert read is not None
    assert read.points == 20_000
    assert 50 <= len(read.buckets) <= 100
    ends = [bucket.first_step for bucket in read.buckets[1:]] + [20_000]
    for bucket, end in zip(read.buckets, ends, strict=True):
        want = brute_force(points, bucket.first_step, end - 1)
        assert (bucket.first_step, bucket.last_step, bucket.points) == (
            want.first_step,
            want.last_step,
            want.points,
        )
        assert same(bucket.min, want.min)
        assert same(bucket.max, want.max)
        assert same(bucket.mean, want.mean)
        assert same(bucket.last, want.last)


def test_a_read_costs_the_same_however_long_the_series(job: Job) -> None:
    def statements(count: int) -> tuple[int, int]:
        key = f"s{count}"
        metrics_record(job.id, [MetricPoint(key, float(i), i) for i in range(count)])
        with CaptureQueriesContext(connection) as queries:
            read = series_read(job, key, buckets=50)
        assert read is not None
        assert len(read.buckets) <= 50
        return len(queries), len(read.buckets)

    assert statements(2_000)[0] == statements(60_000)[0] == 2


def test_a_short_series_or_a_narrow_range_reads_as_its_points(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("acc", i / 10, i * 2) for i in range(300)])

    whole = series_read(job, "acc", buckets=500)
    narrow = series_read(job, "acc", buckets=50, first_step=100, last_step=120)

    assert whole is not None
    assert narrow is not None
    assert whole.width == 1
    assert [b.last_step for b in whole.buckets] == list(range(0, 600, 2))
    assert [(b.first_step, b.last) for b in narrow.buckets] == [
        (step, step / 20) for step in range(100, 121, 2)
    ]


def test_a_range_reads_only_the_buckets_in_it(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("loss", float(i), i) for i in range(50_000)])

    read = series_read(job, "loss", buckets=20, first_step=10_000, last_step=19_999)

    assert read is not None
    assert len(read.buckets) <= 20
    assert read.buckets[0].first_step <= 10_000 < read.buckets[0].first_step + read.width
    assert 19_999 <= read.buckets[-1].last_step < 20_000 + bucket_width(3)


def test_an_unknown_series_reads_as_none(job: Job) -> None:
    assert series_read(job, "nope") is None


@pytest.mark.django_db(transaction=True)
def test_batches_at_once_on_one_series_add_up(job: Job) -> None:
    def record(offset: int) -> None:
        metrics_record(job.id, [MetricPoint("loss", 1.0, offset + i) for i in range(200)])

    outcomes = at_once(*(partial(record, offset) for offset in (0, 100, 1000)))

    assert outcomes == ["ok"] * 3

    series = MetricSeries.objects.get(job=job, key="loss")
    assert series.points == 600
    assert_sums_equal(stored_buckets(job), expected_buckets(job))


def test_a_param_keeps_its_first_value(job: Job) -> None:
    params_record(job.id, {"lr": "0.01", "layers": "3"})
    params_record(job.id, {"lr": "0.01"})  # the same again: fine

    already = re.escape("'lr' is already logged with value '0.01'")
    with pytest.raises(ValidationFailed, match=already):
        params_record(job.id, {"batch": "64", "lr": "0.1"})

    assert dict(Param.objects.filter(job=job).values_list("key", "value")) == {
        "lr": "0.01",
        "layers": "3",
    }


def test_tags_are_set_again_and_overlong_values_refused(job: Job) -> None:
    tags_set(job.id, {"stage": "dev"})
    tags_set(job.id, {"stage": "prod", "owner": "ml"})

    with pytest.raises(ValidationFailed, match="at most 8000"):
        tags_set(job.id, {"notes": "x" * 8001})

    assert dict(Tag.objects.filter(job=job).values_list("key", "value")) == {
        "stage": "prod",
        "owner": "ml",
    }


def test_an_empty_or_overlong_key_is_refused_and_nothing_is_stored(job: Job) -> None:
    points = [MetricPoint("loss", 1.0, 1), MetricPoint("k" * 251, 1.0, 1)]

    with pytest.raises(ValidationFailed, match="1 to 250 characters"):
        metrics_record(job.id, points)

    assert not Metric.objects.filter(job=job).exists()
    assert not MetricSeries.objects.filter(job=job).exists()


def test_batches_with_and_without_steps_sum_up_alike(job: Job) -> None:
    metrics_record(job.id, [MetricPoint("loss", float(i), None) for i in range(300)])
    metrics_record(job.id, [MetricPoint("loss", float(i), 1000 + i) for i in range(300)])
    metrics_record(job.id, [MetricPoint("loss", 5.0, None)])  # one after the highest step

    series = MetricSeries.objects.get(job=job, key="loss")
    assert (series.points, series.first_step, series.last_step) == (601, 0, 1300)
    assert (series.latest_step, series.latest_value) == (1300, 5.0)
    assert (series.min_value, series.max_value) == (0.0, 299.0)
    assert_sums_equal(stored_buckets(job), expected_buckets(job))


def test_a_series_made_without_points_takes_a_stepped_batch_whole(job: Job) -> None:
    # A stepless batch refused after its series was made leaves a series of no points.
    MetricSeries.objects.create(
        job=job, key="acc", first_step=0, last_step=0, latest_value=0.0, latest_step=0,
        latest_at=job.created_at,
    )  # fmt: skip

    metrics_record(job.id, [MetricPoint("acc", 0.7, 50), MetricPoint("acc", 0.9, 60)])

    series = MetricSeries.objects.get(job=job, key="acc")
    assert (series.points, series.first_step, series.last_step) == (2, 50, 60)
    assert (series.min_value, series.latest_value) == (0.7, 0.9)
