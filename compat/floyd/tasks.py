from typing import Any

from celery import Task, shared_task

from blobs.storage import StorageError
from compat.floyd.data_unpack import upload_fail, upload_unpack, uploads_reap

UNPACK_RETRIES = 5


@shared_task(name="floyd.unpack_upload", bind=True, acks_late=True, max_retries=UNPACK_RETRIES)
def unpack_upload_task(self: Task[Any, Any], upload_id: int) -> str:
    """Make an uploaded tarball a dataset version (``compat.floyd.data_unpack``). Delivered
    twice, the second finds the upload no longer unpacking and does nothing."""
    try:
        return upload_unpack(upload_id)
    except StorageError as exc:
        # The storage may be away for a moment; after the last try the upload fails, saying so.
        if self.request.retries >= UNPACK_RETRIES:
            upload_fail(
                upload_id,
                f"The upload's bytes could not be read back from storage ({exc}); upload again.",
            )
            return "failed"
        raise self.retry(exc=exc, countdown=15 * 2**self.request.retries) from exc


@shared_task(name="floyd.reap_uploads")
def reap_uploads_task() -> dict[str, int]:
    return uploads_reap()
