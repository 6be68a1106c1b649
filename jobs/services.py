"""Every change to jobs goes through these functions; status changes through ``jobs.status``."""

from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, ProtectedError, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from blobs.models import Tree
from blobs.services import tree_of_author
from core.errors import Conflict, PermissionDenied, ValidationFailed
from fleet.services import allocation_release, schedule_soon
from jobs.inputs import InputRequest, resolve_inputs
from jobs.models import (
    FINISHED,
    Environment,
    Job,
    JobEvent,
    JobInput,
    JobMode,
    JobStatus,
    MachineType,
)
from jobs.status import job_transition
from projects.events import project_event_publish
from projects.models import Project
from projects.policy import ProjectAction, authorize_project


@dataclass(frozen=True)
class JobRequest:
    """What a user asks to run; names, not rows, so that each is checked here."""

    command: str
    environment: str = ""  # the default environment if empty
    machine: str = ""  # the default machine type if empty
    code: str = ""  # the digest of an uploaded code tree; none if empty
    inputs: list[InputRequest] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    max_runtime_s: int | None = None
    priority: int = 0  # higher is placed first; above 0 only for site admins
    max_retries: int = 0  # how often it is queued again if its host goes away
    idempotency_key: str = ""


def job_create(
    *, actor: User, project: Project, request: JobRequest, restart_of: Job | None = None
) -> Job:
    """Queue a job; the scheduler is woken once it is committed."""
    authorize_project(actor, project, ProjectAction.WRITE)
    _check_priority(actor, request.priority)
    if request.idempotency_key:
        earlier = _job_with_key(project, actor, request.idempotency_key)
        if earlier is not None:
            return earlier
    command = _command(request.command)
    environment = _environment(request.environment)
    machine = _machine_type(request.machine)
    # A restart runs the code its job ran, which any project member may do: no claim needed.
    code = restart_of.code_tree if restart_of is not None else _code_tree(actor, request.code)
    inputs = resolve_inputs(actor, request.inputs)
    try:
        with transaction.atomic():
            job = _insert_job(
                actor, project, request, command, environment, machine, code, restart_of
            )
            JobInput.objects.bulk_create(
                JobInput(
                    job=job, name=item.name, kind=item.kind, tree=item.tree,
                    dataset_version=item.dataset_version, source_job=item.source_job,
                )
                for item in inputs
            )  # fmt: skip
            JobEvent.objects.create(job=job, to_status=JobStatus.QUEUED, reason="submitted")
            schedule_soon()
    except IntegrityError:
        # The same Idempotency-Key submitted twice at once: the other request made the job.
        earlier = _job_with_key(project, actor, request.idempotency_key)
        if earlier is None:
            raise
        return earlier
    return job


def _job_with_key(project: Project, actor: User, key: str) -> Job | None:
    if not key:
        return None
    return Job.objects.filter(project=project, created_by=actor, idempotency_key=key).first()


def _insert_job(
    actor: User,
    project: Project,
    request: JobRequest,
    command: str,
    environment: Environment,
    machine: MachineType,
    code: Tree | None,
    restart_of: Job | None,
) -> Job:
    return Job.objects.create(
        project=project,
        number=_next_number(project),
        restart_of=restart_of,
        command=command,
        message=request.message,
        environment=environment,
        machine_type=machine,
        code_tree=code,
        params=request.params,
        max_runtime_s=request.max_runtime_s,
        priority=request.priority,
        max_retries=request.max_retries,
        created_by=actor,
        idempotency_key=request.idempotency_key,
    )


def _next_number(project: Project) -> int:
    """The number of the project's next job, never one given before. Call inside a
    transaction: the project stays locked until it commits, so that two jobs made at once get
    N and N+1, not both N."""
    # The update locks the project's row until the transaction ends. Jobs written without this
    # service (imports, fixtures) count as given too: hence the greatest of the two.
    latest = Job.objects.filter(project=project).values("project").annotate(top=Max("number"))
    rows = Project.objects.filter(id=project.id)
    rows.update(
        jobs_numbered=Greatest(F("jobs_numbered"), Coalesce(Subquery(latest.values("top")), 0)) + 1
    )
    return int(rows.values_list("jobs_numbered", flat=True).get())


def external_run_create(*, actor: User, project: Project, name: str = "") -> Job:
    """A run tracked from elsewhere (MLflow's client or ``ferry.init()`` on a laptop): a job of
    mode ``external``, running from now, which nothing here runs; its client ends it
    (``external_run_end``)."""
    authorize_project(actor, project, ProjectAction.WRITE)
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.create(
            project=project, number=_next_number(project), mode=JobMode.EXTERNAL, command="",
            message=name, environment=_environment(""), machine_type=_machine_type(""),
            status=JobStatus.RUNNING, created_by=actor, created_at=now, started_at=now,
        )  # fmt: skip
        JobEvent.objects.create(job=job, to_status=JobStatus.RUNNING, reason="started elsewhere")
    return job


# How an external run's client may end it, and the way there from running.
_ENDINGS = {
    JobStatus.SUCCEEDED: (JobStatus.SUCCEEDED,),
    JobStatus.FAILED: (JobStatus.FAILED,),
    JobStatus.STOPPED: (JobStatus.STOPPING, JobStatus.STOPPED),
}


def external_run_end(*, job: Job, outcome: JobStatus, reason: str = "") -> None:
    """End an external run as its client says: succeeded, failed or stopped. Ending one that
    has ended already changes nothing."""
    if job.mode != JobMode.EXTERNAL:
        raise Conflict(
            f"Job {job} runs here: it ends when its command exits, or with 'ferry stop'.",
            code="not_external",
        )
    if outcome not in _ENDINGS:
        raise ValidationFailed(
            f"A run ends as succeeded, failed or stopped, not {outcome}.",
            fields={"status": ["Use succeeded, failed or stopped."]},
            code="invalid_status",
        )
    for status in _ENDINGS[outcome]:
        job_transition(job.id, status, reason=reason or "ended by its client")


def _check_priority(actor: User, priority: int) -> None:
    # Everyone may let others go first; only site admins may push ahead of everyone else,
    # since a raised priority takes GPUs from every other user's queue.
    if priority > 0 and not actor.is_superuser:
        raise PermissionDenied(
            f"Only site admins may give a job a priority above 0 (asked: {priority}); submit it "
            "with priority 0 or lower (lower lets other jobs go first).",
            fields={"priority": ["Use 0 or lower."]},
            code="priority_not_allowed",
        )


def _command(command: str) -> str:
    if not command.strip():
        raise ValidationFailed(
            'Give a command to run, e.g. "python train.py".',
            fields={"command": ["The command is empty."]},
            code="empty_command",
        )
    return command.strip()


def _environment(name: str) -> Environment:
    return _named_or_default(Environment.objects.order_by("name"), name, "environment")


def _machine_type(name: str) -> MachineType:
    return _named_or_default(MachineType.objects.order_by("name"), name, "machine type")


Catalogued = TypeVar("Catalogued", Environment, MachineType)


def _named_or_default(rows: QuerySet[Catalogued], name: str, what: str) -> Catalogued:
    """The row called ``name``, or the default one; else an error listing what there is."""
    found = rows.filter(name=name).first() if name else rows.filter(is_default=True).first()
    if found is None:
        known = ", ".join(rows.values_list("name", flat=True)) or "none"
        field = what.split()[0]  # "environment", "machine"
        raise ValidationFailed(
            f"No {what} {name!r} here; choose one of: {known}.",
            fields={field: [f"Unknown {what} {name!r}."]},
            code=f"unknown_{field}",
        )
    return found


def _code_tree(actor: User, digest: str) -> Tree | None:
    if not digest:
        return None
    tree = tree_of_author(actor.pk, digest)
    limit = settings.FERRY_MAX_CODE_BYTES
    if tree.total_size > limit:
        raise ValidationFailed(
            f"The code is {tree.total_size} bytes; at most {limit} may be sent as code. Put data "
            "in a dataset (`ferry data upload`) and list large files in .ferryignore.",
            fields={"code": ["Too large."]},
            code="code_too_large",
        )
    return tree


# A job in these has no process yet: stopping it needs no agent.
NOT_STARTED = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED})


def job_stop(*, actor: User, job: Job, reason: str = "") -> Job:
    """Stop a job: at once if it waits in the queue, else through its host's agent."""
    authorize_project(actor, job.project, ProjectAction.WRITE)
    why = reason or f"stopped by {actor.username}"
    if job_transition(job.id, JobStatus.STOPPED, reason=why, only_from=NOT_STARTED):
        # It was queued (no host holds it) or scheduled but not yet started.
        allocation_release(job.id)
        schedule_soon()
    elif job_transition(job.id, JobStatus.STOPPING, reason=why):
        pass  # its agent sees `stopping` at the next heartbeat and stops the process
    else:
        job.refresh_from_db()
        if job.is_finished:
            raise Conflict(
                f"Job {job} has already finished ({job.status}); there is nothing to stop.",
                code="job_finished",
            )
        # Stopping already: asking twice is harmless.
    job.refresh_from_db()
    return job


def job_restart(*, actor: User, job: Job, changes: dict[str, Any]) -> Job:
    """A new job like ``job`` (its code, inputs, settings), with ``changes`` applied: any of
    command, environment, machine, max_runtime_s, priority, max_retries, message, params
    (merged), and inputs (a list of InputRequest that replaces the job's)."""
    inputs = changes.get("inputs") or [
        InputRequest(_source_of(item), item.name) for item in job.inputs.all()
    ]
    request = JobRequest(
        command=changes.get("command") or job.command,
        environment=changes.get("environment") or job.environment.name,
        machine=changes.get("machine") or job.machine_type.name,
        inputs=inputs,
        params={**job.params, **changes.get("params", {})},
        message=changes.get("message") or f"restart of {job}",
        max_runtime_s=changes.get("max_runtime_s", job.max_runtime_s),
        priority=changes.get("priority", job.priority),
        max_retries=changes.get("max_retries", job.max_retries),
    )
    return job_create(actor=actor, project=job.project, request=request, restart_of=job)


def job_delete(*, actor: User, job: Job) -> None:
    """Delete a finished job with its log, events and metrics; its code and output trees stay
    until the garbage collector finds them unused. Its creator may delete it, as may the
    project's admins. Refused while it runs, and while another job mounts its output."""
    mine = job.created_by_id == actor.pk
    authorize_project(actor, job.project, ProjectAction.WRITE if mine else ProjectAction.MANAGE)
    name, number = str(job), job.number
    try:
        with transaction.atomic():
            # Only if still finished: a job cannot be deleted under its running agent.
            deleted, _ = Job.objects.filter(id=job.id, status__in=FINISHED).delete()
    except ProtectedError as exc:
        raise Conflict(
            f"Job {name} cannot be deleted: other jobs mount its output, and what they read "
            "must stay known. Delete those jobs first.",
            code="job_output_in_use",
        ) from exc
    if not deleted:
        raise Conflict(
            f"Job {name} is {job.status}; stop it and delete it once it has ended.",
            code="job_not_finished",
        )
    project_event_publish(job.project, "job.deleted", {"job": name, "number": number})


def _source_of(item: JobInput) -> str:
    if item.dataset_version is not None:
        return str(item.dataset_version)  # owner/datasets/name/N
    source = item.source_job
    assert source is not None
    return f"{source.project.owner_name}/projects/{source.project.name}/{source.number}/output"


# While its process runs, a job's checkpoints are recorded.
RUNNING_STATUSES = frozenset({JobStatus.STARTING, JobStatus.RUNNING, JobStatus.STOPPING})


def job_checkpoint_record(job_id: int, tree: Tree) -> bool:
    """Make ``tree`` the output of a job still running (a checkpoint its agent kept): if the
    job is lost later, this is what remains. False, and nothing written, once it has ended,
    since its final output, or the last checkpoint before it was lost, is then what counts."""
    with transaction.atomic():
        job = Job.objects.select_for_update().select_related("project").filter(id=job_id).first()
        if job is None or job.status not in RUNNING_STATUSES:
            return False
        job.output_tree, job.output_at = tree, timezone.now()
        job.save(update_fields=["output_tree", "output_at"])
        event = {"job": str(job), "number": job.number, "output": tree.digest}
        project_event_publish(job.project, "job.checkpoint", event)
    return True
