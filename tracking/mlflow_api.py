"""The MLflow tracking REST API (2.0), as much as MLflow's Python client needs to track runs.

Served under ``/compat/mlflow/api/2.0/mlflow/``: with ``MLFLOW_TRACKING_URI=<ferry>/compat/mlflow``
and ``MLFLOW_TRACKING_TOKEN=<a Ferry API token>`` the unmodified client creates experiments and
runs, logs metrics, params and tags, reads them back and searches runs. How experiments and runs
map onto projects and jobs: ``tracking.mlflow_runs``. What is recorded goes through the same
services as Ferry's own API, so it shows in Ferry's views at once.

Errors come as MLflow's ``{"error_code": ..., "message": ...}`` with its status codes: the
client raises them as ``MlflowException`` with the code, and ``set_experiment`` relies on
RESOURCE_DOES_NOT_EXIST to create an experiment it does not find.
"""

import base64
import binascii
import json
import math
import re
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse, HttpResponseBase
from django.utils import timezone
from rest_framework import exceptions as drf
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import current_user
from blobs.manifest import file_response
from core.api.errors import known_failure
from core.errors import NotFound, PermissionDenied, ValidationFailed
from jobs.models import Job
from projects.models import Project
from tracking import mlflow_runs as runs
from tracking.access import check_may_read, check_may_record, job_token_of
from tracking.artifacts import artifact_delete, artifact_get, artifact_put, artifacts_list
from tracking.mlflow_search import RUN_NAME_TAG, SearchError, runs_matching
from tracking.selectors import metric_history
from tracking.services import (
    MetricColumns,
    metrics_record_columns,
    params_record,
    tag_delete,
    tags_set,
)

# MLflow's limits on one log-batch call, which its client also keeps to.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000
# Points per page of get-history when the client does not say (MLflow's own page size).
HISTORY_PAGE = 25_000
MAX_HISTORY_PAGE = 25_000
SEARCH_PAGE = 1000
MAX_SEARCH_PAGE = 50_000

_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",
    409: "INVALID_STATE",
    413: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
}


def answer(body: dict[str, Any], status: int = 200) -> HttpResponse:
    # Straight to JSON, not through DRF's renderer: histories of 25,000 points are common.
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


def error(status: int, message: str) -> Response:
    code = _ERROR_CODES.get(status, "INTERNAL_ERROR")
    return Response({"error_code": code, "message": message}, status=status)


class MlflowView(APIView):
    """A view of the MLflow API: MLflow's error bodies; a job's own token reaches its run."""

    accepts_job_tokens = True

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            message = (
                str(exc.detail)
                if isinstance(exc, drf.AuthenticationFailed)
                else ("Send a Ferry API token: set MLFLOW_TRACKING_TOKEN to one.")
            )
            return error(401, message)
        if isinstance(exc, SearchError):
            return error(400, str(exc))
        failure = known_failure(exc)
        if failure is None:
            raise exc
        return error(*failure)

    def body(self, request: Request) -> dict[str, Any]:
        data = request.data
        if not isinstance(data, dict):
            raise ValidationFailed("The request body must be a JSON object.")
        return data

    def run_to_record(self, request: Request, run_id: object) -> Job:
        job = runs.run_find(runs.text(run_id, "run_id"), to_log=True)
        check_may_record(request, job)
        runs.check_active(job)
        return job

    def run_to_read(self, request: Request, run_id: object) -> Job:
        job = runs.run_find(runs.text(run_id, "run_id"))
        check_may_read(request, job)
        return job

    def experiment(self, request: Request, experiment_id: object) -> Project:
        project = runs.experiment_get(
            current_user(request), runs.text(experiment_id, "experiment_id"),
            job_token=job_token_of(request),
        )  # fmt: skip
        _check_token_project(request, project)
        return project


def _check_token_project(request: Request, project: Project) -> None:
    """A job's own token sees its job's experiment only."""
    own = job_token_of(request)
    if own is not None and not Job.objects.filter(id=own, project=project).exists():
        raise PermissionDenied(
            f"This token is job {own}'s own: it reaches that job's experiment only.",
            code="job_token_elsewhere",
        )


def _run_id(data: dict[str, Any]) -> object:
    return data.get("run_id") or data.get("run_uuid")


# --- experiments --------------------------------------------------------------------------------


class ExperimentCreateView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        if job_token_of(request) is not None:
            raise PermissionDenied("A job's own token cannot create experiments.")
        name = runs.text(data.get("name"), "name")
        project = runs.experiment_create(current_user(request), name)
        return answer({"experiment_id": str(project.id)})


class ExperimentGetView(MlflowView):
    def get(self, request: Request) -> HttpResponse:
        project = self.experiment(request, request.query_params.get("experiment_id"))
        return answer({"experiment": runs.experiment_json(project)})


class ExperimentByNameView(MlflowView):
    def get(self, request: Request) -> HttpResponse:
        name = runs.text(request.query_params.get("experiment_name"), "experiment_name")
        project = runs.experiment_by_name(current_user(request), name)
        _check_token_project(request, project)
        return answer({"experiment": runs.experiment_json(project)})


_NAME_FILTER = re.compile(
    r"""^\s*(?:attributes?\.)?name\s*(=|!=|LIKE|ILIKE)\s*(?:'([^']*)'|"([^"]*)")\s*$""",
    re.IGNORECASE,
)


class ExperimentSearchView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        projects = runs.experiments_visible(current_user(request)).order_by("id")
        own = job_token_of(request)
        if own is not None:
            projects = projects.filter(jobs__id=own)
        projects = _experiments_filtered(projects, data.get("filter") or "")
        limit = _limit(data.get("max_results"), SEARCH_PAGE, MAX_SEARCH_PAGE)
        offset = _offset(data.get("page_token"))
        page = list(projects[offset : offset + limit + 1])
        body: dict[str, Any] = {
            "experiments": [runs.experiment_json(project) for project in page[:limit]]
        }
        if len(page) > limit:
            body["next_page_token"] = _token(offset + limit)
        return answer(body)


def _experiments_filtered(projects: Any, filter_string: str) -> Any:
    """Experiments filtered by name, the one attribute a project and an experiment share."""
    if not filter_string.strip():
        return projects
    found = _NAME_FILTER.match(filter_string)
    if found is None:
        raise ValidationFailed(
            f"Experiments can be searched by name only (name = 'x', name LIKE 'x%', name ILIKE "
            f"'x%'); {filter_string!r} is not one of these."
        )
    comparator, value = found.group(1).upper(), found.group(2) or found.group(3) or ""
    return projects.filter(_name_q(comparator, value))


def _name_q(comparator: str, value: str) -> Q:
    owner, _, name = value.rpartition("/")
    if comparator in ("=", "!="):
        q = Q(name=name) & (
            Q(owner_user__username=owner) | Q(owner_team__name=owner) if owner else Q()
        )
        return q if comparator == "=" else ~q
    pattern = re.escape(name).replace("%", ".*").replace("_", ".")
    lookup = "name__regex" if comparator == "LIKE" else "name__iregex"
    return Q(**{lookup: f"^{pattern}$"})


# --- runs ---------------------------------------------------------------------------------------


class RunCreateView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        project = self.experiment(request, data.get("experiment_id") or runs.DEFAULT_EXPERIMENT_ID)
        tags = runs.key_values(data.get("tags"), "tags")
        name = runs.text(data.get("run_name"), "run_name", required=False)
        name = name or tags.get(RUN_NAME_TAG, "")
        with transaction.atomic():
            job = runs.run_create(
                current_user(request), project, name=name, tags=tags,
                job_token=job_token_of(request),
            )  # fmt: skip
            tags = {**tags, RUN_NAME_TAG: name or f"run-{job.number}"}
            tags_set(job.id, tags)
        return answer({"run": runs.new_run_json(job, tags)})


class RunGetView(MlflowView):
    def get(self, request: Request) -> HttpResponse:
        job = self.run_to_read(request, _run_id(dict(request.query_params.items())))
        return answer({"run": runs.runs_json([runs.run_row(job)])[0]})


class RunUpdateView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        job = self.run_to_record(request, _run_id(data))
        name = runs.text(data.get("run_name"), "run_name", required=False)
        with transaction.atomic():
            if name:
                tags_set(job.id, {RUN_NAME_TAG: name})
            if data.get("status"):
                runs.run_end(job, runs.text(data["status"], "status"))
        fresh = runs.runs_json([runs.run_row(runs.run_find(str(job.id)))])[0]
        return answer({"run_info": fresh["info"]})


class RunDeleteView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        job = self.run_to_read(request, _run_id(self.body(request)))
        check_may_record(request, job)
        runs.run_delete(job, timezone.now())
        return answer({})


class RunRestoreView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        job = self.run_to_read(request, _run_id(self.body(request)))
        check_may_record(request, job)
        runs.run_restore(job)
        return answer({})


class RunSearchView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        ids = data.get("experiment_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValidationFailed("experiment_ids must be a list of experiment ids.")
        for experiment_id in ids:
            self.experiment(request, experiment_id)
        jobs = runs.runs_of_experiments(current_user(request), ids)
        own = job_token_of(request)
        if own is not None:
            jobs = jobs.filter(id=own)
        order_by = data.get("order_by") or []
        if not isinstance(order_by, list):
            raise ValidationFailed("order_by must be a list of strings.")
        # The view by name, or by its number in MLflow's enum.
        given = str(data.get("run_view_type") or "ACTIVE_ONLY")
        view = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}.get(given, given)
        matching = runs_matching(jobs, data.get("filter") or "", order_by, view)
        limit = _limit(data.get("max_results"), SEARCH_PAGE, MAX_SEARCH_PAGE)
        offset = _offset(data.get("page_token"))
        page = [runs.RunRow(*row) for row in runs.run_rows(matching)[offset : offset + limit + 1]]
        body: dict[str, Any] = {"runs": runs.runs_json(page[:limit])}
        if len(page) > limit:
            body["next_page_token"] = _token(offset + limit)
        return answer(body)


# --- logging ------------------------------------------------------------------------------------


def _columns(metrics: list[Any]) -> MetricColumns:
    """MLflow's metrics as columns, each checked: no object per point on the hot path."""
    batch = MetricColumns([], [], [], [])
    for raw in metrics:
        if _plain(raw):  # what the client sends: checked at a glance
            batch.keys.append(raw["key"])
            batch.values.append(float(raw["value"]))
            batch.steps.append(raw.get("step") or 0)
            batch.times_ms.append(raw.get("timestamp") or 0)
            continue
        if not isinstance(raw, dict):
            raise ValidationFailed(
                f"A metric must be an object with key, value, timestamp and step; got {raw!r}."
            )
        batch.keys.append(runs.text(raw.get("key"), "A metric's key"))
        batch.values.append(runs.metric_value(raw.get("value")))
        batch.steps.append(runs.int64(raw.get("step"), "A metric's step", default=0))
        batch.times_ms.append(_milliseconds(raw.get("timestamp")))
    return batch


_INT64 = range(-(2**63), 2**63)


def _plain(raw: Any) -> bool:
    """A metric with a non-empty key, a finite float value, and an in-range int step and
    timestamp (or none): no more to check. Anything else takes the careful way."""
    if type(raw) is not dict:
        return False
    key, value = raw.get("key"), raw.get("value")
    step, stamp = raw.get("step", 0), raw.get("timestamp", 0)
    return (
        type(key) is str
        and key != ""
        and type(value) is float
        and math.isfinite(value)
        and type(step) is int
        and step in _INT64
        and type(stamp) is int
        and _EARLIEST_MS <= stamp <= _LATEST_MS
    )


# The timestamps a datetime can hold: years 1 to 9999, in milliseconds since 1970.
_EARLIEST_MS, _LATEST_MS = -62_135_596_800_000, 253_402_300_799_000


def _milliseconds(raw: object) -> int:
    milliseconds = runs.int64(raw, "A metric's timestamp", default=0)
    if not _EARLIEST_MS <= milliseconds <= _LATEST_MS:
        raise ValidationFailed(
            f"A metric's timestamp is milliseconds since 1970; {milliseconds} is out of range."
        )
    return milliseconds


class LogMetricView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        job = self.run_to_record(request, _run_id(data))
        metrics_record_columns(job.id, _columns([data]))
        return answer({})


def _entry(data: dict[str, Any]) -> dict[str, str]:
    """The one param or tag of a request: its key, and its value as text."""
    return runs.key_values([{"key": data.get("key"), "value": data.get("value")}], "the request")


class LogParamView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        job = self.run_to_record(request, _run_id(data))
        params_record(job.id, _entry(data))
        return answer({})


class SetTagView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        job = self.run_to_record(request, _run_id(data))
        tags_set(job.id, _entry(data))
        return answer({})


class DeleteTagView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        job = self.run_to_record(request, _run_id(data))
        key = runs.text(data.get("key"), "key")
        if not tag_delete(job.id, key):
            raise NotFound(f"Run {job.id} has no tag {key!r}.")
        return answer({})


class LogBatchView(MlflowView):
    def post(self, request: Request) -> HttpResponse:
        data = self.body(request)
        job = self.run_to_record(request, _run_id(data))
        metrics, params, tags = (data.get(name) or [] for name in ("metrics", "params", "tags"))
        _check_batch(metrics, params, tags)
        batch = _columns(metrics)
        with transaction.atomic():
            params_record(job.id, runs.key_values(params, "params"))
            tags_set(job.id, runs.key_values(tags, "tags"))
            metrics_record_columns(job.id, batch)
        return answer({})


def _check_batch(metrics: Any, params: Any, tags: Any) -> None:
    for name, given in (("metrics", metrics), ("params", params), ("tags", tags)):
        if not isinstance(given, list):
            raise ValidationFailed(f"{name} must be a list.")
    too_many = (
        len(metrics) > MAX_BATCH_METRICS
        or len(params) > MAX_BATCH_PARAMS
        or len(tags) > MAX_BATCH_TAGS
        or len(metrics) + len(params) + len(tags) > MAX_BATCH_ENTITIES
    )
    if too_many:
        raise ValidationFailed(
            f"A batch holds at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} params and "
            f"{MAX_BATCH_TAGS} tags, {MAX_BATCH_ENTITIES} in all; this one has {len(metrics)}, "
            f"{len(params)} and {len(tags)}. Split it."
        )


class MetricHistoryView(MlflowView):
    def get(self, request: Request) -> HttpResponse:
        query = request.query_params
        job = self.run_to_read(request, query.get("run_id") or query.get("run_uuid"))
        key = runs.text(query.get("metric_key"), "metric_key")
        limit = _limit(query.get("max_results"), HISTORY_PAGE, MAX_HISTORY_PAGE)
        after = _cursor(query.get("page_token"))
        page = metric_history(job, key, after=after, limit=limit + 1)
        body: dict[str, Any] = {
            "metrics": [
                runs.metric_json(key, point.value, runs.ms(point.timestamp) or 0, point.step)
                for _, point in page[:limit]
            ]
        }
        if len(page) > limit:
            body["next_page_token"] = _token(*page[limit - 1][0])
        return answer(body)


# --- pages --------------------------------------------------------------------------------------


def _limit(raw: object, default: int, most: int) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(str(raw))
    except ValueError:
        raise ValidationFailed(f"max_results must be a whole number; got {raw!r}.") from None
    if not 1 <= limit <= most:
        raise ValidationFailed(f"max_results must be between 1 and {most}; got {limit}.")
    return limit


def _token(*numbers: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(numbers)).encode()).decode()


def _numbers(raw: object, count: int) -> list[int] | None:
    if raw in (None, ""):
        return None
    try:
        numbers = json.loads(base64.urlsafe_b64decode(str(raw)))
    except (ValueError, binascii.Error):
        numbers = None
    valid = isinstance(numbers, list) and len(numbers) == count
    if not valid or not all(isinstance(n, int) and n >= 0 for n in numbers):
        raise ValidationFailed(f"page_token {raw!r} is not one this server gave; start again.")
    return numbers


def _offset(raw: object) -> int:
    numbers = _numbers(raw, 1)
    return numbers[0] if numbers else 0


def _cursor(raw: object) -> tuple[int, int] | None:
    numbers = _numbers(raw, 2)
    return (numbers[0], numbers[1]) if numbers else None


class LoggedModelSearchView(MlflowView):
    """MLflow 3's logged models: Ferry records none (its models are jobs' outputs), so a search,
    which the client makes whenever it lists a run's artifacts under a path, finds none. The
    experiments named must still be ones the caller may see."""

    def post(self, request: Request) -> HttpResponse:
        ids = self.body(request).get("experiment_ids") or []
        if not isinstance(ids, list):
            raise ValidationFailed("experiment_ids must be a list of experiment ids.")
        for experiment_id in ids:
            self.experiment(request, experiment_id)
        return answer({"models": []})


# --- artifacts (the mlflow-artifacts proxy) -----------------------------------------------------
#
# A run's artifact URI is mlflow-artifacts:/<experiment>/<run>/artifacts; the client turns it
# into paths under api/2.0/mlflow-artifacts/artifacts/ of the tracking URI.


def _artifact_target(request: Request, location: str, *, record: bool) -> tuple[Job, str]:
    """The run and the path within its files that ``location`` names."""
    experiment, _, rest = location.strip("/").partition("/")
    run_id, _, rest = rest.partition("/")
    root, _, path = rest.partition("/")
    if root != "artifacts" or not experiment.isdigit():
        raise NotFound(
            f"No artifact location {location!r}: expected <experiment>/<run>/artifacts/."
        )
    job = runs.run_find(run_id)
    if str(job.project_id) != experiment:
        raise NotFound(f"Run {run_id} is not in experiment {experiment}.")
    (check_may_record if record else check_may_read)(request, job)
    return job, path


class ArtifactView(MlflowView):
    parser_classes: list[type] = []  # the body is the file, read as a stream

    def put(self, request: Request, location: str) -> HttpResponse:
        job, path = _artifact_target(request, location, record=True)
        runs.check_active(job)
        artifact_put(job, path, request._request)  # Django's request reads as a stream
        return answer({})

    def get(self, request: Request, location: str) -> HttpResponseBase:
        job, path = _artifact_target(request, location, record=False)
        return file_response(artifact_get(job, path))

    def delete(self, request: Request, location: str) -> HttpResponse:
        job, path = _artifact_target(request, location, record=True)
        artifact_delete(job, path)
        return answer({})


class ArtifactListView(MlflowView):
    def get(self, request: Request) -> HttpResponse:
        location = request.query_params.get("path", "")
        job, directory = _artifact_target(request, location, record=False)
        files = [
            {"path": item.path, "is_dir": item.is_dir}
            | ({} if item.size is None else {"file_size": item.size})
            for item in artifacts_list(job, directory)
        ]
        return answer({"files": files})
