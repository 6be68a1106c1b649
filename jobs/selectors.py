from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now

from accounts.policy import AnyUser
from core.errors import NotFound
from jobs.models import Job, JobStatus
from projects.models import Project
from projects.policy import ProjectAction
from projects.selectors import project_get, projects_visible_to
from tracking.models import MetricSeries


def _with_related(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """What ``JobOutput`` reads of each job, fetched with the page: a fixed number of queries
    whatever the page's length."""
    return (
        jobs.select_related(
            "project__owner_user", "project__owner_team", "environment", "machine_type",
            "code_tree", "output_tree", "created_by",
        )
        .prefetch_related("allocations__host",
                          "inputs__tree", "inputs__dataset_version__dataset__owner_user",
                          "inputs__dataset_version__dataset__owner_team",
                          "inputs__source_job__project__owner_user",
                          "inputs__source_job__project__owner_team")
    )  # fmt: skip


def jobs_of(project: Project) -> QuerySet[Job]:
    return _with_related(Job.objects.filter(project=project)).order_by("-number")


def jobs_visible_to(user: AnyUser) -> QuerySet[Job]:
    """The jobs of every project ``user`` may view: one query, whatever the number of projects
    (the policy's visibility test runs inside it)."""
    visible = projects_visible_to(user).order_by().values("id")
    return _with_related(Job.objects.filter(project__in=visible))


def job_get(user: AnyUser, owner: str, name: str, number: int, action: ProjectAction) -> Job:
    project = project_get(user, owner, name, action)
    job = jobs_of(project).filter(number=number).first()
    if job is None:
        raise NotFound(f"{project.full_name} has no job {number}.")
    return job


# --- lists of jobs: filters, order, metric columns ----------------------------------------------

OrderField = Literal["number", "created", "duration", "status", "metric"]
ORDER_FIELDS: tuple[OrderField, ...] = ("number", "created", "duration", "status")
METRIC_PREFIX = "metric:"


@dataclass(frozen=True)
class JobFilters:
    statuses: tuple[str, ...] = ()
    # Text in the job's message or command; a number ("12" or "#12") matches that job too.
    search: str = ""
    created_by: str = ""


@dataclass(frozen=True)
class JobOrder:
    field: OrderField = "number"
    descending: bool = True
    metric: str = ""  # the key, when field is "metric"


def jobs_filtered(jobs: QuerySet[Job], filters: JobFilters) -> QuerySet[Job]:
    if filters.statuses:
        jobs = jobs.filter(status__in=filters.statuses)
    if filters.created_by:
        jobs = jobs.filter(created_by__username__iexact=filters.created_by)
    if filters.search:
        jobs = jobs.filter(_search(filters.search))
    return jobs


def _search(text: str) -> Q:
    matches = Q(message__icontains=text) | Q(command__icontains=text)
    number = text.removeprefix("#")
    if number.isascii() and number.isdigit() and len(number) <= 9:
        matches |= Q(number=int(number))
    return matches


# Where each status comes in a job's life: sorting by status lists jobs in that order (queued
# first), not alphabetically.
_STATUS_RANK = Case(
    *(When(status=status, then=Value(rank)) for rank, status in enumerate(JobStatus.values)),
    default=Value(len(JobStatus.values)),
    output_field=IntegerField(),
)

# How long a job has run: to its end, or to now while it runs; null until it starts.
_DURATION = ExpressionWrapper(
    Coalesce(F("finished_at"), Now()) - F("started_at"), output_field=DurationField()
)


def latest_value_of(key: str) -> Subquery:
    """The job's latest value of metric ``key``, for a query of jobs; null if it has none."""
    series = MetricSeries.objects.filter(job=OuterRef("pk"), key=key, points__gt=0)
    return Subquery(series.values("latest_value")[:1])


def jobs_ordered(jobs: QuerySet[Job], order: JobOrder) -> QuerySet[Job]:
    """``jobs`` in ``order``; jobs without a value (not started, no such metric) come last
    either way, and ties go newest first so that pages never shuffle."""
    key = _order_key(order)
    if key is None:
        column = "number" if order.field == "number" else "created_at"
        first = F(column).desc() if order.descending else F(column).asc()
        return jobs.order_by(first, "-id")
    jobs = jobs.alias(sort_key=key)
    first = (
        F("sort_key").desc(nulls_last=True)
        if order.descending
        else F("sort_key").asc(nulls_last=True)
    )
    return jobs.order_by(first, "-id")


def _order_key(order: JobOrder) -> Case | ExpressionWrapper | Subquery | None:
    if order.field == "status":
        return _STATUS_RANK
    if order.field == "duration":
        return _DURATION
    if order.field == "metric":
        return latest_value_of(order.metric)
    return None


def latest_metrics(job_ids: Iterable[int], keys: Sequence[str]) -> dict[int, dict[str, float]]:
    """The latest value of each of ``keys`` for each job, read in one query: what a page of
    jobs shows as metric columns."""
    if not keys:
        return {}
    rows = MetricSeries.objects.filter(
        job_id__in=list(job_ids), key__in=list(keys), points__gt=0
    ).values_list("job_id", "key", "latest_value")
    values: dict[int, dict[str, float]] = {}
    for job_id, key, value in rows:
        values.setdefault(job_id, {})[key] = value
    return values


# Where the agent records a job's CPU, memory and GPU use (tracking.system).
SYSTEM_METRIC_PREFIX = "system/"


def metric_keys_of(project: Project) -> QuerySet[MetricSeries, dict[str, Any]]:
    """The metric keys the project's jobs reported, with how many jobs reported each: the
    columns a table of the project's jobs can show. The jobs' own metrics come first, most
    widely reported first; the system metrics every job has come after them."""
    system = Case(
        When(key__startswith=SYSTEM_METRIC_PREFIX, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    return (
        MetricSeries.objects.filter(job__project=project, points__gt=0)
        .values("key")
        .annotate(jobs=Count("job_id"), system=system)
        .order_by("system", "-jobs", "key")
    )


def last_jobs_of(projects: Sequence[Project]) -> dict[int, Job]:
    """Each project's newest job, in one query: a list of projects shows where each stands."""
    newest = Job.objects.filter(project=OuterRef("project")).order_by("-number").values("number")
    rows = Job.objects.filter(
        project__in=[project.id for project in projects], number=Subquery(newest[:1])
    ).only("id", "project_id", "number", "status", "created_at", "started_at", "finished_at")
    return {job.project_id: job for job in rows}
