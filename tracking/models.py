"""Tracking data of a job: the metrics it reported.

Written through ``tracking.services`` only; a later API (Ferry's own, MLflow's) reads and writes
through the same functions.
"""

from django.db import models

from jobs.models import Job


class Metric(models.Model):
    """One point of a job's metric ``key``: its ``value`` at ``step``.

    Steps need not be unique: a job may report a key twice at one step, as MLflow allows.
    """

    # No index of its own: the (job, key, step) index below serves lookups by job as well, and
    # one index less makes bulk inserts of long runs cheaper.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    step = models.BigIntegerField()
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["job", "key", "step"], name="tracking_metric_series"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.key}[{self.step}] = {self.value}"
