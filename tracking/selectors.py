"""Reads of a job's metrics, shaped for the API."""

from typing import TypedDict

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from jobs.models import Job
from tracking.models import Metric


class LatestMetric(TypedDict):
    value: float
    step: int


def metrics_latest(job: Job) -> dict[str, LatestMetric]:
    """Each of the job's metric keys with its value at the highest step (the last one recorded
    there, if a step has several), in one query."""
    ranked = (
        Metric.objects.filter(job=job)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("key")], order_by=[F("step").desc(), F("id").desc()]
            )
        )
        .filter(rank=1)
        .values_list("key", "value", "step")
    )
    return {key: {"value": value, "step": step} for key, value, step in ranked}
