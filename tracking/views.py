"""Ferry's own tracking API: a job's metrics, params and tags; external runs; comparisons.

Views translate HTTP; ``tracking.services`` writes and ``tracking.selectors`` reads. The
endpoints that record and read one job's data take that job's own token too
(``accepts_job_tokens``): the SDK in a job's code talks to them with it.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from django.db import DataError, transaction
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from core.api.serializers import validated
from core.errors import NotFound, ValidationFailed
from jobs import services as job_services
from jobs.models import Job, JobStatus
from jobs.selectors import job_get, jobs_of
from jobs.serializers import JobOutput
from projects.models import Project
from projects.policy import ProjectAction
from projects.selectors import project_get
from tracking import selectors, services
from tracking.access import check_may_read, check_may_record
from tracking.models import MetricSeries, Param, Tag
from tracking.parsing import MAX_STEP, json_number
from tracking.serializers import (
    CompareOutput,
    CompareQuery,
    ExportQuery,
    RunCreateInput,
    RunEndInput,
    SeriesOutput,
    SeriesQuery,
    TrackingCounts,
    TrackingInput,
    TrackingOutput,
    epoch_ms,
    json_number_or_none,
    tracking_body,
)

# --- one job's tracking data --------------------------------------------------------------------


def _job(request: Request, owner: str, name: str, number: str) -> Job:
    """The job, with its project, for tracking: without what ``jobs_of`` fetches for the job
    API (inputs, allocations), which a training loop's every batch would pay for. Who may read
    or record is checked by the caller (``tracking.access``)."""
    project = project_get(request.user, owner, name, ProjectAction.VIEW)
    job = Job.objects.filter(project=project, number=int(number)).first()
    if job is None:
        raise NotFound(f"{project.full_name} has no job {number}.")
    job.project = project
    return job


def _latest(series: MetricSeries) -> dict[str, object]:
    return {
        "value": json_number(series.latest_value),
        "step": series.latest_step,
        "timestamp": epoch_ms(series.latest_at),
    }


def _summary(series: MetricSeries) -> dict[str, object]:
    return {
        "key": series.key,
        "points": series.points,
        "first_step": series.first_step,
        "last_step": series.last_step,
        "min": json_number_or_none(series.min_value),
        "max": json_number_or_none(series.max_value),
        "latest": _latest(series),
    }


class TrackingView(APIView):
    """Record a job's metrics, params and tags, all or nothing; read them back summed up."""

    accepts_job_tokens = True
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(responses=TrackingOutput)
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        job = _job(request, owner, name, number)
        check_may_read(request, job)
        return Response(
            {
                "params": dict(
                    Param.objects.filter(job=job).order_by("key").values_list("key", "value")
                ),
                "tags": dict(
                    Tag.objects.filter(job=job).order_by("key").values_list("key", "value")
                ),
                "metrics": [_summary(series) for series in selectors.series_of(job)],
            }
        )

    @extend_schema(request=TrackingInput, responses=TrackingCounts)
    def post(self, request: Request, owner: str, name: str, number: str) -> Response:
        body = tracking_body(request.data)  # plain Python: see tracking.serializers
        job = _job(request, owner, name, number)
        check_may_record(request, job)
        # One transaction: a refused param leaves no metric of its request behind, so a client
        # may send the same body again once it has fixed it.
        try:
            with transaction.atomic():
                if body.params:
                    services.params_record(job.id, body.params)
                if body.tags:
                    services.tags_set(job.id, body.tags)
                stored = services.metrics_record(job.id, body.points)
        except DataError as exc:
            # Every value sent was checked above; what is left is a step the server worked
            # out: the next one after the highest a 64-bit step can be.
            raise ValidationFailed(
                "A point without a step would come after the highest step there is "
                f"({MAX_STEP}); give its step.",
                fields={"metrics": ["Give each point's step."]},
                code="step_out_of_range",
            ) from exc
        return Response({"metrics": stored, "params": len(body.params), "tags": len(body.tags)})


def _bucket(bucket: selectors.Bucket) -> dict[str, object]:
    return {
        "first_step": bucket.first_step,
        "last_step": bucket.last_step,
        "points": bucket.points,
        "min": json_number_or_none(bucket.min),
        "max": json_number_or_none(bucket.max),
        "mean": json_number_or_none(bucket.mean),
        "last": json_number(bucket.last),
    }


def _series(read: selectors.SeriesRead) -> dict[str, object]:
    return {
        "key": read.key,
        "points": read.points,
        "width": read.width,
        "buckets": [_bucket(bucket) for bucket in read.buckets],
    }


def _given(request: Request) -> dict[str, str]:
    # "?first_step=&last_step=" is how a form or a URL template says "not given".
    return {name: value for name, value in request.query_params.dict().items() if value != ""}


class SeriesView(APIView):
    """One metric of a job, downsampled: at most ``buckets`` buckets, however long the run."""

    accepts_job_tokens = True
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=[SeriesQuery], responses=SeriesOutput)
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        query = validated(SeriesQuery, _given(request))
        job = _job(request, owner, name, number)
        check_may_read(request, job)
        read = selectors.series_read(
            job, query["key"], query["buckets"], query.get("first_step"), query.get("last_step")
        )
        if read is None:
            raise NotFound(
                f"Job {job} has no metric {query['key']!r}; GET its tracking data to see the "
                "keys it has.",
                code="unknown_metric",
            )
        return Response(_series(read))


class _Line:
    """What csv.writer writes to: each row comes back as its text."""

    def write(self, text: str) -> str:
        return text


def _csv_rows(points: Iterable[tuple[str, int, float, datetime]]) -> Iterator[str]:
    writer = csv.writer(_Line(), lineterminator="\n")
    yield writer.writerow(["key", "step", "value", "timestamp"])
    chunk: list[str] = []
    for key, step, value, at in points:
        when = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        chunk.append(writer.writerow([key, step, json_number(value), when]))
        if len(chunk) == 1000:  # a few kB per write, not one write per point
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


class MetricsExportView(APIView):
    """Every point of the job (of one key, if asked) as CSV, streamed: a run of millions of
    points is never held in memory whole."""

    accepts_job_tokens = True
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=[ExportQuery], responses={(200, "text/csv"): bytes})
    def get(self, request: Request, owner: str, name: str, number: str) -> StreamingHttpResponse:
        query = validated(ExportQuery, _given(request))
        job = _job(request, owner, name, number)
        check_may_read(request, job)
        rows = _csv_rows(selectors.metrics_export(job, query.get("key")))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        filename = f"{job.project.owner_name}-{job.project.name}-{job.number}-metrics.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


# --- external runs ------------------------------------------------------------------------------


class RunCreateView(APIView):
    """Start a run tracked from elsewhere (``ferry.init()`` on a laptop): a job of mode
    ``external``, running until its client ends it."""

    @extend_schema(request=RunCreateInput, responses={201: JobOutput})
    def post(self, request: Request, owner: str, name: str) -> Response:
        data = validated(RunCreateInput, request.data)
        project = project_get(request.user, owner, name, ProjectAction.VIEW)
        with transaction.atomic():
            job = job_services.external_run_create(
                actor=current_user(request), project=project, name=data.get("name", "")
            )
            if data.get("params"):
                services.params_record(job.id, data["params"])
            if data.get("tags"):
                services.tags_set(job.id, data["tags"])
        body = JobOutput(jobs_of(project).get(id=job.id)).data
        return Response(body, status=status.HTTP_201_CREATED)


class RunEndView(APIView):
    """End an external run: succeeded, failed or stopped. 409 for a job Ferry runs itself."""

    @extend_schema(request=RunEndInput, responses=JobOutput)
    def post(self, request: Request, owner: str, name: str, number: str) -> Response:
        data = validated(RunEndInput, request.data)
        job = job_get(request.user, owner, name, int(number), ProjectAction.WRITE)
        job_services.external_run_end(
            job=job, outcome=JobStatus(data["status"]), reason=data.get("reason", "")
        )
        fresh = job_get(request.user, owner, name, int(number), ProjectAction.VIEW)
        return Response(JobOutput(fresh).data)


# --- comparing jobs -----------------------------------------------------------------------------


def _compared_jobs(project: Project, numbers: list[int]) -> list[Job]:
    found = {job.number: job for job in Job.objects.filter(project=project, number__in=numbers)}
    missing = [number for number in numbers if number not in found]
    if missing:
        listed = ", ".join(map(str, missing))
        raise NotFound(
            f"{project.full_name} has no job {listed}.",
            fields={"jobs": [f"No job {listed}."]},
            code="unknown_jobs",
        )
    for job in found.values():
        job.project = project
    return [found[number] for number in numbers]


def _compared_params(jobs: list[Job], keys: list[str]) -> dict[int, dict[str, str]]:
    """Each job's params: those given when it was submitted (``ferry run --param``), then those
    its code logged, which win where both name a key."""
    rows = Param.objects.filter(job__in=jobs).order_by("key")
    if keys:
        rows = rows.filter(key__in=keys)
    params: dict[int, dict[str, str]] = {
        job.id: {k: str(v) for k, v in job.params.items() if not keys or k in keys} for job in jobs
    }
    for job_id, key, value in rows.values_list("job_id", "key", "value"):
        params[job_id][key] = value
    return {job_id: dict(sorted(given.items())) for job_id, given in params.items()}


class CompareView(APIView):
    """Several jobs of a project side by side: params, the latest of each metric, and each
    metric downsampled.

    Queries: the project and the caller's role on it, the jobs, their params and their series'
    summaries (one each), and then two per job and metric it has (``series_read``: the series,
    then its points or buckets); a metric a job lacks costs nothing.
    """

    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=[CompareQuery], responses=CompareOutput)
    def get(self, request: Request, owner: str, name: str) -> Response:
        query = validated(CompareQuery, _given(request))
        project = project_get(request.user, owner, name, ProjectAction.VIEW)
        jobs = _compared_jobs(project, query["jobs"])
        keys: list[str] = query.get("metrics", [])
        params = _compared_params(jobs, query.get("params", []))
        summaries = MetricSeries.objects.filter(job__in=jobs, points__gt=0)
        if keys:
            summaries = summaries.filter(key__in=keys)
        latest = {(s.job_id, s.key): s for s in summaries.order_by("key")}
        return Response(
            {
                "project": project.full_name,
                "metrics": keys,
                "jobs": [
                    _compared(job, keys, params[job.id], latest, query["buckets"]) for job in jobs
                ],
            }
        )


def _compared(
    job: Job,
    keys: list[str],
    params: dict[str, str],
    latest: dict[tuple[int, str], MetricSeries],
    buckets: int,
) -> dict[str, object]:
    """One job's row: every metric asked (all it has, without series, if none were asked)."""
    own = [key for (job_id, key) in latest if job_id == job.id]
    series: dict[str, object] = {}
    for key in keys:
        read = selectors.series_read(job, key, buckets) if (job.id, key) in latest else None
        series[key] = None if read is None else _series(read)
    return {
        "number": job.number,
        "name": str(job),
        "status": job.status,
        "params": params,
        "latest": {
            key: _latest(latest[(job.id, key)]) if (job.id, key) in latest else None
            for key in (keys or own)
        },
        "series": series,
    }
