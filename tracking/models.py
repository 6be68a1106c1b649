"""Tracking data of a job: the metrics it reported, its params and tags.

Written through ``tracking.services`` only; Ferry's API, the agent (metric lines, TensorBoard
files, system metrics) and the MLflow-compatible API all write through the same functions.

A metric's points are kept whole (``Metric``) for export and exact histories, and summed up as
they arrive: per series (``MetricSeries``: count, range, latest) and per bucket of steps at a few
widths (``MetricBucket``), so that a chart of any run, however long, reads a bounded number of
rows.
"""

from django.db import models

from jobs.models import Job

# The widths of the buckets of steps that MetricBucket keeps: 16**1 ... 16**6 steps. A read of
# N buckets picks the narrowest width giving at most 4N buckets over the steps asked for.
BUCKET_LEVELS = (1, 2, 3, 4, 5, 6)
BUCKET_BASE = 16


def bucket_width(level: int) -> int:
    return int(BUCKET_BASE**level)


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


class MetricSeries(models.Model):
    """One metric key of a job, summed up as its points arrive.

    ``latest_*`` is the point at the highest step (of those at that step, the last recorded):
    what a table of runs shows and what searches and comparisons compare. The extremes leave
    out NaN, which orders above everything in PostgreSQL and nowhere in Python.
    """

    # No index of its own: the unique (job, key) one serves lookups by job.
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="metric_series", db_index=False
    )
    key = models.CharField(max_length=250)
    points = models.BigIntegerField(default=0)
    first_step = models.BigIntegerField()
    last_step = models.BigIntegerField()
    min_value = models.FloatField(null=True)
    max_value = models.FloatField(null=True)
    latest_value = models.FloatField()
    latest_step = models.BigIntegerField()
    latest_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "key"], name="tracking_series_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.key} ({self.points} points)"


class MetricBucket(models.Model):
    """The points of a series whose steps fall in one bucket: steps ``start * width`` to
    ``(start + 1) * width - 1``, width ``bucket_width(level)``. Extremes and sum leave out NaN
    (``finite`` counts the rest); ``last_*`` is the point at the bucket's highest step."""

    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, db_index=False)
    level = models.PositiveSmallIntegerField()
    start = models.BigIntegerField()
    points = models.BigIntegerField()
    finite = models.BigIntegerField()
    min_value = models.FloatField(null=True)
    max_value = models.FloatField(null=True)
    total = models.FloatField()
    last_step = models.BigIntegerField()
    last_value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["series", "level", "start"], name="tracking_bucket_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.series_id} level {self.level} bucket {self.start}"


class Param(models.Model):
    """A job's parameter, as logged (MLflow's log_param): once set, its value stays."""

    # No index of its own: the unique (job, key) one serves lookups by job.
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="logged_params", db_index=False
    )
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "key"], name="tracking_param_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.key}={self.value}"


class Tag(models.Model):
    """A job's tag: a key with a value that may be set again."""

    # No index of its own: the unique (job, key) one serves lookups by job.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="tags", db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "key"], name="tracking_tag_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.key}={self.value}"


class DeletedRun(models.Model):
    """A job deleted through the MLflow API (``runs/delete``): MLflow's searches leave it out
    until it is restored; Ferry's own views of the job are unchanged."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="run_deletion")
    deleted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.job_id} deleted at {self.deleted_at}"


class RunArtifacts(models.Model):
    """The files logged to a job through MLflow's artifact API, as one tree: each file logged
    makes a new tree of the earlier ones and it (trees are immutable, and a tree keeps its
    blobs from the garbage collector)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="run_artifacts")
    tree = models.ForeignKey("blobs.Tree", on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.job_id} artifacts {self.tree_id}"
