"""``floyd data add ns/projects/p/N/output``: a finished job's files as a dataset's next
version. The version names the job's tree; no byte is copied."""

from django.core.exceptions import ValidationError as DjangoValidationError

from accounts.models import User
from accounts.services import owner_for_new
from blobs.models import Tree
from core.errors import Conflict, NotFound, ValidationFailed
from core.names import validate_project_name
from datasets.models import Dataset, DatasetVersion
from datasets.policy import DatasetAction
from datasets.selectors import dataset_get
from datasets.services import dataset_create, dataset_version_commit
from jobs.models import Job
from jobs.selectors import job_get
from projects.policy import ProjectAction

# What FloydHub let a version be made of. A Ferry job keeps its code and its output; "files"
# (FloydHub's working directory of the job) is its output here.
SOURCE_KINDS = ("output", "files", "code")
SOURCE_RULE = "OWNER/projects/PROJECT/N/output (or /code)"


def version_from_job(*, actor: User, dataset: Dataset, source: str) -> DatasetVersion:
    """Make the tree that ``source`` names the dataset's next version."""
    job, kind = _job_of(actor, source)
    tree = _tree_of(job, kind)
    return dataset_version_commit(
        actor=actor, dataset=dataset, tree_digest=tree.digest, message=f"{kind} of job {job}"
    )


def _job_of(actor: User, source: str) -> tuple[Job, str]:
    parts = source.strip().strip("/").split("/")
    kind = parts.pop() if len(parts) == 5 else "output"
    if len(parts) != 4 or parts[1] != "projects" or kind not in SOURCE_KINDS:
        raise ValidationFailed(f"{source!r} names no job's files: give {SOURCE_RULE}.")
    owner, _, project, number = parts
    if not number.isascii() or not number.isdigit() or len(number) > 9:
        raise ValidationFailed(f"{number!r} is not a job number: give {SOURCE_RULE}.")
    try:
        job = job_get(actor, owner, project, int(number), ProjectAction.VIEW)
    except NotFound as exc:  # bad input to this request, which exists: a 400 that says so
        raise ValidationFailed(exc.message, code="invalid_source") from exc
    return job, kind


def _tree_of(job: Job, kind: str) -> Tree:
    if kind == "code":
        tree = job.code_tree
    else:
        if not job.is_finished:
            raise ValidationFailed(
                f"Job {job} is still {job.status}; add its output once it has finished.",
                code="job_unfinished",
            )
        tree = job.output_tree
    if tree is None:
        raise ValidationFailed(f"Job {job} has no {kind} to add.", code="nothing_to_add")
    return tree


def dataset_found_or_created(actor: User, owner: str, name: str) -> Dataset:
    """The dataset ``owner/name``, created if it does not exist and ``actor`` may create it
    there: floyd-cli cannot create datasets (``floyd data init`` sends its user to a FloydHub
    web page), as ``ferry data init`` does."""
    try:
        return dataset_get(actor, owner, name, DatasetAction.VIEW)
    except NotFound:
        pass
    try:
        validate_project_name(name)
    except DjangoValidationError as exc:
        rule = " ".join(exc.messages)
        raise ValidationFailed(f"{name!r} cannot be a dataset name. {rule}") from exc
    owner_for_new(actor, owner)  # raises unless the caller may create there
    try:
        return dataset_create(actor=actor, name=name, owner=owner)
    except Conflict:  # made by a request beside this one
        return dataset_get(actor, owner, name, DatasetAction.VIEW)
