"""Recording a job's tracking data: metrics, params and tags.

Every writer comes through here: the agent (metric lines, TensorBoard files, system metrics),
Ferry's API and SDK, and the MLflow-compatible API. A batch of points is stored whole
(``Metric``) and summed up in the same transaction (``MetricSeries``, ``MetricBucket``), so that
reads never scan a run's points to chart it.

On PostgreSQL a batch costs a few statements whatever its size: the points go in by COPY, and the
buckets are summed up by the database from three arrays, as one INSERT ... ON CONFLICT. On SQLite
(one machine, one writer at a time) the same sums are made in Python.
"""

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from core.errors import ValidationFailed
from tracking.models import (
    BUCKET_LEVELS,
    Metric,
    MetricBucket,
    MetricSeries,
    Param,
    Tag,
    bucket_width,
)
from tracking.parsing import MAX_KEY_CHARS, MetricPoint, json_number

MAX_PARAM_VALUE_CHARS = 6000  # MLflow's limit, which its clients check too
MAX_TAG_VALUE_CHARS = 8000


@dataclass(frozen=True)
class _Row:
    """A point ready to store: its key's series id, step, value and time."""

    series: int
    key: str
    step: int
    value: float
    timestamp: datetime


@dataclass(frozen=True)
class MetricColumns:
    """Points that all have steps, as parallel lists: what an API parses a request into, with
    no object per point. ``times_ms``: milliseconds since 1970, 0 for now."""

    keys: list[str]
    values: list[float]
    steps: list[int]
    times_ms: list[int]

    def __len__(self) -> int:
        return len(self.keys)


def metrics_record(job_id: int, points: Sequence[MetricPoint]) -> int:
    """Store ``points`` as metrics of the job; returns how many were stored.

    A point without a step gets the step after the highest its key has so far, counting the
    points before it in ``points``; one without a timestamp, now. Steps are assigned from what is
    stored, so stepless points of one job must come from one writer at a time (its agent), in
    the order they were reported. Points with steps may come from several writers at once.
    """
    if not points:
        return 0
    _check_keys(points)
    if connection.vendor == "postgresql" and all(point.step is not None for point in points):
        return _record_in_one_statement(job_id, _columns(points))
    with transaction.atomic():
        series = _series_for(job_id, sorted({point.key for point in points}))
        rows = _rows(points, series, timezone.now())
        _series_update(series, rows)
        if connection.vendor == "postgresql":
            _points_copy(job_id, rows)
            _buckets_add_in_sql(rows)
        else:
            Metric.objects.bulk_create(
                Metric(job_id=job_id, key=r.key, value=r.value, step=r.step, timestamp=r.timestamp)
                for r in rows
            )
            _buckets_add(bucket_sums(rows))
    return len(rows)


def metrics_record_columns(job_id: int, batch: MetricColumns) -> int:
    """``metrics_record`` for points given as columns, all with steps: on PostgreSQL one
    statement stores them and sums them up, whatever their number."""
    if not batch:
        return 0
    _check_key_lengths(batch.keys)
    if connection.vendor == "postgresql":
        return _record_in_one_statement(job_id, batch)
    points = [
        MetricPoint(key, value, step, _instant(ms))
        for key, value, step, ms in zip(
            batch.keys, batch.values, batch.steps, batch.times_ms, strict=True
        )
    ]
    return metrics_record(job_id, points)


def _instant(milliseconds: int) -> datetime | None:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC) if milliseconds else None


def _columns(points: Sequence[MetricPoint]) -> MetricColumns:
    return MetricColumns(
        keys=[point.key for point in points],
        values=[point.value for point in points],
        steps=[point.step for point in points if point.step is not None],
        times_ms=[
            int(point.timestamp.timestamp() * 1000) if point.timestamp else 0 for point in points
        ],
    )


def _check_keys(points: Sequence[MetricPoint]) -> None:
    _check_key_lengths([point.key for point in points])


def _check_key_lengths(keys: Iterable[str]) -> None:
    for key in keys:
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise ValidationFailed(
                f"A metric's key must have 1 to {MAX_KEY_CHARS} characters; "
                f"{key[:40]!r}{'...' if len(key) > 40 else ''} has {len(key)}.",
                fields={"metrics": ["Metric key too long or empty."]},
                code="invalid_metric_key",
            )


# --- series -------------------------------------------------------------------------------------


def _series_for(job_id: int, keys: list[str]) -> dict[str, MetricSeries]:
    """The series of ``keys`` (made if new, with a placeholder summary), locked for this batch:
    one writer at a time per series, in key order, so two batches never deadlock."""
    now = timezone.now()
    MetricSeries.objects.bulk_create(
        [_placeholder(job_id, key, now) for key in keys], ignore_conflicts=True
    )
    locked = MetricSeries.objects.select_for_update().filter(job_id=job_id, key__in=keys)
    return {series.key: series for series in locked.order_by("key")}


def _placeholder(job_id: int, key: str, now: datetime) -> MetricSeries:
    """A new series; its summary is written with its first points (``points`` is 0 till then)."""
    return MetricSeries(
        job_id=job_id, key=key, first_step=0, last_step=0, latest_value=0.0, latest_step=0,
        latest_at=now,
    )  # fmt: skip


def _rows(
    points: Sequence[MetricPoint], series: Mapping[str, MetricSeries], now: datetime
) -> list[_Row]:
    highest = {
        key: s.last_step if s.points else -1 for key, s in series.items()
    }  # the next stepless point of a key goes one after
    rows = []
    for point in points:
        step = point.step if point.step is not None else highest[point.key] + 1
        highest[point.key] = max(step, highest[point.key])
        at = point.timestamp or now
        rows.append(_Row(series[point.key].id, point.key, step, point.value, at))
    return rows


def _series_update(series: Mapping[str, MetricSeries], rows: list[_Row]) -> None:
    by_key: dict[str, list[_Row]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row)
    for key, own in by_key.items():
        _summary_merge(series[key], own)
    fields = [
        "points", "first_step", "last_step", "min_value", "max_value", "latest_value",
        "latest_step", "latest_at",
    ]  # fmt: skip
    MetricSeries.objects.bulk_update([series[key] for key in by_key], fields)


def _summary_merge(series: MetricSeries, rows: list[_Row]) -> None:
    fresh = series.points == 0
    finite = [row.value for row in rows if not math.isnan(row.value)]
    steps = [row.step for row in rows]
    latest = _latest(rows)
    series.first_step = min(steps) if fresh else min(series.first_step, *steps)
    series.last_step = max(steps) if fresh else max(series.last_step, *steps)
    series.min_value = _least(None if fresh else series.min_value, min(finite, default=None))
    series.max_value = _greatest(None if fresh else series.max_value, max(finite, default=None))
    if fresh or latest.step >= series.latest_step:
        series.latest_value, series.latest_step, series.latest_at = (
            latest.value, latest.step, latest.timestamp
        )  # fmt: skip
    series.points += len(rows)


def _latest(rows: Sequence[_Row]) -> _Row:
    """The point at the highest step; of those at it, the last given."""
    best = rows[0]
    for row in rows[1:]:
        if row.step >= best.step:
            best = row
    return best


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


# --- points and buckets on PostgreSQL -----------------------------------------------------------


def _points_copy(job_id: int, rows: list[_Row]) -> None:
    table = Metric._meta.db_table
    with connection.cursor() as cursor:
        copy_sql = f"COPY {table} (job_id, key, value, step, timestamp) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row((job_id, row.key, row.value, row.step, row.timestamp))


def _array(values: Iterable[object]) -> str:
    """An array literal: one text parameter, not a list psycopg would quote item by item.
    Python's ``repr`` of floats (``nan``, ``inf``, ``1e-05``) is what PostgreSQL reads."""
    return "{" + ",".join(map(repr, values)) + "}"


# How a batch's sums join a bucket's (``b``) that has points already: both SQL paths end so.
_BUCKET_MERGE = """ON CONFLICT (series_id, level, start) DO UPDATE SET
            points = b.points + excluded.points,
            finite = b.finite + excluded.finite,
            min_value = least(b.min_value, excluded.min_value),
            max_value = greatest(b.max_value, excluded.max_value),
            total = b.total + excluded.total,
            last_value = CASE WHEN excluded.last_step >= b.last_step
                THEN excluded.last_value ELSE b.last_value END,
            last_step = greatest(b.last_step, excluded.last_step)"""


def _bucket_start(step: str) -> str:
    """floor(step / width) in SQL, for negative steps too (integer division truncates)."""
    return f"CASE WHEN {step} >= 0 THEN {step} / l.width ELSE -((-{step} - 1) / l.width) - 1 END"


def _buckets_add_in_sql(rows: list[_Row]) -> None:
    levels = ", ".join(f"({level}, {bucket_width(level)})" for level in BUCKET_LEVELS)
    table = MetricBucket._meta.db_table
    start = _bucket_start("p.step")
    finite = "FILTER (WHERE p.value <> 'NaN')"  # NaN equals NaN in PostgreSQL
    sql = f"""
        INSERT INTO {table} AS b (series_id, level, start, points, finite, min_value, max_value,
            total, last_step, last_value)
        SELECT p.series, l.level, {start} AS bucket, count(*), count(*) {finite},
            min(p.value) {finite}, max(p.value) {finite}, coalesce(sum(p.value) {finite}, 0),
            max(p.step), (array_agg(p.value ORDER BY p.step DESC, p.ord DESC))[1]
        FROM unnest(%s::bigint[], %s::bigint[], %s::float8[]) WITH ORDINALITY
            AS p(series, step, value, ord)
        CROSS JOIN (VALUES {levels}) AS l(level, width)
        GROUP BY p.series, l.level, bucket
        ORDER BY p.series, l.level, bucket  -- one lock order for every writer
        {_BUCKET_MERGE}
    """
    params = [
        _array(row.series for row in rows),
        _array(row.step for row in rows),
        _array(row.value for row in rows),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- points with steps on PostgreSQL: one statement -------------------------------------------
#
# The points go in as one JSON text of [key, value, step, ms] lists (NaN and the infinities as
# strings, which float8 reads). One statement stores them, sums each key's up into its series
# (made if new: a series of no points yet, made by the path above, counts as new) and into the
# buckets. Series rows are locked in key order, then buckets in (series, level, start) order:
# the same order as the path above, so writers of one job never deadlock.


def _record_in_one_statement(job_id: int, batch: MetricColumns) -> int:
    numbers: Sequence[float | str] = batch.values
    if not all(map(math.isfinite, batch.values)):
        numbers = [json_number(value) for value in batch.values]
    points = json.dumps(list(zip(batch.keys, numbers, batch.steps, batch.times_ms, strict=True)))
    with connection.cursor() as cursor:
        cursor.execute(_ONE_STATEMENT, {"job": job_id, "points": points, "now": timezone.now()})
    return len(batch)


def _one_statement() -> str:
    metric, series, bucket = (
        Metric._meta.db_table, MetricSeries._meta.db_table, MetricBucket._meta.db_table
    )  # fmt: skip
    levels = ", ".join(f"({level}, {bucket_width(level)})" for level in BUCKET_LEVELS)
    start = _bucket_start("p.s")
    finite = "FILTER (WHERE p.v <> 'NaN')"
    fresh = "m.points = 0"  # a series made without points yet: take the batch's summary whole
    return f"""
        WITH p AS MATERIALIZED (
            SELECT e->>0 AS k, (e->>1)::float8 AS v, (e->>2)::bigint AS s,
                CASE WHEN (e->>3)::bigint > 0 THEN to_timestamp((e->>3)::bigint / 1000.0)
                    ELSE %(now)s END AS t,
                x.ord
            FROM jsonb_array_elements(%(points)s::jsonb) WITH ORDINALITY AS x(e, ord)
        ), stored AS (
            INSERT INTO {metric} (job_id, key, value, step, timestamp)
            SELECT %(job)s, p.k, p.v, p.s, p.t FROM p ORDER BY p.ord
        ), batch AS (
            SELECT p.k, count(*) AS points, min(p.s) AS first_step, max(p.s) AS last_step,
                min(p.v) {finite} AS min_value, max(p.v) {finite} AS max_value,
                (array_agg(p.v ORDER BY p.s DESC, p.ord DESC))[1] AS latest_value,
                (array_agg(p.t ORDER BY p.s DESC, p.ord DESC))[1] AS latest_at
            FROM p GROUP BY p.k
        ), summed AS (
            INSERT INTO {series} AS m (job_id, key, points, first_step, last_step, min_value,
                max_value, latest_value, latest_step, latest_at)
            SELECT %(job)s, k, points, first_step, last_step, min_value, max_value,
                latest_value, last_step, latest_at
            FROM batch ORDER BY k
            ON CONFLICT (job_id, key) DO UPDATE SET
                points = m.points + excluded.points,
                first_step = CASE WHEN {fresh} THEN excluded.first_step
                    ELSE least(m.first_step, excluded.first_step) END,
                last_step = CASE WHEN {fresh} THEN excluded.last_step
                    ELSE greatest(m.last_step, excluded.last_step) END,
                min_value = CASE WHEN {fresh} THEN excluded.min_value
                    ELSE least(m.min_value, excluded.min_value) END,
                max_value = CASE WHEN {fresh} THEN excluded.max_value
                    ELSE greatest(m.max_value, excluded.max_value) END,
                latest_value = CASE WHEN {fresh} OR excluded.latest_step >= m.latest_step
                    THEN excluded.latest_value ELSE m.latest_value END,
                latest_at = CASE WHEN {fresh} OR excluded.latest_step >= m.latest_step
                    THEN excluded.latest_at ELSE m.latest_at END,
                latest_step = CASE WHEN {fresh} THEN excluded.latest_step
                    ELSE greatest(m.latest_step, excluded.latest_step) END
            RETURNING m.id, m.key
        )
        INSERT INTO {bucket} AS b (series_id, level, start, points, finite, min_value,
            max_value, total, last_step, last_value)
        SELECT summed.id, l.level, {start} AS bucket, count(*), count(*) {finite},
            min(p.v) {finite}, max(p.v) {finite}, coalesce(sum(p.v) {finite}, 0), max(p.s),
            (array_agg(p.v ORDER BY p.s DESC, p.ord DESC))[1]
        FROM p JOIN summed ON summed.key = p.k
        CROSS JOIN (VALUES {levels}) AS l(level, width)
        GROUP BY summed.id, l.level, bucket
        ORDER BY summed.id, l.level, bucket
        {_BUCKET_MERGE}
    """


_ONE_STATEMENT = _one_statement()


# --- buckets in Python (SQLite) -----------------------------------------------------------------


@dataclass
class BucketSum:
    """What the points of one bucket add up to; as ``MetricBucket`` keeps it."""

    points: int = 0
    finite: int = 0
    min_value: float | None = None
    max_value: float | None = None
    total: float = 0.0
    last_step: int | None = None
    last_value: float = 0.0

    def add(self, step: int, value: float) -> None:
        self.points += 1
        if not math.isnan(value):
            self.finite += 1
            self.min_value = _least(self.min_value, value)
            self.max_value = _greatest(self.max_value, value)
            self.total += value
        if self.last_step is None or step >= self.last_step:
            self.last_step, self.last_value = step, value


BucketKey = tuple[int, int, int]  # series id, level, start


def bucket_sums(rows: Iterable[_Row]) -> dict[BucketKey, BucketSum]:
    """The batch's points summed up per bucket at every level: what the SQL above computes."""
    sums: dict[BucketKey, BucketSum] = {}
    widths = [(level, bucket_width(level)) for level in BUCKET_LEVELS]
    for row in rows:
        for level, width in widths:
            key = (row.series, level, row.step // width)  # floor division, as in the SQL
            found = sums.get(key)
            if found is None:
                found = sums[key] = BucketSum()
            found.add(row.step, row.value)
    return sums


def _buckets_add(sums: dict[BucketKey, BucketSum]) -> None:
    series_ids = {key[0] for key in sums}
    stored = {
        (bucket.series_id, bucket.level, bucket.start): bucket
        for bucket in MetricBucket.objects.filter(series_id__in=series_ids)
        if (bucket.series_id, bucket.level, bucket.start) in sums
    }
    new, changed = [], []
    for key, batch in sorted(sums.items()):
        bucket = stored.get(key)
        if bucket is None:
            new.append(_bucket_new(key, batch))
        else:
            _bucket_merge(bucket, batch)
            changed.append(bucket)
    MetricBucket.objects.bulk_create(new)
    fields = ["points", "finite", "min_value", "max_value", "total", "last_step", "last_value"]
    MetricBucket.objects.bulk_update(changed, fields)


def _bucket_new(key: BucketKey, batch: BucketSum) -> MetricBucket:
    series_id, level, start = key
    assert batch.last_step is not None  # a sum has at least one point
    return MetricBucket(
        series_id=series_id, level=level, start=start, points=batch.points, finite=batch.finite,
        min_value=batch.min_value, max_value=batch.max_value, total=batch.total,
        last_step=batch.last_step, last_value=batch.last_value,
    )  # fmt: skip


def _bucket_merge(bucket: MetricBucket, batch: BucketSum) -> None:
    assert batch.last_step is not None
    bucket.points += batch.points
    bucket.finite += batch.finite
    bucket.min_value = _least(bucket.min_value, batch.min_value)
    bucket.max_value = _greatest(bucket.max_value, batch.max_value)
    bucket.total += batch.total
    if batch.last_step >= bucket.last_step:
        bucket.last_step, bucket.last_value = batch.last_step, batch.last_value


# --- params and tags ----------------------------------------------------------------------------


def params_record(job_id: int, params: Mapping[str, str]) -> None:
    """Log params of the job. A param keeps its first value: logging it again with the same
    value is fine, with another one is refused (MLflow's rule: a run's inputs do not change)."""
    if not params:
        return
    _check_entries(params, MAX_PARAM_VALUE_CHARS, "param")
    with transaction.atomic():
        Param.objects.bulk_create(
            [Param(job_id=job_id, key=key, value=value) for key, value in params.items()],
            ignore_conflicts=True,
        )
        stored = dict(
            Param.objects.filter(job_id=job_id, key__in=list(params)).values_list("key", "value")
        )
        changed = sorted(key for key, value in params.items() if stored.get(key) != value)
        if changed:
            key = changed[0]
            raise ValidationFailed(
                f"Param {key!r} is already logged with value {stored[key]!r}; a param cannot "
                f"change (asked: {params[key]!r}). Log the new value under another key, or "
                "start a new run.",
                fields={"params": [f"{key} cannot change."]},
                code="param_changed",
            )


def tags_set(job_id: int, tags: Mapping[str, str]) -> None:
    """Set tags of the job, replacing their earlier values."""
    _check_entries(tags, MAX_TAG_VALUE_CHARS, "tag")
    Tag.objects.bulk_create(
        [Tag(job_id=job_id, key=key, value=value) for key, value in tags.items()],
        update_conflicts=True,
        unique_fields=["job", "key"],
        update_fields=["value"],
    )


def tag_delete(job_id: int, key: str) -> bool:
    deleted, _ = Tag.objects.filter(job_id=job_id, key=key).delete()
    return bool(deleted)


def _check_entries(entries: Mapping[str, str], max_value: int, what: str) -> None:
    for key, value in entries.items():
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise ValidationFailed(
                f"A {what}'s key must have 1 to {MAX_KEY_CHARS} characters; "
                f"{key[:40]!r} has {len(key)}.",
                fields={f"{what}s": [f"Invalid {what} key."]},
                code=f"invalid_{what}_key",
            )
        if len(value) > max_value:
            raise ValidationFailed(
                f"The value of {what} {key!r} has {len(value)} characters; at most {max_value} "
                "are kept. Shorten it, or keep it as a file in the job's output.",
                fields={f"{what}s": [f"{key}: value too long."]},
                code=f"{what}_value_too_long",
            )
