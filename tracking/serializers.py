"""What the tracking API reads and writes.

A training loop sends up to ``MAX_METRICS`` points a request, many times a minute, so the body of
``POST .../tracking`` is checked here in plain Python (``tracking_body``): a DRF serializer per
point costs more than storing it. The serializer classes below describe the same shapes for the
OpenAPI schema, and validate the small inputs (queries, runs) the usual way.

JSON has no NaN or infinity, and metrics may be either: they travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, both ways (``json_number``, ``number_of``).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from rest_framework import serializers

from core.api.serializers import InputSerializer
from core.errors import ValidationFailed
from tracking.parsing import MAX_KEY_CHARS, MAX_STEP, MetricPoint, json_number, number_of
from tracking.selectors import DEFAULT_BUCKETS, MAX_BUCKETS

MAX_METRICS = 10_000
MAX_PARAMS = 1000
MAX_TAGS = 1000
# The lowest step stored. Not -2**63: the buckets' floor division negates a step, and the
# negation of -2**63 does not fit in 64 bits.
MIN_STEP = -MAX_STEP

_METRIC_FIELDS = frozenset({"key", "value", "step", "timestamp"})
_BODY_FIELDS = frozenset({"metrics", "params", "tags"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- numbers and times as JSON ------------------------------------------------------------------


def json_number_or_none(value: float | None) -> float | str | None:
    return None if value is None else json_number(value)


def epoch_ms(at: datetime) -> int:
    """Milliseconds since 1970 (UTC): how the tracking API gives times, as MLflow does."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


# --- the body of POST .../tracking --------------------------------------------------------------


@dataclass(frozen=True)
class TrackingBody:
    points: list[MetricPoint]
    params: dict[str, str]
    tags: dict[str, str]


def tracking_body(data: object) -> TrackingBody:
    """The metrics, params and tags of a request body; raises ValidationFailed naming the first
    value that is wrong and what to send instead."""
    if not isinstance(data, Mapping):
        _refuse("body", 'Send a JSON object: {"metrics": [...], "params": {...}, "tags": {...}}.')
    unknown = sorted(str(name) for name in data if name not in _BODY_FIELDS)
    if unknown:
        _refuse(unknown[0], "Unknown field. Allowed fields: metrics, params, tags.")
    return TrackingBody(
        points=metric_points(data.get("metrics", [])),
        params=text_entries(data.get("params", {}), "params", MAX_PARAMS),
        tags=text_entries(data.get("tags", {}), "tags", MAX_TAGS),
    )


def metric_points(items: object) -> list[MetricPoint]:
    if not isinstance(items, list):
        _refuse("metrics", 'Send a list of points: [{"key": "loss", "value": 0.5, "step": 1}].')
    if len(items) > MAX_METRICS:
        _refuse(
            "metrics",
            f"At most {MAX_METRICS} points a request ({len(items)} sent); send them in batches.",
        )
    times: dict[int, datetime] = {}  # the points of one batch share few distinct times
    return [_point(index, item, times) for index, item in enumerate(items)]


def _point(index: int, item: object, times: dict[int, datetime]) -> MetricPoint:
    if type(item) is not dict:
        _refuse(f"metrics.{index}", 'Give each point as an object: {"key": "loss", "value": 0.5}.')
    if not item.keys() <= _METRIC_FIELDS:
        unknown = sorted(set(item) - _METRIC_FIELDS)[0]
        _refuse(
            f"metrics.{index}.{unknown}",
            "Unknown field. Allowed fields: key, value, step, timestamp.",
        )
    key = item.get("key")
    if type(key) is not str:
        _refuse(f"metrics.{index}.key", f"Give the metric's name as text; got {_shown(key)}.")
    value = number_of(item.get("value"))
    if value is None:
        _refuse(
            f"metrics.{index}.value",
            f'Give a number, or "NaN", "Infinity" or "-Infinity"; got {_shown(item.get("value"))}.',
        )
    step = item.get("step")
    if step is not None and (type(step) is not int or not MIN_STEP <= step <= MAX_STEP):
        _refuse(
            f"metrics.{index}.step",
            f"Give a whole number from {MIN_STEP} to {MAX_STEP}, or null for the key's next "
            f"step; got {_shown(step)}.",
        )
    timestamp = item.get("timestamp")
    at = None if timestamp is None else _time(index, timestamp, times)
    return MetricPoint(key, value, step, at)


def _time(index: int, timestamp: object, times: dict[int, datetime]) -> datetime:
    if type(timestamp) is int:
        found = times.get(timestamp)
        if found is not None:
            return found
        try:
            at = times[timestamp] = _EPOCH + timedelta(milliseconds=timestamp)
            return at
        except OverflowError:
            pass
    _refuse(
        f"metrics.{index}.timestamp",
        "Give whole milliseconds since 1970-01-01 UTC (a date between the years 1 and 9999), "
        f"or null for now; got {_shown(timestamp)}.",
    )


def text_entries(entries: object, what: str, limit: int) -> dict[str, str]:
    """``entries`` checked to be a JSON object of at most ``limit`` text values."""
    if not isinstance(entries, Mapping):
        _refuse(what, f'Send an object of text values: {{"lr": "0.01"}}; got {_shown(entries)}.')
    if len(entries) > limit:
        _refuse(what, f"At most {limit} {what} a request ({len(entries)} sent).")
    for key, value in entries.items():
        if type(value) is not str:
            _refuse(
                f"{what}.{key}",
                f'Give the value as text ("{value}" rather than {_shown(value)}).'
                if isinstance(value, int | float) and not isinstance(value, bool)
                else f"Give the value as text; got {_shown(value)}.",
            )
    return dict(entries)


def _shown(value: object) -> str:
    text = (
        "null"
        if value is None
        else "true"
        if value is True
        else "false"
        if value is False
        else repr(value)
    )
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(field: str, message: str) -> NoReturn:
    raise ValidationFailed(f"{field}: {message}", fields={field: [message]}, code="invalid")


# --- queries ------------------------------------------------------------------------------------


def step_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=MIN_STEP, max_value=MAX_STEP)


class SeriesQuery(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=MAX_KEY_CHARS, help_text="The metric's key.")
    buckets = serializers.IntegerField(
        min_value=1, max_value=MAX_BUCKETS, default=DEFAULT_BUCKETS,
        help_text=f"At most this many buckets (1 to {MAX_BUCKETS}).",
    )  # fmt: skip
    first_step = step_field()
    last_step = step_field()


class ExportQuery(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=MAX_KEY_CHARS, required=False)


MAX_COMPARED_JOBS = 20
MAX_COMPARED_METRICS = 20
COMPARE_DEFAULT_BUCKETS = 200
# Each job's every metric comes downsampled in one answer: 20 x 20 series of this many buckets
# are already 400,000 buckets.
COMPARE_MAX_BUCKETS = 1000


def _listed(text: str, what: str, limit: int) -> list[str]:
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if len(items) > limit:
        raise serializers.ValidationError(f"At most {limit} {what} ({len(items)} asked).")
    return items


class CompareQuery(serializers.Serializer[Any]):
    jobs = serializers.CharField(help_text="Job numbers, comma-separated: 1,2,5.")
    metrics = serializers.CharField(
        required=False, allow_blank=True, help_text="Metric keys, comma-separated: loss,acc."
    )
    params = serializers.CharField(
        required=False, allow_blank=True,
        help_text="Param keys, comma-separated; every param of each job if not given.",
    )  # fmt: skip
    buckets = serializers.IntegerField(
        min_value=1, max_value=COMPARE_MAX_BUCKETS, default=COMPARE_DEFAULT_BUCKETS
    )

    def validate_jobs(self, text: str) -> list[int]:
        items = _listed(text, "jobs", MAX_COMPARED_JOBS)
        # At most 9 digits, as in a job's URL: a longer number is no job's, and would not fit
        # the column it is compared with.
        wrong = [
            item for item in items if not (item.isascii() and item.isdigit() and len(item) <= 9)
        ]
        if wrong or not items:
            raise serializers.ValidationError(
                f"Give job numbers separated by commas, e.g. 1,2,5 (not {wrong[0]!r})."
                if wrong
                else "Give at least one job number."
            )
        return list(dict.fromkeys(int(item) for item in items))

    def validate_metrics(self, text: str) -> list[str]:
        return _listed(text, "metrics", MAX_COMPARED_METRICS)

    def validate_params(self, text: str) -> list[str]:
        return _listed(text, "params", MAX_PARAMS)


# --- runs ---------------------------------------------------------------------------------------


def text_field() -> serializers.CharField:
    """A param's or tag's value: kept as sent, blank and spaces included."""
    return serializers.CharField(allow_blank=True, trim_whitespace=False)


class RunCreateInput(InputSerializer):
    name = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, help_text="What the run is about."
    )
    params = serializers.DictField(child=text_field(), required=False)
    tags = serializers.DictField(child=text_field(), required=False)

    def to_internal_value(self, data: Any) -> Any:
        # DictField's CharField would quietly store 0.1 as "0.1"; the tracking endpoint refuses
        # numbers for params, and so does this one.
        if isinstance(data, Mapping):
            for what, limit in (("params", MAX_PARAMS), ("tags", MAX_TAGS)):
                if what in data:
                    try:
                        text_entries(data[what], what, limit)
                    except ValidationFailed as exc:
                        raise serializers.ValidationError(exc.fields) from exc
        return super().to_internal_value(data)


RUN_ENDINGS = ("succeeded", "failed", "stopped")


class RunEndInput(InputSerializer):
    # Text, not a ChoiceField: an enum named "status" with other values than the job's status
    # makes drf-spectacular rename the job's StatusEnum in the schema.
    status = serializers.CharField(help_text="succeeded, failed or stopped.")

    def validate_status(self, status: str) -> str:
        if status not in RUN_ENDINGS:
            raise serializers.ValidationError(
                f"A run ends as succeeded, failed or stopped, not {status!r}."
            )
        return status

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


# --- documentation of the shapes (the views build them in plain Python) ------------------------


def number_field(**kwargs: Any) -> serializers.JSONField:
    return serializers.JSONField(help_text='A number, or "NaN", "Infinity", "-Infinity".', **kwargs)


class MetricInput(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=MAX_KEY_CHARS)
    value = number_field()
    step = serializers.IntegerField(
        required=False, allow_null=True, help_text="null or absent: the key's next step."
    )
    timestamp = serializers.IntegerField(
        required=False, allow_null=True, help_text="Milliseconds since 1970 UTC; null: now."
    )


class TrackingInput(serializers.Serializer[Any]):
    metrics = MetricInput(many=True, required=False, help_text=f"At most {MAX_METRICS}.")
    params = serializers.DictField(
        child=text_field(), required=False,
        help_text=f"At most {MAX_PARAMS}; a param once logged keeps its value.",
    )  # fmt: skip
    tags = serializers.DictField(
        child=text_field(), required=False, help_text=f"At most {MAX_TAGS}."
    )


class TrackingCounts(serializers.Serializer[Any]):
    metrics = serializers.IntegerField()
    params = serializers.IntegerField()
    tags = serializers.IntegerField()


class LatestOutput(serializers.Serializer[Any]):
    value = number_field()
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField(help_text="Milliseconds since 1970 UTC.")


class SeriesSummaryOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    points = serializers.IntegerField()
    first_step = serializers.IntegerField()
    last_step = serializers.IntegerField()
    min = number_field(allow_null=True)
    max = number_field(allow_null=True)
    latest = LatestOutput()


class TrackingOutput(serializers.Serializer[Any]):
    params = serializers.DictField(child=serializers.CharField())
    tags = serializers.DictField(child=serializers.CharField())
    metrics = SeriesSummaryOutput(many=True)


class BucketOutput(serializers.Serializer[Any]):
    first_step = serializers.IntegerField()
    last_step = serializers.IntegerField()
    points = serializers.IntegerField()
    min = number_field(allow_null=True)
    max = number_field(allow_null=True)
    mean = number_field(allow_null=True)
    last = number_field()


class SeriesOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    points = serializers.IntegerField(help_text="In the whole series.")
    width = serializers.IntegerField(help_text="Steps per bucket; 1: each point as recorded.")
    buckets = BucketOutput(many=True)


class ComparedJobOutput(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    params = serializers.DictField(child=serializers.CharField())
    latest = serializers.DictField(child=LatestOutput(allow_null=True))
    series = serializers.DictField(child=SeriesOutput(allow_null=True))


class CompareOutput(serializers.Serializer[Any]):
    project = serializers.CharField()
    metrics = serializers.ListField(child=serializers.CharField())
    jobs = ComparedJobOutput(many=True)
