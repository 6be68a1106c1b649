"""The configured blob storage: ``FERRY_STORAGE`` is ``filesystem`` (default) or ``s3``."""

from functools import cache

from django.conf import settings

from blobs.storage.base import BlobStorage, Part, PutTarget, StorageError
from blobs.storage.filesystem import FilesystemStorage
from blobs.storage.s3 import S3Settings, S3Storage

__all__ = ["BlobStorage", "Part", "PutTarget", "StorageError", "get_storage", "make_storage"]


def make_storage(kind: str) -> BlobStorage:
    if kind == "filesystem":
        return FilesystemStorage(settings.FERRY_STORAGE_DIR)
    if kind == "s3":
        return S3Storage(
            S3Settings(
                endpoint_url=settings.FERRY_S3_ENDPOINT_URL or None,
                public_endpoint_url=settings.FERRY_S3_PUBLIC_ENDPOINT_URL or None,
                bucket=settings.FERRY_S3_BUCKET,
                access_key=settings.FERRY_S3_ACCESS_KEY or None,
                secret_key=settings.FERRY_S3_SECRET_KEY or None,
                region=settings.FERRY_S3_REGION,
                prefix=settings.FERRY_S3_PREFIX,
            )
        )
    raise ValueError(f"FERRY_STORAGE must be 'filesystem' or 's3', not {kind!r}")


@cache
def get_storage() -> BlobStorage:
    return make_storage(settings.FERRY_STORAGE)
