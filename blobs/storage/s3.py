"""Blobs in an S3 bucket, through boto3: any S3 service reached by endpoint URL.

Clients get presigned URLs and send bytes straight to the bucket. A single PUT carries the
SHA-256 as ``x-amz-checksum-sha256``, which the service checks before it stores anything, and
which ``verify`` later reads back instead of downloading the blob. A multipart upload's checksum
is one of its parts' checksums, not of the blob, so those are verified by reading the blob
through once.
"""

import base64
import binascii
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import BotoCoreError, ClientError

from blobs.digests import Readable, copy_hashing, is_digest
from blobs.storage.base import BlobStorage, Part, PutTarget, StorageError, check_area
from blobs.storage.sigv4 import Credentials, Presigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

SPOOL_IN_MEMORY = 8 * 1024 * 1024
# The user-defined metadata key (x-amz-meta-...) that names who wrote a blob uploaded directly.
UPLOADER_META = "ferry-uploader"


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None
    bucket: str
    access_key: str | None
    secret_key: str | None
    region: str = "us-east-1"
    prefix: str = ""
    # Where clients reach the service, when that differs from where the server does (a
    # container network, a proxy). Presigned URLs are signed for this address.
    public_endpoint_url: str | None = None


def _client(settings: S3Settings, endpoint_url: str | None) -> S3Client:
    # A session of its own: boto3's default one may not make clients from two threads at once,
    # and the web server's threads may each ask for the storage first.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name=settings.region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            # Finishing an upload talks to S3 from many threads at once (uploads.FINISH_THREADS);
            # a smaller pool would open and drop a connection per request.
            max_pool_connections=32,
        ),
    )


def checksum_header(digest: str) -> str:
    """The base64 form of a hex SHA-256, as S3's checksum headers spell it."""
    return base64.b64encode(bytes.fromhex(digest)).decode()


def _hex_of_checksum(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def _presigner(settings: S3Settings) -> Presigner:
    endpoint = settings.public_endpoint_url or settings.endpoint_url
    return Presigner(endpoint or f"https://s3.{settings.region}.amazonaws.com", settings.region)


class S3Storage(BlobStorage):
    # A presigned PUT carries the blob's SHA-256, which S3 checks before it stores anything,
    # and the uploader's tag as signed metadata: clients may write the shared keys themselves.
    direct_uploads = True

    def __init__(
        self,
        settings: S3Settings,
        client: S3Client | None = None,
        presigner: Presigner | None = None,
        credentials: BotoCredentials | None = None,
    ) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client or _client(settings, settings.endpoint_url)
        self.presigner = presigner or _presigner(settings)
        self.credentials = (
            credentials
            or boto3.session.Session(
                aws_access_key_id=settings.access_key, aws_secret_access_key=settings.secret_key
            ).get_credentials()
        )

    def area(self, name: str) -> "S3Storage":
        prefix = f"{self.settings.prefix}{check_area(name)}/"
        # Clients are costly to build and safe to share: the area reuses this one's.
        return S3Storage(
            replace(self.settings, prefix=prefix), self.client, self.presigner, self.credentials
        )

    def _credentials(self) -> Credentials:
        if self.credentials is None:
            raise StorageError("no S3 credentials are configured; set FERRY_S3_ACCESS_KEY")
        # Frozen each time: credentials from an instance role or SSO are refreshed by botocore.
        frozen = self.credentials.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise StorageError(
                "the S3 credentials lack a key; set FERRY_S3_ACCESS_KEY and _SECRET_KEY"
            )
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def _presign(
        self,
        method: str,
        digest: str,
        expires_in: int,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        return self.presigner.url(
            self._credentials(),
            method,
            f"/{self.bucket}/{self.key(digest)}",
            expires_in=expires_in,
            params=params,
            headers=headers,
        )

    def adopt(self, source: BlobStorage, digest: str) -> None:
        if not isinstance(source, S3Storage) or source.bucket != self.bucket:
            raise StorageError("can only adopt blobs from another area of the same bucket")
        try:
            # A managed copy: server side, in parts for large objects; the copy gets its own
            # SHA-256 checksum so that verifying it later needs no download.
            self.client.copy(
                {"Bucket": source.bucket, "Key": source.key(digest)},
                self.bucket,
                self.key(digest),
                ExtraArgs={"ChecksumAlgorithm": "SHA256"},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not move blob {digest}: {exc}") from exc
        source.delete(digest)

    def key(self, digest: str) -> str:
        return f"{self.settings.prefix}blobs/{digest[:2]}/{self._checked(digest)}"

    @staticmethod
    def _checked(digest: str) -> str:
        if not is_digest(digest):
            raise StorageError(f"{digest!r} is not a SHA-256 hex digest")
        return digest

    # --- reading and writing --------------------------------------------------------------------

    def _head(self, digest: str) -> dict[str, Any] | None:
        try:
            head = self.client.head_object(
                Bucket=self.bucket, Key=self.key(digest), ChecksumMode="ENABLED"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(f"S3 refused to describe blob {digest}: {exc}") from exc
        return cast(dict[str, Any], head)

    def size_of(self, digest: str) -> int | None:
        head = self._head(digest)
        return int(head["ContentLength"]) if head is not None else None

    def open(self, digest: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(digest))["Body"]
        except ClientError as exc:
            raise StorageError(f"blob {digest} could not be read: {exc}") from exc
        return cast(BinaryIO, body)

    def save(self, digest: str, stream: Readable) -> int:
        # The checksum must be known before the upload starts, so the bytes are spooled (to
        # disk past a few MB) while they are hashed, then sent with it.
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            actual, length = copy_hashing(stream, spool)
            if actual != digest:
                raise StorageError(f"the bytes hash to {actual}, not {digest}")
            spool.seek(0)
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key(digest),
                    Body=cast(BinaryIO, spool),
                    ContentLength=length,
                    ChecksumSHA256=checksum_header(digest),
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"S3 refused blob {digest}: {exc}") from exc
        return length

    def delete(self, digest: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

    def stored_before(self, cutoff: datetime) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=f"{self.settings.prefix}blobs/"
            ):
                for item in page.get("Contents", []):
                    digest = item["Key"].rsplit("/", 1)[-1]
                    if item["LastModified"] < cutoff and is_digest(digest):
                        yield digest
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 could not list the blobs: {exc}") from exc

    def verify(self, digest: str, size: int, tag: str | None = None) -> bool:
        head = self._head(digest)
        if head is None or int(head["ContentLength"]) != size:
            return False
        if tag is not None and head.get("Metadata", {}).get(UPLOADER_META) != tag:
            return False
        stored = head.get("ChecksumSHA256")
        if isinstance(stored, str) and "-" not in stored:
            return _hex_of_checksum(stored) == digest
        with self.open(digest) as stream:
            actual, length = copy_hashing(stream)
        return actual == digest and length == size

    # --- presigned uploads ----------------------------------------------------------------------

    def put_target(
        self, digest: str, size: int, expires_in: int, tag: str | None = None
    ) -> PutTarget:
        headers = {"x-amz-checksum-sha256": checksum_header(self._checked(digest))}
        if tag is not None:
            headers[f"x-amz-meta-{UPLOADER_META}"] = tag
        # Content-Length and the headers are signed: S3 refuses the request if any differ, and
        # refuses bytes whose SHA-256 is not the one in the header.
        signed = {"content-length": str(size), **headers}
        url = self._presign("PUT", digest, expires_in, headers=signed)
        return PutTarget(url=url, headers=headers)

    def multipart_start(self, digest: str, tag: str | None = None) -> str:
        metadata = {UPLOADER_META: tag} if tag is not None else {}
        started = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.key(digest), Metadata=metadata
        )
        return started["UploadId"]

    def multipart_part_target(
        self, digest: str, upload_id: str, number: int, expires_in: int
    ) -> PutTarget:
        params = {"partNumber": str(number), "uploadId": upload_id}
        url = self._presign("PUT", digest, expires_in, params=params)
        return PutTarget(url=url, headers={})

    def multipart_parts(self, digest: str, upload_id: str) -> list[Part]:
        parts: list[Part] = []
        paginator = self.client.get_paginator("list_parts")
        try:
            pages = paginator.paginate(Bucket=self.bucket, Key=self.key(digest), UploadId=upload_id)
            for page in pages:
                parts += [
                    Part(number=p["PartNumber"], etag=p["ETag"], size=p["Size"])
                    for p in page.get("Parts", [])
                ]
        except ClientError as exc:
            raise StorageError(f"no upload {upload_id} of {digest}: {exc}") from exc
        return sorted(parts, key=lambda part: part.number)

    def multipart_complete(self, digest: str, upload_id: str, tag: str | None = None) -> None:
        parts = self.multipart_parts(digest, upload_id)
        if [part.number for part in parts] != list(range(1, len(parts) + 1)):
            raise StorageError("the parts are not numbered 1..N without gaps")
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key(digest),
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
                },
            )
        except ClientError as exc:
            raise StorageError(f"S3 could not join the parts of {digest}: {exc}") from exc
        # S3 cannot know the blob's digest while it joins parts: check the joined bytes, and
        # take them away again if they are not what the client said they were.
        size = sum(part.size for part in parts)
        if not self.verify(digest, size, tag):
            self.delete(digest)
            raise StorageError(f"the uploaded parts do not hash to {digest}")

    def multipart_abort(self, digest: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key(digest), UploadId=upload_id
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise StorageError(f"S3 could not abort upload {upload_id}: {exc}") from exc

    def download_url(self, digest: str, filename: str, expires_in: int) -> str | None:
        disposition = f"attachment; filename*=UTF-8''{_quote(filename)}"
        params = {"response-content-disposition": disposition}
        return self._presign("GET", digest, expires_in, params=params)


def _quote(filename: str) -> str:
    from urllib.parse import quote

    return quote(filename, safe="")
