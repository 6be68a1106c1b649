"""Garbage collection: trees nothing uses, then blobs no tree names, after a grace period;
then what uploads left behind: multipart uploads never finished, and bytes no row records (a
direct upload never finished, a staged one never adopted).

The grace period protects work in flight: a tree committed a moment ago whose dataset version
is being written, and blobs a user has just uploaded (or just claimed) and is about to name in
a tree. Whatever is removed goes from the database first, under a condition that it is still
unused, and from the storage after, under the blobs' locks; a crash between the two leaves only
an orphan file, which a re-upload overwrites, or the next collection removes.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from blobs.locks import blob_locks
from blobs.models import Blob, BlobClaim, BlobUpload, Tree, TreeEntry
from blobs.storage import StorageError, get_storage
from blobs.uploads import staging_area, upload_area

logger = logging.getLogger(__name__)

GRACE = timedelta(hours=24)
BATCH = 500


@dataclass(frozen=True)
class Collected:
    trees: int
    blobs: int
    uploads: int = 0  # multipart uploads abandoned
    orphans: int = 0  # stored bytes that no row records


def collect_garbage(*, now: datetime | None = None, grace: timedelta = GRACE) -> Collected:
    cutoff = (now or timezone.now()) - grace
    return Collected(
        trees=_collect_trees(cutoff),
        blobs=_collect_blobs(cutoff),
        uploads=_abort_stale_uploads(cutoff),
        orphans=_collect_orphans(cutoff),
    )


def _tree_users() -> list[str]:
    """The reverse relations through which other apps use trees (dataset versions, jobs...).

    Read from the model graph, so this module needs to know none of those apps.
    """
    return [
        relation.get_accessor_name() or relation.name
        for relation in Tree._meta.related_objects
        if relation.related_model is not TreeEntry
    ]


def unused_trees(cutoff: datetime) -> models.QuerySet[Tree]:
    unused = Tree.objects.filter(created_at__lt=cutoff)
    for accessor in _tree_users():
        unused = unused.filter(**{f"{accessor}__isnull": True})
    return unused


def _collect_trees(cutoff: datetime) -> int:
    removed = 0
    while batch := list(unused_trees(cutoff).values_list("id", flat=True)[:BATCH]):
        Tree.objects.filter(id__in=batch).delete()  # its entries go with it
        removed += len(batch)
    return removed


def unused_blobs(cutoff: datetime) -> models.QuerySet[Blob]:
    named = TreeEntry.objects.filter(blob=OuterRef("pk"))
    fresh_claim = BlobClaim.objects.filter(blob=OuterRef("pk"), created_at__gte=cutoff)
    return (
        Blob.objects.filter(created_at__lt=cutoff)
        .exclude(Exists(named))
        .exclude(Exists(fresh_claim))
    )


def _collect_blobs(cutoff: datetime) -> int:
    removed = 0
    while batch := list(unused_blobs(cutoff).values_list("digest", flat=True)[:BATCH]):
        with transaction.atomic():
            # Locked, a row cannot gain a tree entry (whose foreign key check waits for the
            # lock) between this check and the delete.
            locked = unused_blobs(cutoff).filter(digest__in=batch).select_for_update()
            gone = list(locked.values_list("digest", flat=True))
            Blob.objects.filter(digest__in=gone).delete()
        _delete_bytes(gone)
        removed += len(gone)
        if len(gone) < len(batch):
            break
    return removed


def _delete_bytes(digests: list[str]) -> int:
    """Remove the bytes of blobs whose rows are gone, unless an upload recorded one again.

    Under the blobs' locks (see blobs.locks): an upload of the same bytes finishing meanwhile
    either recorded its row before (and the bytes stay) or checks the storage after. Returns
    how many were removed.
    """
    storage = get_storage()
    removed = 0
    with blob_locks(digests):
        back = set(Blob.objects.filter(digest__in=digests).values_list("digest", flat=True))
        for digest in digests:
            if digest in back:
                continue
            try:
                storage.delete(digest)
            except StorageError:
                logger.warning("blob %s left in storage; it is unused", digest, exc_info=True)
                continue
            removed += 1
    return removed


def _abort_stale_uploads(cutoff: datetime) -> int:
    stale = list(BlobUpload.objects.filter(created_at__lt=cutoff))
    for upload in stale:
        try:
            upload_area(upload).multipart_abort(upload.digest, upload.upload_id)
        except StorageError:
            logger.warning("upload %s could not be aborted", upload.upload_id, exc_info=True)
    BlobUpload.objects.filter(id__in=[upload.id for upload in stale]).delete()
    return len(stale)


def _collect_orphans(cutoff: datetime) -> int:
    """Bytes older than ``cutoff`` in the store with no Blob row, and in staging areas."""
    removed = 0
    for batch in _batches(get_storage().stored_before(cutoff)):
        removed += _delete_bytes(batch)
    for user_id in get_user_model().objects.values_list("pk", flat=True).iterator():
        staging = staging_area(user_id)
        for digest in list(staging.stored_before(cutoff)):
            staging.delete(digest)
            removed += 1
    return removed


def _batches(items: Iterable[str]) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, BATCH)):
        yield batch
