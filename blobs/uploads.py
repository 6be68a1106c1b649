"""The upload protocol, server side.

1. The client names the blobs it has (digest and size). ``uploads_plan`` answers with those the
   user has not uploaded before, each with where to send it: one signed PUT for a small blob,
   signed part PUTs of a multipart upload for a large one (only the parts not sent yet).
2. The client sends the bytes straight to the storage, in parallel.
3. ``uploads_finish`` joins multipart uploads, checks each blob against its digest and size,
   and records the blob and the user's claim (see ``BlobClaim``).
4. The client commits a tree naming the blobs (``blobs.services.tree_create``).

Where the bytes go. A blob the store does not hold yet is sent straight to its shared key when
the storage allows it (S3: it refuses bytes that do not match the signed SHA-256, and keeps the
uploader's signed tag with them), so its bytes travel once and are never copied. Otherwise (the
store holds the blob already, or the storage takes no direct uploads) the bytes go to the
user's own staging area: there they prove that the user holds them, and are dropped, or moved
into the store if it lacks them.

Interrupted anywhere, the client starts again at 1 and sends only what is still missing.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac

from blobs.locks import blob_locks
from blobs.models import Blob, BlobClaim, BlobUpload
from blobs.storage import BlobStorage, PutTarget, StorageError, get_storage

# Finishing is dominated by round trips to the storage (a HEAD per blob with S3): overlapping
# them is what keeps a 10,000-file upload quick.
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


class Settled(Enum):
    STORED = "stored"  # new in the store: record the blob and the claim
    PROVEN = "proven"  # the store held it already: record the claim


def staging_area(user_id: int) -> BlobStorage:
    return get_storage().area(f"staging/{user_id}")


def uploader_tag(user_id: int, digest: str) -> str:
    """The tag a direct upload of ``digest`` by this user is signed with, and stored with.

    Only the server can make it, and it differs per user: finding a blob in the store with
    your tag shows that your upload put it there, not someone else's.
    """
    return salted_hmac(
        "ferry.blobs.uploader", f"{user_id}:{digest}", algorithm="sha256"
    ).hexdigest()


def claimed_digests(user_id: int, digests: set[str]) -> set[str]:
    rows = BlobClaim.objects.filter(user_id=user_id, blob_id__in=digests)
    return set(rows.values_list("blob_id", flat=True))


def stored_sizes(digests: set[str]) -> dict[str, int]:
    return dict(Blob.objects.filter(digest__in=digests).values_list("digest", "size"))


def uploads_plan(*, user_id: int, wanted: list[Wanted]) -> list[UploadPlan]:
    """Where to send each blob the user has not uploaded yet; claimed blobs are left out."""
    unique = {w.digest: w for w in wanted}
    have = claimed_digests(user_id, set(unique))
    todo = [w for digest, w in unique.items() if digest not in have]
    stored = stored_sizes({w.digest for w in todo})
    direct = get_storage().direct_uploads
    return [_plan(user_id, w, direct and w.digest not in stored) for w in todo]


def _plan(user_id: int, wanted: Wanted, direct: bool) -> UploadPlan:
    ttl = settings.FERRY_SIGNED_URL_SECONDS
    area = get_storage() if direct else staging_area(user_id)
    tag = uploader_tag(user_id, wanted.digest) if direct else None
    if wanted.size < settings.FERRY_MULTIPART_THRESHOLD:
        target = area.put_target(wanted.digest, wanted.size, ttl, tag)
        return UploadPlan(wanted.digest, wanted.size, "put", [PartPlan(1, 0, wanted.size, target)])
    upload = _multipart_upload(user_id, wanted, direct)
    done = {part.number for part in area.multipart_parts(upload.digest, upload.upload_id)}
    parts = [
        PartPlan(
            number,
            offset,
            size,
            area.multipart_part_target(upload.digest, upload.upload_id, number, ttl),
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


def upload_area(upload: BlobUpload) -> BlobStorage:
    return get_storage() if upload.direct else staging_area(upload.user_id)


def _multipart_upload(user_id: int, wanted: Wanted, direct: bool) -> BlobUpload:
    """The user's upload in flight for this blob, started if there is none, it went stale, or
    it goes to the other place (the store gained the blob meanwhile, or lost it)."""
    upload = BlobUpload.objects.filter(user_id=user_id, digest=wanted.digest).first()
    if upload is not None:
        if upload.size == wanted.size and upload.direct == direct and _alive(upload):
            return upload
        upload_area(upload).multipart_abort(upload.digest, upload.upload_id)
        upload.delete()
    area = get_storage() if direct else staging_area(user_id)
    tag = uploader_tag(user_id, wanted.digest) if direct else None
    upload_id = area.multipart_start(wanted.digest, tag)
    try:
        with transaction.atomic():
            return BlobUpload.objects.create(
                user_id=user_id,
                digest=wanted.digest,
                size=wanted.size,
                upload_id=upload_id,
                part_size=settings.FERRY_MULTIPART_PART_SIZE,
                direct=direct,
            )
    except IntegrityError:  # the same user's other client started one at once: share it
        area.multipart_abort(wanted.digest, upload_id)
        return BlobUpload.objects.get(user_id=user_id, digest=wanted.digest)


def _alive(upload: BlobUpload) -> bool:
    try:
        upload_area(upload).multipart_parts(upload.digest, upload.upload_id)
    except StorageError:  # the storage forgot it (aborted, expired)
        return False
    return True


def uploads_finish(*, user_id: int, blobs: list[Wanted]) -> FinishResult:
    """Check and keep each blob sent; claim it for the user. Failures are reported per blob.

    The database is read and written here, in the caller's thread, holding the locks of the
    blobs (``blobs.locks``); only the storage round trips run in the pool.
    """
    unique = list({w.digest: w for w in blobs}.values())
    digests = {w.digest for w in unique}
    claimed = claimed_digests(user_id, digests)
    todo = [w for w in unique if w.digest not in claimed]
    uploads = {u.digest: u for u in BlobUpload.objects.filter(user_id=user_id, digest__in=digests)}
    outcomes: dict[str, Settled | str] = {}
    with blob_locks(w.digest for w in todo):
        stored = stored_sizes({w.digest for w in todo})

        def settle(wanted: Wanted) -> Settled | str:
            try:
                return _settle(
                    user_id, wanted, uploads.get(wanted.digest), stored.get(wanted.digest)
                )
            except StorageError as exc:
                return str(exc)

        with ThreadPoolExecutor(max_workers=FINISH_THREADS) as pool:
            outcomes = dict(zip((w.digest for w in todo), pool.map(settle, todo), strict=True))
        BlobUpload.objects.filter(id__in=[u.id for u in uploads.values()]).delete()
        settled = [w for w in todo if isinstance(outcomes[w.digest], Settled)]
        stored = {w.digest: w.size for w in settled if outcomes[w.digest] is Settled.STORED}
        record_blobs(user_id, stored, (w.digest for w in settled))
    failed = {
        digest: str(outcome) for digest, outcome in outcomes.items() if isinstance(outcome, str)
    }
    return FinishResult([w.digest for w in unique if w.digest not in failed], failed)


def _settle(
    user_id: int, wanted: Wanted, upload: BlobUpload | None, stored_size: int | None
) -> Settled:
    """Storage side of finishing one blob, under its lock: join, check, keep."""
    if stored_size is not None and stored_size != wanted.size:
        # Impossible for equal digests; refuse, never guess.
        raise StorageError(f"blob {wanted.digest} is stored with another size")
    storage, staging = get_storage(), staging_area(user_id)
    tag = uploader_tag(user_id, wanted.digest)
    if upload is not None:
        return _settle_multipart(upload, stored_size is not None, tag)
    if stored_size is None:
        # Sent straight to the store (checked, and with the user's tag), or to staging.
        if storage.direct_uploads and storage.verify(wanted.digest, wanted.size, tag):
            return Settled.STORED
        if staging.verify(wanted.digest, wanted.size):
            storage.adopt(staging, wanted.digest)
            return Settled.STORED
    else:
        # Sent to staging to show the user holds the bytes; or straight to the store, by a
        # client planned before another upload of the same bytes finished.
        if staging.verify(wanted.digest, wanted.size):
            staging.delete(wanted.digest)
            return Settled.PROVEN
        if storage.direct_uploads and storage.verify(wanted.digest, wanted.size, tag):
            return Settled.PROVEN
    staging.delete(wanted.digest)
    raise StorageError(
        f"no upload of {wanted.digest} with {wanted.size} bytes and that digest arrived; "
        "upload it again"
    )


def _settle_multipart(upload: BlobUpload, is_stored: bool, tag: str) -> Settled:
    area = upload_area(upload)
    if upload.direct and is_stored:
        # Joining now would replace checked bytes with unchecked ones, if only for a moment.
        area.multipart_abort(upload.digest, upload.upload_id)
        raise StorageError(
            f"another upload of {upload.digest} finished first; run the upload again"
        )
    try:
        area.multipart_complete(upload.digest, upload.upload_id, tag if upload.direct else None)
    except StorageError:
        area.multipart_abort(upload.digest, upload.upload_id)  # leave no parts behind
        raise
    if upload.direct:
        return Settled.STORED
    if is_stored:
        area.delete(upload.digest)
        return Settled.PROVEN
    get_storage().adopt(area, upload.digest)
    return Settled.STORED


def record_blobs(user_id: int, stored: dict[str, int], claimed: Iterable[str]) -> None:
    """Record blobs new in the store (digest: size) and the user's claims; call it holding the
    blobs' locks (see blobs.locks)."""
    # ignore_conflicts: another user may have recorded the same blob at the same moment.
    Blob.objects.bulk_create(
        [Blob(digest=digest, size=size) for digest, size in stored.items()], ignore_conflicts=True
    )
    BlobClaim.objects.bulk_create(
        [BlobClaim(blob_id=digest, user_id=user_id) for digest in claimed], ignore_conflicts=True
    )
