"""MLflow's experiments and runs as Ferry's projects and jobs.

An experiment is a project: its id is the project's id, its name the project's ``owner/name``.
A name without an owner is the caller's own project of that name; experiment "0", MLflow's
"Default", is the caller's project ``default``. Experiments made through this API are projects
made for the caller.

A run is a job: its id is the job's id. Runs made by a client outside Ferry are jobs of mode
``external``, running until the client ends them. A job Ferry runs is its own run: its code
finds ``MLFLOW_RUN_ID`` set to it, and what the code logs lands on the job. A client ending such
a run changes nothing (the job ends when its command exits), renaming it does.

Metric values go out as JSON numbers, with NaN and the infinities as the strings protobuf's
JSON uses for them ("NaN", "Infinity", "-Infinity"): the client's parser takes nothing else.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from core.errors import NotFound, PermissionDenied, ValidationFailed
from jobs.models import Job, JobMode, JobStatus
from jobs.services import external_run_create, external_run_end
from projects.models import Project
from projects.policy import ProjectAction, authorize_project
from projects.selectors import project_find, projects_visible_to
from projects.services import project_create
from tracking.mlflow_search import RUN_NAME_TAG, run_status
from tracking.models import DeletedRun, MetricSeries, Param, Tag
from tracking.parsing import json_number, number_of

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_PROJECT = "default"

# What a client may say a run ended as, and what the job becomes.
RUN_ENDINGS = {
    "FINISHED": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "KILLED": JobStatus.STOPPED,
}


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# --- experiments --------------------------------------------------------------------------------


def experiment_get(user: User, experiment_id: str, *, job_token: int | None = None) -> Project:
    """The project of ``experiment_id``, if ``user`` may see it."""
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        return _own_project(user, DEFAULT_PROJECT, create=job_token is None)
    project = Project.objects.with_owner().filter(id=_number(experiment_id, "experiment")).first()
    if project is None:
        raise NotFound(f"No experiment with id {experiment_id!r}.")
    authorize_project(user, project, ProjectAction.VIEW)
    return project


def experiment_by_name(user: User, name: str) -> Project:
    owner, project_name = _owner_and_name(user, name)
    project = project_find(owner, project_name)
    authorize_project(user, project, ProjectAction.VIEW)
    return project


def experiment_create(user: User, name: str) -> Project:
    """A new project for the experiment ``name``; an existing one of that name is refused, as
    MLflow refuses it."""
    owner, project_name = _owner_and_name(user, name)
    return project_create(actor=user, name=project_name, owner=owner)  # a name taken: Conflict


def experiments_visible(user: User) -> QuerySet[Project]:
    return projects_visible_to(user)


def _own_project(user: User, name: str, *, create: bool) -> Project:
    found = Project.objects.with_owner().filter(owner_user=user, name__iexact=name).first()
    if found is not None:
        return found
    if not create:
        raise NotFound(f"{user.username} has no project {name!r}.")
    return project_create(actor=user, name=name)


def _owner_and_name(user: User, name: str) -> tuple[str, str]:
    parts = name.strip().split("/")
    if len(parts) == 1 and parts[0]:
        return user.username, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValidationFailed(
        f"An experiment's name is a project's: 'name' (yours) or 'owner/name'; {name!r} is "
        "neither.",
        fields={"name": ["Use 'name' or 'owner/name'."]},
    )


def experiment_json(project: Project) -> dict[str, Any]:
    created = ms(project.created_at)
    return {
        "experiment_id": str(project.id),
        "name": project.full_name,
        "artifact_location": f"mlflow-artifacts:/{project.id}",
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": ms(project.updated_at),
        "tags": [{"key": "mlflow.note.content", "value": project.description}]
        if project.description
        else [],
    }


# --- runs ---------------------------------------------------------------------------------------


def run_find(run_id: str, *, to_log: bool = False) -> Job:
    """The job of ``run_id``, whoever may see it (the caller checks). ``to_log``: only what
    logging to it needs (its project, for the permission, and whether it is deleted): a
    training loop's every call pays for this read."""
    jobs = Job.objects.select_related("project")
    if to_log:
        jobs = jobs.only("id", "number", "project", "mode", "status", "created_by_id")
    else:
        jobs = jobs.select_related("created_by")
    found = jobs.annotate(run_deleted=Exists(DeletedRun.objects.filter(job=OuterRef("pk")))).filter(
        id=_number(run_id, "run")
    )
    job = next(iter(found[:1]), None)  # by its id: no ordering needed, as first() would add
    if job is None:
        raise NotFound(f"Run {run_id!r} not found.")
    return job


def run_create(
    user: User, project: Project, *, name: str, tags: Mapping[str, str], job_token: int | None
) -> Job:
    if job_token is not None:
        raise PermissionDenied(
            f"This token is job {job_token}'s own: inside a job, log to the job's run "
            "(MLFLOW_RUN_ID is set to it) rather than starting another.",
            code="job_token_elsewhere",
        )
    job = external_run_create(actor=user, project=project, name=name)
    return job


def run_end(job: Job, status: str) -> None:
    """End an external run as its client says; a job Ferry runs ends when its command does."""
    if job.mode != JobMode.EXTERNAL or status == "RUNNING":
        return
    outcome = RUN_ENDINGS.get(status)
    if outcome is None:
        raise ValidationFailed(
            f"A run ends as FINISHED, FAILED or KILLED, not {status!r}.",
            fields={"status": ["Use FINISHED, FAILED or KILLED."]},
        )
    external_run_end(job=job, outcome=outcome, reason=f"ended by its client as {status}")


def run_delete(job: Job, moment: datetime) -> None:
    DeletedRun.objects.get_or_create(job=job, defaults={"deleted_at": moment})


def run_restore(job: Job) -> None:
    DeletedRun.objects.filter(job=job).delete()


def check_active(job: Job) -> None:
    """Logging to a deleted run is refused, as MLflow refuses it."""
    deleted = getattr(job, "run_deleted", None)  # read with the run by run_find
    if deleted if deleted is not None else DeletedRun.objects.filter(job=job).exists():
        raise ValidationFailed(
            f"Run {job.id} is deleted; restore it (runs/restore) before logging to it.",
            code="run_deleted",
        )


@dataclass
class _RunData:
    metrics: list[dict[str, Any]]
    params: list[dict[str, str]]
    tags: list[dict[str, str]]


class RunRow(NamedTuple):
    """What MLflow's RunInfo says of a job: read as plain values, because a search answers with
    up to 50,000 runs and a model instance (with its project and user) per run costs more than
    the rest of the answer."""

    id: int
    number: int
    project_id: int
    message: str
    status: str
    started_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    username: str | None
    deleted: bool


def run_rows(jobs: QuerySet[Job]) -> QuerySet[Job, tuple[Any, ...]]:
    """``jobs`` as tuples of RunRow's fields, in its order."""
    deleted = Exists(DeletedRun.objects.filter(job=OuterRef("pk")))
    fields = (*RunRow._fields[:-2], "created_by__username")
    return jobs.annotate(row_deleted=deleted).values_list(*fields, "row_deleted")


def run_row(job: Job) -> RunRow:
    """The row of a job read as a model (``run_find``'s, which says if it is deleted)."""
    return RunRow(
        job.id, job.number, job.project_id, job.message, job.status, job.started_at,
        job.created_at, job.finished_at, job.created_by.username if job.created_by else None,
        bool(getattr(job, "run_deleted", False)),
    )  # fmt: skip


def runs_json(rows: Sequence[RunRow]) -> list[dict[str, Any]]:
    """MLflow's Run of each row's job, their data read for all of them in three queries."""
    data = _run_data([row.id for row in rows])
    return [_run_json(row, data[row.id]) for row in rows]


def new_run_json(job: Job, tags: Mapping[str, str]) -> dict[str, Any]:
    """MLflow's Run of a job just created with ``tags`` and nothing else: known without
    reading it back."""
    entries = [{"key": key, "value": value} for key, value in sorted(tags.items())]
    return _run_json(run_row(job), _RunData([], [], entries))


def run_info_json(row: RunRow, *, name: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": str(row.id),
        "run_uuid": str(row.id),
        "run_name": name or row.message or str(row.number),
        "experiment_id": str(row.project_id),
        "user_id": row.username or "",
        "status": run_status(row.status),
        "start_time": ms(row.started_at or row.created_at),
        "artifact_uri": f"mlflow-artifacts:/{row.project_id}/{row.id}/artifacts",
        "lifecycle_stage": "deleted" if row.deleted else "active",
    }
    if row.finished_at is not None:
        info["end_time"] = ms(row.finished_at)
    return info


def _run_json(row: RunRow, data: _RunData) -> dict[str, Any]:
    name = next((tag["value"] for tag in data.tags if tag["key"] == RUN_NAME_TAG), None)
    return {
        "info": run_info_json(row, name=name),
        "data": {"metrics": data.metrics, "params": data.params, "tags": data.tags},
    }


def _run_data(job_ids: Iterable[int]) -> dict[int, _RunData]:
    ids = list(job_ids)
    data: dict[int, _RunData] = defaultdict(lambda: _RunData([], [], []))
    series = (
        MetricSeries.objects.filter(job__any_of=ids, points__gt=0)
        .order_by("job_id", "key")
        .values_list("job_id", "key", "latest_value", "latest_at", "latest_step")
    )
    for job_id, key, value, at, step in series:
        data[job_id].metrics.append(metric_json(key, value, ms(at) or 0, step))
    for job_id, key, given in _entries(Param.objects, ids):
        data[job_id].params.append({"key": key, "value": given})
    for job_id, key, given in _entries(Tag.objects, ids):
        data[job_id].tags.append({"key": key, "value": given})
    return data


def _entries(manager: Any, ids: list[int]) -> Iterable[tuple[int, str, str]]:
    rows: Iterable[tuple[int, str, str]] = (
        manager.filter(job__any_of=ids)
        .order_by("job_id", "key")
        .values_list("job_id", "key", "value")
    )
    return rows


def metric_json(key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": json_number(value), "timestamp": timestamp, "step": step}


def runs_of_experiments(user: User, experiment_ids: Sequence[str]) -> QuerySet[Job]:
    """The jobs of the projects named, each of which ``user`` must be able to see."""
    projects = [experiment_get(user, experiment_id) for experiment_id in experiment_ids]
    return Job.objects.filter(Q(project__in=projects))


# --- values from requests -----------------------------------------------------------------------


def _number(text: str, what: str) -> int:
    if not isinstance(text, str) or not text.isdigit() or len(text) > 18:
        raise NotFound(f"No {what} with id {text!r}.")
    return int(text)


def metric_value(raw: object) -> float:
    """A metric's value as MLflow's client sends it: a number, or "NaN" / "Infinity" /
    "-Infinity" (JSON has no such numbers)."""
    value = number_of(raw)
    if value is None:
        raise ValidationFailed(
            f"A metric's value must be a number, or NaN, Infinity or -Infinity; got {raw!r}."
        )
    return value


INT64 = (-(2**63), 2**63 - 1)


def int64(raw: object, what: str, default: int | None = None) -> int:
    """An int64 field: a number or its decimal string, as protobuf's JSON allows."""
    if raw is None and default is not None:
        return default
    if isinstance(raw, str) and raw.lstrip("-").isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not INT64[0] <= raw <= INT64[1]:
        raise ValidationFailed(f"{what} must be a 64-bit integer; got {raw!r}.")
    return raw


def text(raw: object, what: str, *, required: bool = True) -> str:
    if raw is None and not required:
        return ""
    if not isinstance(raw, str) or (required and not raw):
        raise ValidationFailed(f"{what} must be a non-empty string; got {raw!r}.")
    return raw


def key_values(raw: object, what: str) -> dict[str, str]:
    """MLflow's [{"key": ..., "value": ...}] lists as a dict; a key given twice with two values
    is refused."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValidationFailed(f"{what} must be a list of {{key, value}} objects.")
    found: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise ValidationFailed(f"Each of {what} must be a {{key, value}} object; got {item!r}.")
        key = text(item.get("key"), f"A key of {what}")
        value = item.get("value", "")
        if not isinstance(value, str):
            value = str(value)
        if found.get(key, value) != value:
            raise ValidationFailed(f"{what} gives {key!r} twice, with different values.")
        found[key] = value
    return found
