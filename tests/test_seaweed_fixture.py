"""The ``s3`` fixture is a real S3 server: signatures, checksums and multipart uploads hold."""

import base64
import hashlib
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.seaweed import S3Server, s3_client

MIB = 1024 * 1024
PART_SIZE = 5 * MIB  # S3's smallest part but the last


def _key(name: str) -> str:
    # The server lives for the whole session: keys of one test must not meet another's.
    return f"test-seaweed/{uuid.uuid4().hex}/{name}"


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _put(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    """PUT ``body`` to a presigned URL as a browser or CLI would: no AWS library, no keys."""
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        status: int = response.status
        return status


def _put_refused(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _put(url, body, headers)
    return refused.value.code


def test_put_and_get_an_object(s3: S3Server) -> None:
    client = s3_client(s3)
    key = _key("hello.txt")

    client.put_object(Bucket=s3.bucket, Key=key, Body=b"hello, ferry")

    assert client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"hello, ferry"


def test_a_wrong_secret_key_is_refused(s3: S3Server) -> None:
    impostor = s3_client(s3, secret_key=s3.secret_key + "-wrong")

    with pytest.raises(ClientError) as refused:
        impostor.put_object(Bucket=s3.bucket, Key=_key("nope"), Body=b"x")

    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unsigned_request_is_refused(s3: S3Server) -> None:
    key = _key("private.txt")
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=b"secret")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{s3.endpoint_url}/{s3.bucket}/{key}", timeout=30)

    assert refused.value.code == 403


def test_a_presigned_put_checks_the_declared_sha256(s3: S3Server) -> None:
    client = s3_client(s3)
    body = b"model weights " * 1000
    checksum = _sha256_b64(body)
    key = _key("weights.bin")
    url = client.generate_presigned_url(
        "put_object",
        Params={"Bucket": s3.bucket, "Key": key, "ChecksumSHA256": checksum},
        ExpiresIn=600,
    )
    declared = {"x-amz-checksum-sha256": checksum}
    forged = {"x-amz-checksum-sha256": _sha256_b64(b"something else")}

    assert _put_refused(url, b"something else", declared) == 400  # BadDigest
    # The checksum header is signed: an uploader can neither drop it nor declare another.
    assert _put_refused(url, body) == 403
    assert _put_refused(url, b"something else", forged) == 403
    with pytest.raises(ClientError):  # the refused body was not stored
        client.head_object(Bucket=s3.bucket, Key=key)
    assert _put(url, body, declared) == 200

    stored = client.get_object(Bucket=s3.bucket, Key=key, ChecksumMode="ENABLED")
    assert stored["Body"].read() == body
    assert stored["ChecksumSHA256"] == checksum


def test_a_presigned_put_signed_with_a_wrong_secret_is_refused(s3: S3Server) -> None:
    impostor = s3_client(s3, secret_key=s3.secret_key + "-wrong")
    url = impostor.generate_presigned_url(
        "put_object", Params={"Bucket": s3.bucket, "Key": _key("forged")}, ExpiresIn=600
    )

    assert _put_refused(url, b"forged") == 403


def test_a_presigned_multipart_upload_can_resume_and_complete(s3: S3Server) -> None:
    client = s3_client(s3)
    key = _key("big.bin")
    parts = [b"\x01" * PART_SIZE, b"the last part may be small"]
    upload_id = client.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]

    def part_url(number: int) -> str:
        return client.generate_presigned_url(
            "upload_part",
            Params={"Bucket": s3.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=600,
        )

    assert _put(part_url(1), parts[0]) == 200
    # The uploader stops here; on resuming it asks which parts the server already has.
    done = client.list_parts(Bucket=s3.bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(part["PartNumber"], part["Size"]) for part in done] == [(1, PART_SIZE)]
    assert _put(part_url(2), parts[1]) == 200
    done = client.list_parts(Bucket=s3.bucket, Key=key, UploadId=upload_id)["Parts"]
    client.complete_multipart_upload(
        Bucket=s3.bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": part["PartNumber"], "ETag": part["ETag"]} for part in done]
        },
    )

    assert [part["PartNumber"] for part in done] == [1, 2]
    whole = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(whole).digest() == hashlib.sha256(b"".join(parts)).digest()
