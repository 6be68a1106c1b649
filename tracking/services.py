"""Recording a job's metrics."""

from collections.abc import Iterable

from django.db.models import Max
from django.utils import timezone

from tracking.models import Metric
from tracking.parsing import MetricPoint


def metrics_record(job_id: int, points: list[MetricPoint]) -> int:
    """Store ``points`` as metrics of the job; returns how many were stored.

    A point without a step gets the step after the highest its key has so far, counting the
    points before it in ``points``. Steps are assigned from what is stored, so one job's points
    must be recorded by one writer at a time (its agent), in the order they were reported.
    """
    if not points:
        return 0
    steps = _assign_steps(job_id, points)
    now = timezone.now()
    rows = [
        Metric(job_id=job_id, key=p.key, value=p.value, step=step, timestamp=now)
        for p, step in zip(points, steps, strict=True)
    ]
    return len(Metric.objects.bulk_create(rows))


def _assign_steps(job_id: int, points: list[MetricPoint]) -> list[int]:
    # Only keys with stepless points need what is stored; jobs that give steps cost no query.
    unstepped = {p.key for p in points if p.step is None}
    highest = _highest_steps(job_id, unstepped) if unstepped else {}
    steps: list[int] = []
    for point in points:
        step = point.step if point.step is not None else highest.get(point.key, -1) + 1
        highest[point.key] = max(step, highest.get(point.key, -1))
        steps.append(step)
    return steps


def _highest_steps(job_id: int, keys: Iterable[str]) -> dict[str, int]:
    rows = (
        Metric.objects.filter(job_id=job_id, key__in=list(keys))
        .values("key")
        .annotate(highest=Max("step"))
        .values_list("key", "highest")
    )
    return dict(rows)
