"""``floyd data upload``, server side: every change to a DataUpload goes through here.

Refusals floyd-cli shows its user are 400s, since it prints the message of a 400 and only the
status of a 409; the tus side keeps tus's 409 for an offset that moved.

floyd-cli tars and gzips the directory, asks for a data module (``upload_start``) and for
credentials (``upload_credentials``), then sends the tarball with tus 1.0: one creation POST
(``tus_create``), then PATCHes of 5 MiB in order (``tus_append``), each resumable from the
offset HEAD reports. The last byte moves the upload to ``unpacking`` and enqueues the task that
makes the dataset version (``compat.floyd.data_unpack``).

Each PATCH is kept whole or not at all, as one chunk in the blob storage: a PATCH cut short
leaves the offset where it was, and the client sends that part again.
"""

import hashlib
import hmac
import secrets
import tempfile
from datetime import timedelta
from functools import partial
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from blobs.digests import CHUNK, Readable
from blobs.storage import BlobStorage, StorageError, get_storage
from compat.floyd.models import RECEIVING, DataUpload, UploadChunk, UploadState
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from datasets.models import Dataset
from datasets.policy import DatasetAction, authorize_dataset

# Credentials outlive any upload floyd-cli sends in one go (it asks again when resuming).
TOKEN_LIFETIME = timedelta(days=7)
# floyd-cli sends 5 MiB per PATCH; other tus clients may send more in one. A PATCH is spooled
# to disk before it is stored, so this bounds that, not memory.
MAX_PATCH_BYTES = 256 * 1024 * 1024


def max_upload_bytes() -> int:
    """The largest tarball accepted: as large as the largest single file Ferry keeps."""
    return int(settings.FERRY_MAX_BLOB_SIZE)


def chunk_area(upload_id: int) -> BlobStorage:
    """Where an upload's chunks live until it is unpacked: apart from the store and from the
    users' staging areas, which the garbage collector sweeps on its own schedule."""
    return get_storage().area(f"floyd-uploads/{upload_id}")


# --- the data module and its credentials --------------------------------------------------------


def upload_start(*, actor: User, dataset: Dataset, message: str = "") -> DataUpload:
    """A new upload into ``dataset``; no bytes yet."""
    authorize_dataset(actor, dataset, DatasetAction.WRITE)
    latest = dataset.versions.aggregate(latest=Max("number"))["latest"] or 0
    return DataUpload.objects.create(
        dataset=dataset, user=actor, message=message, number_hint=latest + 1
    )


def upload_credentials(*, actor: User, upload: DataUpload) -> str:
    """A fresh secret for the tus endpoint (the previous one stops working)."""
    _check_uploader(actor, upload)
    if not upload.is_receiving:
        raise ValidationFailed(
            f"upload-{upload.id} has all its bytes already ({upload.state}); start a new "
            "upload with 'floyd data upload'."
        )
    secret = secrets.token_urlsafe(32)
    upload.token_hash = _hashed(secret)
    upload.token_issued_at = timezone.now()
    upload.save(update_fields=["token_hash", "token_issued_at"])
    return secret


def upload_authenticate(upload_id: int, secret: str) -> DataUpload | None:
    """The upload these credentials open, or None: unknown, wrong secret, or expired."""
    upload = DataUpload.objects.select_related("user").filter(id=upload_id).first()
    if upload is None or not upload.token_hash or upload.token_issued_at is None:
        return None
    if not hmac.compare_digest(upload.token_hash, _hashed(secret)):
        return None
    if upload.token_issued_at + TOKEN_LIFETIME < timezone.now() or not upload.user.is_active:
        return None
    return upload


def _hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_uploader(actor: User, upload: DataUpload) -> None:
    if upload.user_id != actor.pk:
        raise PermissionDenied(f"upload-{upload.id} is someone else's upload.")


def upload_delete(*, actor: User, upload: DataUpload) -> None:
    """Drop an upload that never became a version, and its bytes."""
    if upload.user_id != actor.pk:
        authorize_dataset(actor, upload.dataset, DatasetAction.MANAGE)
    if upload.version_id is not None:
        raise ValidationFailed(
            f"upload-{upload.id} is version data-{upload.version_id} now; delete that."
        )
    if upload.state == UploadState.UNPACKING:
        raise ValidationFailed(
            f"upload-{upload.id} is being unpacked; wait until it is valid or failed, then delete."
        )
    chunks_drop(upload.id)
    upload.delete()


# --- tus ----------------------------------------------------------------------------------------


def tus_create(upload: DataUpload, length: int) -> DataUpload:
    """Fix the tarball's length (tus creation); again with the same length is harmless."""
    if length < 0:
        raise ValidationFailed("Upload-Length must be a whole number of bytes.")
    if length > max_upload_bytes():
        raise ValidationFailed(
            f"This server takes uploads of at most {max_upload_bytes()} bytes; "
            f"this one has {length}. Split the data into several datasets.",
            code="too_large",
        )
    if not upload.is_receiving:
        raise Conflict(f"upload-{upload.id} is {upload.state}; start a new upload.")
    if upload.received and upload.length != length:
        raise Conflict(
            f"upload-{upload.id} has {upload.received} bytes of a {upload.length}-byte file "
            f"already; resume it ('floyd data upload -r') or start a new one."
        )
    state = UploadState.UNPACKING if length == 0 else UploadState.UPLOADING
    with transaction.atomic():
        DataUpload.objects.filter(id=upload.id).update(
            length=length, state=state, updated_at=timezone.now()
        )
        if state == UploadState.UNPACKING:
            _unpack_on_commit(upload.id)
    upload.refresh_from_db()
    return upload


def tus_append(upload: DataUpload, offset: int, body: Readable, size: int) -> int:
    """Keep ``size`` bytes of ``body`` at ``offset``; the new offset. Nothing is kept unless
    all of them arrive and ``offset`` is still where the upload stands."""
    _check_append(upload, offset, size)
    if size == 0:
        return upload.received
    area = chunk_area(upload.id)
    with tempfile.TemporaryFile() as spool:
        digest = _spool(body, size, spool)
        spool.seek(0)
        area.save(digest, spool)
    end = offset + size
    state = UploadState.UNPACKING if end == upload.length else UploadState.UPLOADING
    with transaction.atomic():
        # Conditional on the offset: of two PATCHes sent at once, one moves it, the other is
        # told it lost (409) and keeps nothing.
        moved = DataUpload.objects.filter(
            id=upload.id, received=offset, state__in=RECEIVING
        ).update(received=end, state=state, updated_at=timezone.now())
        if moved:
            UploadChunk.objects.create(upload=upload, offset=offset, size=size, digest=digest)
            if state == UploadState.UNPACKING:
                _unpack_on_commit(upload.id)
    if not moved:
        if not UploadChunk.objects.filter(upload=upload, digest=digest).exists():
            area.delete(digest)
        raise Conflict(
            f"Another request moved upload-{upload.id} past offset {offset}; ask for the "
            "offset again (HEAD) and resume from there."
        )
    return end


def _check_append(upload: DataUpload, offset: int, size: int) -> None:
    if not upload.is_receiving:
        raise Conflict(f"upload-{upload.id} takes no more bytes: it is {upload.state}.")
    if upload.length is None:
        raise Conflict(f"upload-{upload.id} has no length yet; create it with a POST first.")
    if offset != upload.received:
        raise Conflict(
            f"upload-{upload.id} stands at offset {upload.received}, not {offset}; "
            "resume from there."
        )
    if size > MAX_PATCH_BYTES:
        raise ValidationFailed(
            f"Send at most {MAX_PATCH_BYTES} bytes per PATCH; this one has {size}.",
            code="too_large",
        )
    if offset + size > upload.length:
        raise ValidationFailed(
            f"upload-{upload.id} is {upload.length} bytes long; {size} bytes at offset "
            f"{offset} would run past its end.",
            code="too_large",
        )


def _spool(body: Readable, size: int, spool: IO[bytes]) -> str:
    """Copy exactly ``size`` bytes of ``body`` to ``spool``; their SHA-256."""
    hasher = hashlib.sha256()
    left = size
    while left:
        piece = body.read(min(CHUNK, left))
        if not piece:
            raise ValidationFailed(
                f"The request body ended after {size - left} of its {size} bytes; nothing of it "
                "was kept. Resume the upload.",
                code="incomplete_body",
            )
        hasher.update(piece)
        spool.write(piece)
        left -= len(piece)
    return hasher.hexdigest()


def _unpack_on_commit(upload_id: int) -> None:
    from compat.floyd.tasks import unpack_upload_task  # the task module imports this one

    # robust: a broker that is down must not fail the PATCH that brought the last byte; the
    # reaper (``uploads_requeue_stale``) sends the task again.
    transaction.on_commit(partial(unpack_upload_task.delay, upload_id), robust=True)


# --- the chunks ---------------------------------------------------------------------------------


def chunks_of(upload_id: int) -> list[UploadChunk]:
    return list(UploadChunk.objects.filter(upload_id=upload_id).order_by("offset"))


def chunks_drop(upload_id: int) -> None:
    """Remove an upload's bytes and chunk rows; bytes that will not go stay as orphans, which
    is all a failure here can leave."""
    area = chunk_area(upload_id)
    digests = set(UploadChunk.objects.filter(upload_id=upload_id).values_list("digest", flat=True))
    for digest in digests:
        try:
            area.delete(digest)
        except StorageError:
            continue
    UploadChunk.objects.filter(upload_id=upload_id).delete()


def upload_get(upload_id: int) -> DataUpload:
    upload = (
        DataUpload.objects.select_related("dataset__owner_user", "dataset__owner_team", "version")
        .filter(id=upload_id)
        .first()
    )
    if upload is None:
        raise NotFound(f"Nothing here is called upload-{upload_id}.")
    return upload
