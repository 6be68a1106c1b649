"""Files logged to a run through MLflow's artifact API (``mlflow.log_artifact``).

The bytes go to Ferry's blob storage like every other file (stored once per digest); the run's
files are a tree (``RunArtifacts``), replaced by a new tree at each file logged, under a lock of
the run's row so that two uploads at once both end up in it.
"""

import tempfile
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from blobs.digests import Readable, copy_hashing
from blobs.locks import blob_locks
from blobs.models import Blob, TreeEntry
from blobs.services import tree_create
from blobs.storage import get_storage
from blobs.trees import Entry, InvalidManifest, check_path
from blobs.uploads import record_blobs
from core.errors import NotFound, ValidationFailed
from jobs.models import Job
from tracking.models import RunArtifacts

# Files up to this size are spooled in memory before they are stored; larger ones on disk.
SPOOL_BYTES = 8 * 1024 * 1024


def artifact_put(job: Job, path: str, stream: Readable) -> int:
    """Store ``stream`` as the run's file ``path`` (replacing one there); returns its size."""
    _check(path)
    owner = job.created_by_id
    if owner is None:
        raise ValidationFailed(f"Job {job} has no owner left to keep files for.")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        digest, size = copy_hashing(stream, spool)
        spool.seek(0)
        if not Blob.objects.filter(digest=digest).exists():
            get_storage().save(digest, spool)
    with blob_locks([digest]):
        record_blobs(owner, {digest: size}, [digest])
    with transaction.atomic():
        entries = {entry.path: entry for entry in _entries(job, lock=True)}
        entries[path] = Entry(path, digest, size)
        tree = tree_create(entries.values(), author_id=owner)
        RunArtifacts.objects.update_or_create(
            job=job, defaults={"tree": tree, "updated_at": timezone.now()}
        )
    return size


def artifact_get(job: Job, path: str) -> TreeEntry:
    _check(path)
    found = RunArtifacts.objects.filter(job=job).values_list("tree_id", flat=True).first()
    entry = TreeEntry.objects.filter(tree_id=found, path=path).first() if found else None
    if entry is None:
        raise NotFound(f"Run {job.id} has no artifact {path!r}.")
    return entry


@dataclass(frozen=True)
class Listed:
    path: str  # relative to the directory listed
    is_dir: bool
    size: int | None


def artifacts_list(job: Job, directory: str) -> list[Listed]:
    """What ``directory`` of the run's files holds: files with their sizes, and directories."""
    prefix = f"{directory.strip('/')}/" if directory.strip("/") else ""
    found: dict[str, Listed] = {}
    for entry in _entries(job):
        if not entry.path.startswith(prefix):
            continue
        name, slash, _ = entry.path[len(prefix) :].partition("/")
        found.setdefault(
            name, Listed(name, True, None) if slash else Listed(name, False, entry.size)
        )
    return sorted(found.values(), key=lambda listed: listed.path)


def artifact_delete(job: Job, path: str) -> None:
    """Remove the file ``path``, or every file under the directory ``path``."""
    owner = job.created_by_id
    if owner is None:
        raise ValidationFailed(f"Job {job} has no owner left to keep files for.")
    prefix = path.strip("/")
    with transaction.atomic():
        entries = _entries(job, lock=True)
        kept = [e for e in entries if e.path != prefix and not e.path.startswith(f"{prefix}/")]
        if len(kept) == len(entries):
            raise NotFound(f"Run {job.id} has no artifact {path!r}.")
        tree = tree_create(kept, author_id=owner)
        RunArtifacts.objects.filter(job=job).update(tree=tree, updated_at=timezone.now())


def _entries(job: Job, *, lock: bool = False) -> list[Entry]:
    rows = RunArtifacts.objects.filter(job=job)
    if lock:
        # The run's row is the lock; a run's first file has none yet: lock the job's instead.
        Job.objects.select_for_update().filter(id=job.id).exists()
        rows = rows.select_for_update()
    artifacts = rows.first()
    if artifacts is None:
        return []
    return [
        Entry(path, digest, size, mode)
        for path, digest, size, mode in artifacts.tree.entries.values_list(
            "path", "blob_id", "size", "mode"
        )
    ]


def _check(path: str) -> None:
    try:
        check_path(path)
    except InvalidManifest as exc:
        raise ValidationFailed(f"{path!r} cannot name an artifact: {exc}") from exc
