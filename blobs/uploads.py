"""The upload protocol, server side.

1. The client names the blobs it has (digest and size). ``uploads_plan`` answers with those the
   user has not uploaded before, each with where to send it in the user's staging area: one
   signed PUT for a small blob, signed part PUTs of a multipart upload for a large one (only the
   parts the storage does not hold yet).
2. The client sends the bytes straight to the storage, in parallel.
3. ``uploads_finish`` joins multipart uploads, checks each staged blob against its digest and
   size, moves it into the shared store (or drops it, if the store already holds it), and
   records the blob and the user's claim (see ``BlobClaim``).
4. The client commits a tree naming the blobs (``blobs.services.tree_create``).

Interrupted anywhere, the client starts again at 1 and sends only what is still missing.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from blobs.models import Blob, BlobClaim, BlobUpload
from blobs.storage import BlobStorage, PutTarget, StorageError, get_storage

# Finishing is dominated by round trips to the storage (a HEAD and a copy per blob with S3):
# overlapping them is what keeps a 10,000-file upload quick.
FINISH_THREADS = 16


@dataclass(frozen=True)
class Wanted:
    digest: str
    size: int


@dataclass(frozen=True)
class PartPlan:
    number: int
    offset: int
    size: int
    target: PutTarget


@dataclass(frozen=True)
class UploadPlan:
    digest: str
    size: int
    method: str  # "put" or "multipart"
    parts: list[PartPlan]
    parts_done: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FinishResult:
    registered: list[str]
    failed: dict[str, str]


def staging_area(user_id: int) -> BlobStorage:
    return get_storage().area(f"staging/{user_id}")


def claimed_digests(user_id: int, digests: set[str]) -> set[str]:
    rows = BlobClaim.objects.filter(user_id=user_id, blob_id__in=digests)
    return set(rows.values_list("blob_id", flat=True))


def uploads_plan(*, user_id: int, wanted: list[Wanted]) -> list[UploadPlan]:
    """Where to send each blob the user has not uploaded yet; claimed blobs are left out."""
    unique = {w.digest: w for w in wanted}
    have = claimed_digests(user_id, set(unique))
    staging = staging_area(user_id)
    return [_plan(user_id, staging, w) for d, w in unique.items() if d not in have]


def _plan(user_id: int, staging: BlobStorage, wanted: Wanted) -> UploadPlan:
    ttl = settings.FERRY_SIGNED_URL_SECONDS
    if wanted.size < settings.FERRY_MULTIPART_THRESHOLD:
        target = staging.put_target(wanted.digest, wanted.size, ttl)
        return UploadPlan(wanted.digest, wanted.size, "put", [PartPlan(1, 0, wanted.size, target)])
    upload = _multipart_upload(user_id, staging, wanted)
    done = {part.number for part in staging.multipart_parts(upload.digest, upload.upload_id)}
    parts = [
        PartPlan(
            number,
            offset,
            size,
            staging.multipart_part_target(upload.digest, upload.upload_id, number, ttl),
        )
        for number, offset, size in part_layout(upload.size, upload.part_size)
        if number not in done
    ]
    return UploadPlan(wanted.digest, wanted.size, "multipart", parts, sorted(done))


def part_layout(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(number, offset, size)`` of each part, numbered from 1."""
    return [
        (index + 1, offset, min(part_size, size - offset))
        for index, offset in enumerate(range(0, size, part_size))
    ]


def _multipart_upload(user_id: int, staging: BlobStorage, wanted: Wanted) -> BlobUpload:
    """The user's upload in flight for this blob, started if there is none or it went stale."""
    upload = BlobUpload.objects.filter(user_id=user_id, digest=wanted.digest).first()
    if upload is not None and upload.size == wanted.size and _alive(staging, upload):
        return upload
    if upload is not None:
        staging.multipart_abort(upload.digest, upload.upload_id)
        upload.delete()
    upload_id = staging.multipart_start(wanted.digest)
    try:
        with transaction.atomic():
            return BlobUpload.objects.create(
                user_id=user_id,
                digest=wanted.digest,
                size=wanted.size,
                upload_id=upload_id,
                part_size=settings.FERRY_MULTIPART_PART_SIZE,
            )
    except IntegrityError:  # the same user's other client started one at once: share it
        staging.multipart_abort(wanted.digest, upload_id)
        return BlobUpload.objects.get(user_id=user_id, digest=wanted.digest)


def _alive(staging: BlobStorage, upload: BlobUpload) -> bool:
    try:
        staging.multipart_parts(upload.digest, upload.upload_id)
    except StorageError:  # the storage forgot it (aborted, expired)
        return False
    return True


def uploads_finish(*, user_id: int, blobs: list[Wanted]) -> FinishResult:
    """Check and store each staged blob; claim it for the user. Failures are reported per blob.

    The database is read and written here, in the caller's thread; only the storage round trips
    run in the pool.
    """
    unique = list({w.digest: w for w in blobs}.values())
    digests = {w.digest for w in unique}
    todo = [w for w in unique if w.digest not in claimed_digests(user_id, digests)]
    uploads = {u.digest: u for u in BlobUpload.objects.filter(user_id=user_id, digest__in=digests)}
    known = dict(Blob.objects.filter(digest__in=digests).values_list("digest", "size"))
    staging = staging_area(user_id)

    def settle(wanted: Wanted) -> str | None:
        try:
            _settle(staging, wanted, uploads.get(wanted.digest), known.get(wanted.digest))
        except StorageError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=FINISH_THREADS) as pool:
        errors = dict(zip((w.digest for w in todo), pool.map(settle, todo), strict=True))
    BlobUpload.objects.filter(id__in=[u.id for u in uploads.values()]).delete()
    stored = [w for w in todo if errors[w.digest] is None]
    _record(user_id, stored)
    failed = {digest: error for digest, error in errors.items() if error is not None}
    return FinishResult([w.digest for w in unique if w.digest not in failed], failed)


def _settle(
    staging: BlobStorage, wanted: Wanted, upload: BlobUpload | None, known_size: int | None
) -> None:
    """Storage side of finishing one blob: join, check, then move into the store or drop."""
    if upload is not None:
        try:
            staging.multipart_complete(upload.digest, upload.upload_id)
        except StorageError:
            staging.multipart_abort(upload.digest, upload.upload_id)  # leave no parts behind
            raise
    if not staging.verify(wanted.digest, wanted.size):
        staging.delete(wanted.digest)
        raise StorageError(
            f"no upload of {wanted.digest} with {wanted.size} bytes and that digest arrived; "
            "upload it again"
        )
    if known_size is not None:
        staging.delete(wanted.digest)  # the store holds these bytes already
        if known_size != wanted.size:  # impossible for equal digests; refuse, never guess
            raise StorageError(f"blob {wanted.digest} is stored with another size")
        return
    get_storage().adopt(staging, wanted.digest)


def _record(user_id: int, stored: list[Wanted]) -> None:
    # ignore_conflicts: another user may have recorded the same blob at the same moment.
    Blob.objects.bulk_create(
        [Blob(digest=w.digest, size=w.size) for w in stored], ignore_conflicts=True
    )
    BlobClaim.objects.bulk_create(
        [BlobClaim(blob_id=w.digest, user_id=user_id) for w in stored], ignore_conflicts=True
    )
