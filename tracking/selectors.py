"""Reads of a job's tracking data, shaped for the APIs.

A chart reads a series downsampled (``series_read``): from the buckets that ``tracking.services``
keeps, at the narrowest width that gives at most 4N buckets over the steps asked for, merged by
groups into at most N. It reads at most about 4N rows, however long the run.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.db import connection
from django.db.models import Q

from jobs.models import Job
from tracking.models import BUCKET_LEVELS, Metric, MetricBucket, MetricSeries, bucket_width

# How many buckets a read gives when not told; at most MAX_BUCKETS.
DEFAULT_BUCKETS = 500
MAX_BUCKETS = 10_000


class LatestMetric(TypedDict):
    value: float
    step: int


def metrics_latest(job: Job) -> dict[str, LatestMetric]:
    """Each of the job's metric keys with its value at the highest step (the last one recorded
    there, if a step has several)."""
    rows = MetricSeries.objects.filter(job=job, points__gt=0).values_list(
        "key", "latest_value", "latest_step"
    )
    return {key: {"value": value, "step": step} for key, value, step in rows}


def series_of(job: Job) -> list[MetricSeries]:
    """The job's metric series, by key: their summaries (points, steps, extremes, latest)."""
    return list(MetricSeries.objects.filter(job=job, points__gt=0).order_by("key"))


@dataclass(frozen=True)
class Bucket:
    """The points of a series with steps from ``first_step`` to ``last_step`` (the steps of the
    first and last point in it): how many, their extremes and mean (NaN left out; None if all
    were NaN), and the value at the highest step."""

    first_step: int
    last_step: int
    points: int
    min: float | None
    max: float | None
    mean: float | None
    last: float


@dataclass(frozen=True)
class SeriesRead:
    key: str
    points: int  # in the whole series
    width: int  # steps per bucket; 1: every point as it was recorded
    buckets: list[Bucket]


def series_read(
    job: Job,
    key: str,
    buckets: int = DEFAULT_BUCKETS,
    first_step: int | None = None,
    last_step: int | None = None,
) -> SeriesRead | None:
    """The series ``key`` of the job, in at most ``buckets`` buckets, between two steps if
    given; None if the job has no such series.

    A series of at most ``buckets`` points in the range comes as its points, each its own
    bucket. The first and last bucket of a range may hold points up to one bucket's width
    outside it: buckets are aligned to the widths kept, not to the range.
    """
    series = MetricSeries.objects.filter(job=job, key=key, points__gt=0).first()
    if series is None:
        return None
    low = series.first_step if first_step is None else max(first_step, series.first_step)
    high = series.last_step if last_step is None else min(last_step, series.last_step)
    if high < low:
        return SeriesRead(key, series.points, 1, [])
    whole = first_step is None and last_step is None
    if (whole and series.points <= buckets) or high - low + 1 <= buckets:
        points = _points(series, low, high, limit=4 * buckets)
        if len(points) <= buckets:
            return SeriesRead(key, series.points, 1, points)
    level = _level(high - low + 1, buckets)
    width = bucket_width(level)
    group = math.ceil((high // width - low // width + 1) / buckets)
    rows = _bucket_rows(series.id, level, low // width, high // width)
    return SeriesRead(key, series.points, width * group, _merged(rows, low // width, group, width))


def _level(span: int, buckets: int) -> int:
    """The narrowest width giving at most 4 buckets per one asked for; else the widest."""
    for level in BUCKET_LEVELS:
        if span / bucket_width(level) <= 4 * buckets:
            return level
    return BUCKET_LEVELS[-1]


def _points(series: MetricSeries, low: int, high: int, limit: int) -> list[Bucket]:
    rows = (
        Metric.objects.filter(job_id=series.job_id, key=series.key, step__range=(low, high))
        .order_by("step", "id")
        .values_list("step", "value")[:limit]
    )
    return [_point(step, value) for step, value in rows]


def _point(step: int, value: float) -> Bucket:
    finite = None if math.isnan(value) else value
    return Bucket(step, step, 1, finite, finite, finite, value)


BucketRow = tuple[int, int, int, float | None, float | None, float, int, float]


def _bucket_rows(series_id: int, level: int, first: int, last: int) -> list[BucketRow]:
    rows = MetricBucket.objects.filter(
        series_id=series_id, level=level, start__range=(first, last)
    ).order_by("start")
    query = rows.values_list(
        "start", "points", "finite", "min_value", "max_value", "total", "last_step", "last_value"
    )
    # Straight from the driver: a few thousand rows through Django's conversions cost more than
    # the query.
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _merged(rows: Sequence[BucketRow], first: int, group: int, width: int) -> list[Bucket]:
    merged: list[Bucket] = []
    current: list[BucketRow] = []
    for row in rows:
        if current and (row[0] - first) // group != (current[0][0] - first) // group:
            merged.append(_merge(current, width))
            current = []
        current.append(row)
    if current:
        merged.append(_merge(current, width))
    return merged


def _merge(rows: Sequence[BucketRow], width: int) -> Bucket:
    finite = sum(row[2] for row in rows)
    lows = [row[3] for row in rows if row[3] is not None]
    highs = [row[4] for row in rows if row[4] is not None]
    last = max(rows, key=lambda row: row[6])
    return Bucket(
        first_step=rows[0][0] * width,  # the bucket's first step, not its first point's
        last_step=last[6],
        points=sum(row[1] for row in rows),
        min=min(lows, default=None),
        max=max(highs, default=None),
        mean=sum(row[5] for row in rows) / finite if finite else None,
        last=last[7],
    )


@dataclass(frozen=True)
class HistoryPoint:
    step: int
    value: float
    timestamp: datetime


Cursor = tuple[int, int]  # (step, id) of the last point a page gave


def metric_history(
    job: Job, key: str, *, after: Cursor | None = None, limit: int | None = None
) -> list[tuple[Cursor, HistoryPoint]]:
    """Every point of the series by step (then as recorded), after ``after``: pages of
    (cursor, point), for MLflow's get-history; the series' index gives them in order."""
    rows = Metric.objects.filter(job=job, key=key)
    if after is not None:
        step, last_id = after
        rows = rows.filter(Q(step__gt=step) | Q(step=step, id__gt=last_id))
    ordered = rows.order_by("step", "id").values_list("id", "step", "value", "timestamp")
    if limit is not None:
        ordered = ordered[:limit]
    return [((step, row_id), HistoryPoint(step, value, at)) for row_id, step, value, at in ordered]


def metrics_export(job: Job, key: str | None = None) -> Iterator[tuple[str, int, float, datetime]]:
    """Every point of the job (of one key if given) as (key, step, value, timestamp), by key,
    then step, then as recorded; streamed from the database in chunks."""
    rows = Metric.objects.filter(job=job)
    if key is not None:
        rows = rows.filter(key=key)
    ordered = rows.order_by("key", "step", "id").values_list("key", "step", "value", "timestamp")
    yield from ordered.iterator(chunk_size=5000)
