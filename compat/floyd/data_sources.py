"""What floyd-cli calls data — a dataset version, an upload on its way to being one, a job's
output — found by id or by name, checked for the caller, and shaped as its ``Data`` JSON."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.policy import AnyUser
from blobs.models import Tree
from compat.floyd.data_uploads import upload_get
from compat.floyd.ids import DATA_KINDS, module_id, parse_module_id, plain_id
from compat.floyd.models import DataUpload, UploadState
from core.errors import NotFound
from datasets.models import Dataset, DatasetVersion
from datasets.policy import DatasetAction, authorize_dataset
from datasets.selectors import dataset_get, version_get
from jobs.models import Job
from jobs.selectors import job_get
from projects.policy import ProjectAction, authorize_project


@dataclass(frozen=True)
class DataSource:
    """One data module as floyd-cli sees it; ``tree`` is None until there are files."""

    id: str  # data-<version id>, upload-<upload id> or output-<job id> (compat.floyd.ids)
    name: str  # alice/datasets/mnist/3 or alice/projects/mnist/4/output
    created: datetime
    description: str
    state: str
    tree: Tree | None
    version: int | None
    public: bool

    @property
    def kind(self) -> str:
        return self.id.partition("-")[0]


# --- shaping ------------------------------------------------------------------------------------


def of_version(version: DatasetVersion) -> DataSource:
    dataset = version.dataset
    return DataSource(
        id=module_id("data", version.id),
        name=f"{dataset.full_name}/{version.number}",
        created=version.created_at,
        description=version.message,
        state=UploadState.VALID,
        tree=version.tree,
        version=version.number,
        public=dataset.is_public,
    )


def of_upload(upload: DataUpload) -> DataSource:
    """An upload; once committed, its version under the upload's id (floyd-cli keeps asking by
    the id it was given)."""
    version = upload.version
    return DataSource(
        id=module_id("upload", upload.id),
        name=f"{upload.dataset.full_name}/{version.number if version else upload.number_hint}",
        created=upload.created_at,
        description=upload.error or upload.message,
        state=upload.state,
        tree=version.tree if version is not None else None,
        version=version.number if version is not None else None,
        public=upload.dataset.is_public,
    )


def of_output(job: Job) -> DataSource:
    # A job that is still running may have an output already (a checkpoint): readable, but
    # not "valid" until the job has finished and its output is final.
    state = UploadState.VALID if job.is_finished else str(job.status)
    return DataSource(
        id=module_id("output", job.id),
        name=f"{job.project.full_name}/{job.number}/output",
        created=job.finished_at or job.created_at,
        description=job.message,
        state=state,
        tree=job.output_tree,
        version=None,
        public=job.project.is_public,
    )


def data_json(source: DataSource) -> dict[str, Any]:
    """floyd-cli's ``Data``: it refuses anything whose module_type is not "DataModule"."""
    size = source.tree.total_size if source.tree is not None else 0
    return {
        "id": source.id,
        "name": source.name,
        "date_created": source.created.isoformat(),
        "description": source.description,
        "data": {"state": source.state, "size": human_size(size)},
        "version": str(source.version) if source.version is not None else None,
        "resource_id": source.id,
        "public": source.public,
        "module_type": "DataModule",
    }


def resource_json(source: DataSource) -> dict[str, Any]:
    """floyd-cli's ``Resource``."""
    size = source.tree.total_size if source.tree is not None else 0
    finalized = source.created.isoformat() if source.state == UploadState.VALID else None
    return {
        "id": source.id,
        "state": source.state,
        "resource_type": "data",
        "size": str(size),
        "date_finalized": finalized,
        "date_last_updated": source.created.isoformat(),
    }


def human_size(size: int) -> str:
    """As floyd-cli prints sizes: 1.5MiB."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi"):
        if abs(value) < 1024:
            return f"{value:3.1f}{unit}B"
        value /= 1024
    return f"{value:.1f}EiB"


# --- finding ------------------------------------------------------------------------------------


def source_get(user: AnyUser, identifier: str) -> DataSource:
    """The data module ``identifier`` names (data-N, upload-N, output-N), if ``user`` may see
    it; NotFound otherwise."""
    kind, number = parse_module_id(identifier, *DATA_KINDS)
    if kind == "data":
        return of_version(version_by_id(user, number))
    if kind == "upload":
        return of_upload(upload_visible(user, number))
    return of_output(job_by_id(user, number))


def version_by_id(user: AnyUser, version_id: int) -> DatasetVersion:
    version = (
        DatasetVersion.objects.select_related("tree", "dataset__owner_user", "dataset__owner_team")
        .filter(id=version_id)
        .first()
    )
    if version is None:
        raise NotFound(f"Nothing here is called data-{version_id}.")
    authorize_dataset(user, version.dataset, DatasetAction.VIEW)
    return version


def upload_visible(user: AnyUser, upload_id: int) -> DataUpload:
    upload = upload_get(upload_id)
    authorize_dataset(user, upload.dataset, DatasetAction.VIEW)
    return upload


def job_by_id(user: AnyUser, job_id: int) -> Job:
    job = (
        Job.objects.select_related("project__owner_user", "project__owner_team", "output_tree")
        .filter(id=job_id)
        .first()
    )
    if job is None:
        raise NotFound(f"No job has the id {job_id}.")
    authorize_project(user, job.project, ProjectAction.VIEW)
    return job


def job_output(job: Job) -> DataSource:
    if job.output_tree is None:
        raise NotFound(
            f"Job {job} has no output yet ({job.status}); it has one once it has finished."
        )
    return of_output(job)


def named_version(user: AnyUser, owner: str, name: str, number: str | None) -> DataSource:
    """``owner/datasets/name/N``, or its latest version without N."""
    dataset = dataset_get(user, owner, name, DatasetAction.VIEW)
    if number is None:
        latest = dataset.versions.select_related("tree").order_by("-number").first()
        if latest is None:
            raise NotFound(f"{dataset.full_name} has no versions yet; upload one first.")
        return of_version(latest)
    return of_version(version_get(dataset, _number(number, f"{dataset.full_name}", "version")))


def named_output(user: AnyUser, owner: str, project: str, number: str) -> DataSource:
    """``owner/projects/project/N/output``."""
    job = job_get(user, owner, project, _number(number, project, "job"), ProjectAction.VIEW)
    return job_output(job)


def _number(text: str, where: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise NotFound(f"{where} has no {what} {text!r}; {what}s are numbered 1, 2, 3...")
    return int(text)


def dataset_by_id(user: AnyUser, text: str, action: DatasetAction) -> Dataset:
    """A dataset by its id, as floyd-cli sends it (the ``family_id`` of ``floyd data init``)."""
    dataset = (
        Dataset.objects.select_related("owner_user", "owner_team")
        .filter(id=plain_id(text, "dataset"))
        .first()
    )
    if dataset is None:
        raise NotFound(f"No dataset has the id {text!r}.")
    authorize_dataset(user, dataset, action)
    return dataset


def sources_of(dataset: Dataset) -> list[DataSource]:
    """A dataset's versions, newest first, then its uploads that are no version (yet)."""
    versions = dataset.versions.select_related("tree").order_by("-number")
    uploads = DataUpload.objects.filter(dataset=dataset, version__isnull=True).order_by("-id")
    for version in versions:
        version.dataset = dataset  # spares a query per row
    for upload in uploads:
        upload.dataset = dataset
    return [of_version(v) for v in versions] + [of_upload(u) for u in uploads]
