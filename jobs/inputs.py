"""What a job mounts: ``SOURCE[:NAME]`` made into trees, with messages that say what exists.

Sources, as FloydHub spelled them:
- ``owner/datasets/name`` (the latest version) or ``owner/datasets/name/N``;
- ``owner/projects/name/N`` or ``owner/projects/name/N/output``: job N's output.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings

from accounts.policy import AnyUser
from blobs.models import Tree
from core.errors import NotFound, ValidationFailed
from core.names import NAME_RE, NAME_RULE
from datasets.models import DatasetVersion
from datasets.policy import DatasetAction
from datasets.selectors import dataset_get, version_get
from jobs.models import InputKind, Job
from projects.policy import ProjectAction
from projects.selectors import project_get


@dataclass(frozen=True)
class InputRequest:
    source: str
    mount: str = ""  # defaults to the dataset's or project's name


@dataclass(frozen=True)
class ResolvedInput:
    name: str
    kind: InputKind
    tree: Tree
    dataset_version: DatasetVersion | None = None
    source_job: Job | None = None


def resolve_inputs(user: AnyUser, requests: list[InputRequest]) -> list[ResolvedInput]:
    """Every input's tree, or a ValidationFailed naming the first that cannot be mounted."""
    limit = settings.FERRY_MAX_JOB_INPUTS
    if len(requests) > limit:
        raise ValidationFailed(
            f"A job may mount at most {limit} inputs; this one asks for {len(requests)}.",
            fields={"inputs": [f"At most {limit}."]},
            code="too_many_inputs",
        )
    resolved = [_resolve(user, request) for request in requests]
    seen: set[str] = set()
    for item in resolved:
        if item.name in seen:
            raise ValidationFailed(
                f"Two inputs are mounted as {item.name!r}; give each its own name (SOURCE:NAME).",
                fields={"inputs": [f"{item.name!r} is used twice."]},
                code="duplicate_mount",
            )
        seen.add(item.name)
    return resolved


def _resolve(user: AnyUser, request: InputRequest) -> ResolvedInput:
    parts = request.source.strip("/").split("/")
    if len(parts) in (3, 4) and parts[1] == "datasets":
        return _dataset_input(user, parts, request.mount)
    if len(parts) in (4, 5) and parts[1] == "projects" and parts[4:] in ([], ["output"]):
        return _output_input(user, parts, request.mount)
    raise ValidationFailed(
        f"{request.source!r} is not an input Ferry knows: give OWNER/datasets/NAME[/VERSION] "
        "or OWNER/projects/NAME/JOB[/output].",
        fields={"inputs": [f"Unknown source {request.source!r}."]},
        code="invalid_input",
    )


def _mount_name(mount: str, default: str) -> str:
    name = mount or default
    if len(name) > 64 or not NAME_RE.match(name):
        raise ValidationFailed(
            f"{name!r} cannot be a mount name: use {NAME_RULE}, at most 64 characters.",
            fields={"inputs": [f"Bad mount name {name!r}."]},
            code="invalid_input",
        )
    return name


def _number(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed(
            f"{text!r} is not a {what} number.",
            fields={"inputs": [f"Bad {what} number {text!r}."]},
            code="invalid_input",
        )
    return int(text)


def _dataset_input(user: AnyUser, parts: list[str], mount: str) -> ResolvedInput:
    owner, _, name, *rest = parts
    dataset = _as_input_error(lambda: dataset_get(user, owner, name, DatasetAction.VIEW))
    if rest:
        number = _number(rest[0], "version")
        version = _as_input_error(lambda: version_get(dataset, number))
    else:
        found = dataset.versions.select_related("tree").order_by("-number").first()
        if found is None:
            raise ValidationFailed(
                f"{dataset.full_name} has no versions yet; upload one with `ferry data upload`.",
                fields={"inputs": ["Empty dataset."]},
                code="invalid_input",
            )
        version = found
    return ResolvedInput(
        _mount_name(mount, dataset.name), InputKind.DATASET, version.tree, dataset_version=version
    )


def _output_input(user: AnyUser, parts: list[str], mount: str) -> ResolvedInput:
    owner, _, name, number_text, *_ = parts
    project = _as_input_error(lambda: project_get(user, owner, name, ProjectAction.VIEW))
    number = _number(number_text, "job")
    job = Job.objects.filter(project=project, number=number).select_related("output_tree").first()
    if job is None:
        raise ValidationFailed(
            f"{project.full_name} has no job {number}.",
            fields={"inputs": [f"No job {number}."]},
            code="invalid_input",
        )
    if job.output_tree is None:
        raise ValidationFailed(
            f"Job {job} has no output yet ({job.status}); mount it once it has finished.",
            fields={"inputs": [f"Job {number} has no output."]},
            code="invalid_input",
        )
    return ResolvedInput(
        _mount_name(mount, project.name), InputKind.OUTPUT, job.output_tree, source_job=job
    )


T = TypeVar("T")


def _as_input_error(find: Callable[[], T]) -> T:
    """A missing dataset or job is bad input to this request: a 400 that names it, not a 404."""
    try:
        return find()
    except NotFound as exc:
        raise ValidationFailed(
            exc.message, fields={"inputs": [exc.message]}, code="invalid_input"
        ) from exc
