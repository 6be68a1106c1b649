"""floyd-cli's jobs: experiments (Ferry jobs), the code uploaded for them, their logs.

An experiment and its one task instance are a Ferry job, by the job's id; ``code-<tree id>`` is
code uploaded for a run that does not exist yet, ``jobcode-<job id>`` a job's code and
``log-<job id>`` its log (compat.floyd.ids). Everything is created and changed through
``jobs.services``, so a job made with floyd-cli is an ordinary Ferry job.
"""

import codecs
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from blobs.models import Tree
from blobs.services import tree_of_author, tree_store_directory
from compat.floyd import floyd_yml
from compat.floyd.api import FloydView
from compat.floyd.code_upload import receive_code
from compat.floyd.data_files import tar_of, tree_listing
from compat.floyd.data_sources import job_by_id, version_by_id
from compat.floyd.floyd_yml import FloydArgs, Mount, RunSettings
from compat.floyd.ids import DATA_KINDS, module_id, parse_module_id, plain_id
from core.errors import NotFound, ValidationFailed
from jobs.inputs import InputRequest
from jobs.logs import log_read
from jobs.models import FINISHED, Environment, Job, JobMode, JobStatus
from jobs.services import JobRequest, job_create, job_delete, job_restart, job_stop
from projects.models import Project
from projects.policy import ProjectAction, authorize_project
from projects.selectors import project_find, project_get
from tracking.models import MetricSeries

# The lines floyd-cli's `logs -f` stops at (cli/experiment.py); they end the rendered log of a
# finished job and are never stored in it.
LOG_ENDINGS = {
    "success": "[success] Finished execution",
    "failed": "[failed] Task execution failed",
    "shutdown": "[shutdown] Task execution cancelled",
    "timeout": "[timeout] Task execution cancelled",
}
# floyd-cli downloads the whole log every second while it follows one; past this much the
# rest is left out (Ferry's own `ferry logs` reads any size).
LOG_TEXT_LIMIT = 32 * 1024 * 1024
STATES = {
    JobStatus.QUEUED: "queued",
    JobStatus.SCHEDULED: "queue_scheduled",
    # floyd-cli stops only queued and running jobs; a starting one (fetching its inputs,
    # installing floyd_requirements.txt) must be stoppable too.
    JobStatus.STARTING: "running",
    JobStatus.RUNNING: "running",
    JobStatus.STOPPING: "shutting_down",
    JobStatus.SUCCEEDED: "success",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "shutdown",
    JobStatus.LOST: "failed",
}
MODES = {JobMode.SERVE: "serve", JobMode.WORKSPACE: "jupyter"}
# How jobs.agent words a job stopped at its max runtime, which floyd calls a timeout.
TIMEOUT_REASON = "max runtime"
_DATA_ID = re.compile(rf"^({'|'.join(DATA_KINDS)})-[0-9]{{1,18}}$")


# --- experiments as floyd-cli reads them -----------------------------------------------------


def experiment_name(job: Job) -> str:
    return f"{job.project.owner_name}/projects/{job.project.name}/{job.number}"


def floyd_state(job: Job) -> str:
    if job.status == JobStatus.FAILED and TIMEOUT_REASON in job.status_reason:
        return "timeout"
    return STATES.get(JobStatus(job.status), job.status)


def experiment_json(job: Job) -> dict[str, Any]:
    """The Experiment of floyd-cli's model/experiment.py; ``job`` from ``_experiments``."""
    return {
        "id": str(job.id),
        "name": experiment_name(job),
        "created": job.created_at.isoformat(),
        "description": job.message,
        "state": floyd_state(job),
        "mode": MODES.get(JobMode(job.mode), "command"),
        "duration": _duration(job),
        "logId": module_id("log", job.id),
        "canvas": {"nodes": {"0": {"taskInstanceId": str(job.id), "type": "module_node"}}},
        "instanceType": floyd_yml.instance_type(job.machine_type.name),
        "instanceLogId": module_id("log", job.id),
        "instanceOutputId": module_id("output", job.id),
        "serviceUrl": None,
        "tensorboardUrl": None,
        "timeout_seconds": job.max_runtime_s,
        "latest_metrics": {s.key: _number(s.latest_value) for s in job.metric_series.all()},
    }


def _duration(job: Job) -> int | None:
    if job.started_at is None:
        return None
    end = job.finished_at or timezone.now()
    return max(0, int((end - job.started_at).total_seconds()))


def _number(value: float) -> float | str:
    # JSON has no NaN or infinity; floyd-cli only prints the value.
    return value if math.isfinite(value) else str(value)


def _experiments(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """What ``experiment_json`` reads, in two queries however many jobs."""
    metrics = MetricSeries.objects.filter(points__gt=0).exclude(key__startswith="system/")
    return jobs.select_related(
        "project__owner_user", "project__owner_team", "machine_type", "environment"
    ).prefetch_related(Prefetch("metric_series", queryset=metrics.order_by("key")))


def task_instance_json(job: Job) -> dict[str, Any]:
    """The TaskInstance of floyd-cli's model/task_instance.py: a job's one task."""
    return {
        "id": str(job.id),
        "log_id": module_id("log", job.id),
        "output_ids_dict": {"output": module_id("output", job.id)},
        "mode": "cli",
        "module_id": module_id("jobcode", job.id) if job.code_tree_id else None,
    }


# --- finding what is asked for ----------------------------------------------------------------


def _job(user: User, identifier: str, action: ProjectAction = ProjectAction.VIEW) -> Job:
    """A job by its id, if ``user`` may do ``action`` on its project."""
    jobs = _experiments(Job.objects.filter(id=plain_id(identifier, "job")))
    job = jobs.select_related("code_tree").first()
    if job is None:
        raise NotFound(f"No job has the id {identifier!r}.")
    authorize_project(user, job.project, action)
    return job


def _project(user: User, body: dict[str, Any], action: ProjectAction) -> Project:
    """The project floyd-cli names: by ``family_id`` (from .floydexpt), else ``name``."""
    family_id = body.get("family_id")
    if family_id:
        project = Project.objects.with_owner().filter(id=plain_id(str(family_id), "project"))
        found = project.first()
        if found is None:
            raise ValidationFailed(
                f"No project has the id {family_id!r}; run 'floyd init PROJECT' again."
            )
    else:
        owner, _, name = str(body.get("name") or "").partition("/")
        if not owner or not name:
            raise ValidationFailed("Name the project: run 'floyd init PROJECT' first.")
        found = project_find(owner, name)
    authorize_project(user, found, action)
    return found


def _text(body: dict[str, Any], key: str) -> str:
    return _raw_text(body, key).strip()


def _raw_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{key} must be text, not {value!r}.")
    return value


def _settings(args: FloydArgs, body: dict[str, Any]) -> RunSettings:
    """The run's settings from ``args`` and the floyd.yml and task the request carries."""
    return floyd_yml.run_settings(args, _raw_text(body, "yaml_config"), _text(body, "task"))


def _json_body(request: Request) -> dict[str, Any]:
    # floyd-cli sends the run as JSON without saying so (no Content-Type): read it as JSON
    # whatever the header says.
    try:
        data = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"The request body is not JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object.")
    return data


# --- inputs ----------------------------------------------------------------------------------


def input_requests(user: User, mounts: tuple[Mount, ...]) -> list[InputRequest]:
    """Mounts as Ferry's inputs: floyd ids (data-5, output-7) become the names Ferry resolves;
    names (from floyd.yml) stay as they are."""
    return [InputRequest(_source_name(user, mount.source), mount.mount) for mount in mounts]


def _source_name(user: User, source: str) -> str:
    if not _DATA_ID.match(source):
        return source
    kind, number = parse_module_id(source, *DATA_KINDS)
    if kind == "data":
        return _version_name(user, source, number)
    if kind == "output":
        return _output_name(user, source, number)
    raise ValidationFailed(
        f"{source} is a dataset upload that has not finished; wait for 'floyd data upload' "
        "to finish, then mount its version."
    )


def _version_name(user: User, source: str, version_id: int) -> str:
    try:
        return str(version_by_id(user, version_id))
    except NotFound as exc:
        raise ValidationFailed(f"No dataset version {source} here, or you may not see it.") from exc


def _output_name(user: User, source: str, job_id: int) -> str:
    try:
        found = job_by_id(user, job_id)
    except NotFound as exc:
        raise ValidationFailed(f"No job output {source} here, or you may not see it.") from exc
    return f"{experiment_name(found)}/output"


# --- code upload (POST /modules/) ------------------------------------------------------------


class CodeModuleCreateView(FloydView):
    """floyd-cli's code upload: every file its own multipart part ``code`` (its relative path
    the filename), then a part ``json`` with the run's settings. The settings are checked
    before anything is stored, so a run Ferry would refuse leaves nothing behind."""

    def post(self, request: Request) -> Response:
        user = self.user(request)
        directory = settings.FILE_UPLOAD_TEMP_DIR
        with tempfile.TemporaryDirectory(prefix="ferry-floyd-code-", dir=directory) as folder:
            module = receive_code(request, Path(folder))
            _check_module(user, module)
            tree = tree_store_directory(Path(folder), owner_id=user.pk)
        return Response({"id": module_id("code", tree.id)})


def _check_module(user: User, module: dict[str, Any]) -> None:
    """Refuse, before the code is stored, a run that ``run_module`` would refuse."""
    _project(user, module, ProjectAction.WRITE)
    args = FloydArgs(
        command=_text(module, "command"),
        env=_text(module, "env"),
        instance_type=_text(module, "instance_type"),
        mode=_text(module, "mode"),
    )
    run = _settings(args, module)
    _check_command(run)
    _check_environment(run.environment)


def _check_command(run: RunSettings) -> None:
    if not run.command:
        raise ValidationFailed(
            "Give a command to run: floyd run \"python train.py\", or 'command:' in floyd.yml.",
            code="empty_command",
        )


def _check_environment(name: str) -> None:
    if name and not Environment.objects.filter(name=name).exists():
        known = ", ".join(Environment.objects.order_by("name").values_list("name", flat=True))
        raise ValidationFailed(
            f"No environment {name!r} here; choose one of: {known or 'none'} (or leave out "
            "--env for the default).",
            code="unknown_environment",
        )


# --- experiments -------------------------------------------------------------------------------


class RunModuleView(FloydView):
    """``floyd run``'s second step: the run of the code uploaded in the first."""

    def post(self, request: Request) -> Response:
        user = self.user(request)
        body = _json_body(request)
        project = _project(user, body, ProjectAction.WRITE)
        tree = _uploaded_code(user, _text(body, "module_id"))
        run = _settings(_run_args(body), body)
        _check_command(run)
        job_request = JobRequest(
            command=run.command,
            environment=run.environment,
            machine=run.machine,
            code=tree.digest,
            inputs=input_requests(user, run.inputs),
            message=run.description,
            max_runtime_s=run.max_runtime_s,
        )
        job = job_create(actor=user, project=project, request=job_request)
        return Response({"id": str(job.id), "name": experiment_name(job)})


def _run_args(body: dict[str, Any]) -> FloydArgs:
    # floyd-cli sends the command with the code, not with the run; the run carries it in
    # full_command, the `floyd run ...` line rebuilt from the user's flags.
    command = _text(body, "command") or floyd_yml.command_of(_text(body, "full_command"))
    data_ids = body.get("data_ids") or []
    if not isinstance(data_ids, list):
        raise ValidationFailed("data_ids must be a list of ID:MOUNT.")
    return FloydArgs(
        command=command,
        description=_text(body, "description"),
        env=_text(body, "env"),
        instance_type=_text(body, "instance_type"),
        max_runtime=floyd_yml.max_runtime(body.get("max_runtime"), "--max-runtime"),
        data=floyd_yml.data_mounts(data_ids),
    )


def _uploaded_code(user: User, identifier: str) -> Tree:
    """The code ``user`` uploaded as module ``identifier`` (code-<tree id>)."""
    try:
        _, number = parse_module_id(identifier, "code")
        tree = Tree.objects.filter(id=number).first()
        if tree is None:
            raise NotFound(identifier)
        return tree_of_author(user.pk, tree.digest)
    except (NotFound, ValidationFailed) as exc:
        raise ValidationFailed(
            f"No code upload {identifier!r} of yours here; run 'floyd run' again to upload it."
        ) from exc


class ExperimentListView(FloydView):
    """``floyd status``: the jobs of the project ``family_id``, newest first."""

    LIMIT = 1000  # floyd-cli prints them all in one table and cannot page

    def get(self, request: Request) -> Response:
        family_id = request.query_params.get("family_id", "")
        if not family_id:
            raise ValidationFailed("Say whose jobs: ?family_id=<project id> (run 'floyd init').")
        project = _project(self.user(request), {"family_id": family_id}, ProjectAction.VIEW)
        jobs = _experiments(Job.objects.filter(project=project)).order_by("-number")
        return Response([experiment_json(job) for job in jobs[: self.LIMIT]])


class ExperimentView(FloydView):
    def get(self, request: Request, identifier: str) -> Response:
        return Response(experiment_json(_job(self.user(request), identifier)))

    def delete(self, request: Request, identifier: str) -> Response:
        user = self.user(request)
        job_delete(actor=user, job=_job(user, identifier))
        return Response({"message": "deleted"})


class ExperimentByNameView(FloydView):
    def get(self, request: Request, owner: str, name: str, number: str) -> Response:
        project = project_get(self.user(request), owner, name, ProjectAction.VIEW)
        jobs = Job.objects.filter(project=project, number=int(number) if number.isdigit() else 0)
        job = _experiments(jobs).first()
        if job is None:
            raise NotFound(f"{project.full_name} has no job {number!r}.")
        return Response(experiment_json(job))


class ExperimentCancelView(FloydView):
    def get(self, request: Request, identifier: str) -> Response:
        user = self.user(request)
        job = job_stop(actor=user, job=_job(user, identifier))
        return Response({"id": str(job.id), "state": floyd_state(job)})


class ExperimentRestartView(FloydView):
    """``floyd restart JOB [--env] [--cpu|--gpu] [--data] [-m] [COMMAND]``: a new job like
    JOB, with its code, and with what the flags change."""

    def post(self, request: Request, identifier: str) -> Response:
        user = self.user(request)
        job = _job(user, identifier)
        if job.mode != JobMode.JOB:
            raise ValidationFailed(
                f"Job {job} is a {job.mode}, which floyd-cli cannot restart; use 'ferry'."
            )
        new = job_restart(actor=user, job=job, changes=_restart_changes(user, _json_body(request)))
        return Response({"id": str(new.id), "name": experiment_name(new)})


def _restart_changes(user: User, body: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if command := _text(body, "command"):
        changes["command"] = command
    if description := _text(body, "description"):
        changes["message"] = description
    if instance := _text(body, "instance_type"):
        changes["machine"] = floyd_yml.machine_name(instance)
    if env := _text(body, "env"):
        changes["environment"] = floyd_yml.environment_name(env) or _default_environment()
    data_ids = body.get("data_ids") or []
    if not isinstance(data_ids, list):
        raise ValidationFailed("data_ids must be a list of ID:MOUNT.")
    if data_ids:
        changes["inputs"] = input_requests(user, floyd_yml.data_mounts(data_ids))
    return changes


def _default_environment() -> str:
    default = Environment.objects.filter(is_default=True).values_list("name", flat=True)
    return default.first() or ""


class TaskInstanceView(FloydView):
    def get(self, request: Request, identifier: str) -> Response:
        return Response(task_instance_json(_job(self.user(request), identifier)))


# --- modules and resources: a job's code and log ----------------------------------------------


class CodeModuleView(FloydView):
    """GET /modules/<code-N|jobcode-N>: the code module ``floyd clone`` reads the
    ``resource_id`` of."""

    def get(self, request: Request, module_id: str) -> Response:
        user = self.user(request)
        kind, number = parse_module_id(module_id, "code", "jobcode")
        if kind == "code":
            _tree_of_upload(user, module_id)
            return Response(_module_json_of(module_id, "", "", ""))
        job = _job(user, str(number))
        _code_of(job)
        body = _module_json_of(module_id, experiment_name(job), job.message, job.command)
        body["family_id"] = str(job.project_id)
        return Response(body)


def _module_json_of(identifier: str, name: str, description: str, command: str) -> dict[str, Any]:
    return {
        "id": identifier,
        "name": name,
        "description": description,
        "command": command,
        "mode": "command",
        "module_type": "code",
        "resource_id": identifier,
        "outputs": [{"name": "output", "type": "dir"}],
        "inputs": [],
    }


def _tree_of_upload(user: User, identifier: str) -> Tree:
    try:
        return _uploaded_code(user, identifier)
    except ValidationFailed as exc:
        raise NotFound(exc.message) from exc


def _code_of(job: Job) -> Tree:
    if job.code_tree is None:
        raise NotFound(f"Job {experiment_name(job)} ran without code: there is nothing to clone.")
    return job.code_tree


class JobResourceView(FloydView):
    """GET /resources/<log-N|jobcode-N|code-N>[/<path>]: ``?content=true`` gives a log's text
    or, with ``download=true``, code as a tar; without, what the resource is."""

    def get(self, request: Request, resource_id: str, subpath: str = "") -> HttpResponseBase:
        user = self.user(request)
        kind, number = parse_module_id(resource_id, "log", "jobcode", "code")
        if subpath.strip("/") == "state":
            return Response("valid")  # a job's log and code are readable as soon as they exist
        content = request.query_params.get("content") == "true"
        if kind == "log":
            job = _job(user, str(number))
            if subpath.strip("/"):
                raise NotFound(f"A log has no files; ask for {resource_id} itself.")
            return _log_response(job) if content else Response(_resource_json(resource_id, job))
        tree, name, moment = _code_resource(user, kind, number, resource_id)
        if content and request.query_params.get("download") == "true":
            return _tar_response(tree, subpath.strip("/"), name, moment)
        if content:
            return Response(tree_listing(tree, subpath.strip("/"), name))
        return Response(_resource_json(resource_id, None, tree))


def _code_resource(user: User, kind: str, number: int, resource_id: str) -> tuple[Tree, str, int]:
    """The code tree, what to call it in messages, and the time its files are dated."""
    if kind == "code":
        return _tree_of_upload(user, resource_id), resource_id, int(timezone.now().timestamp())
    job = _job(user, str(number))
    return _code_of(job), f"the code of {experiment_name(job)}", int(job.created_at.timestamp())


def _resource_json(identifier: str, job: Job | None, tree: Tree | None = None) -> dict[str, Any]:
    moment = (job.finished_at or timezone.now()) if job is not None else timezone.now()
    size = tree.total_size if tree is not None else 0
    return {
        "id": identifier,
        "state": "valid",
        "resource_type": "log" if job is not None else "code",
        "size": str(size),
        "date_finalized": moment.isoformat() if job is None or job.is_finished else None,
        "date_last_updated": moment.isoformat(),
    }


def _log_response(job: Job) -> HttpResponse:
    # floyd-cli decodes the body with the charset the response names.
    return HttpResponse(log_text(job), content_type="text/plain; charset=utf-8")


def log_text(job: Job) -> str:
    """The job's log as floyd-cli reads it: once the job has ended, with the line that tells
    ``floyd logs -f`` it has (added here, never stored in Ferry's log)."""
    # The status first: a job seen finished has all its log stored (its agent writes the
    # last bytes before the final status), so no line can be missed after the ending line.
    status, reason = Job.objects.filter(id=job.id).values_list("status", "status_reason").get()
    finished = status in FINISHED
    data = _log_bytes(job)
    # A running job's log may end inside a character; the rest of it comes with the next read.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=finished)
    if not finished:
        return text
    job.status, job.status_reason = status, reason
    ending = LOG_ENDINGS.get(floyd_state(job), LOG_ENDINGS["failed"])
    if reason:
        ending = f"{ending} ({reason})"
    separator = "\n" if text and not text.endswith("\n") else ""
    return f"{text}{separator}{ending}\n"


def _log_bytes(job: Job) -> bytes:
    pieces: list[bytes] = []
    offset = 0
    while offset < LOG_TEXT_LIMIT:
        found = log_read(job, offset, limit=LOG_TEXT_LIMIT - offset)
        if not found.data:
            break
        pieces.append(found.data)
        offset = found.next_offset
    return b"".join(pieces)


def _tar_response(tree: Tree, directory: str, name: str, mtime: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        tar_of(tree, directory, mtime, name), content_type="application/x-tar"
    )
    response["Content-Disposition"] = 'attachment; filename="code.tar"'
    return response


class CodeDownloadView(FloydView):
    """GET /download/artifacts/code/<job id>?is_dir=true&path=DIR (``floyd clone -p DIR``):
    that directory of the job's code as a tar, its files at their paths in the code."""

    def get(self, request: Request, identifier: str) -> HttpResponseBase:
        job = _job(self.user(request), identifier)
        directory = request.query_params.get("path", "").strip().strip("/")
        name = f"the code of {experiment_name(job)}"
        return _tar_response(_code_of(job), directory, name, int(job.created_at.timestamp()))
