"""Ferry's own SigV4 presigner signs exactly as botocore does, and S3 accepts its URLs."""

import hashlib
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from blobs.storage.sigv4 import Credentials, Presigner
from tests.support.seaweed import S3Server, s3_client

DISPOSITION = "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9 (1).csv"
MOMENT = datetime(2026, 11, 27, 3, 4, 5, tzinfo=UTC)


def botocore_url(
    endpoint: str, credentials: Credentials, method: str, path: str, **kwargs: dict[str, str]
) -> str:
    params, headers = kwargs.get("params", {}), kwargs.get("headers", {})
    request = AWSRequest(method=method, url=f"{endpoint}{path}", params=params, headers=headers)
    signer = botocore_auth.S3SigV4QueryAuth(
        BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token),
        "s3",
        "eu-west-1",
        expires=900,
    )
    signer.add_auth(request)
    return str(request.url)


def same_url(ours: str, theirs: str) -> None:
    a, b = urlsplit(ours), urlsplit(theirs)
    assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
    assert sorted(parse_qsl(a.query)) == sorted(parse_qsl(b.query))


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8333", "https://s3.example.com"])
@pytest.mark.parametrize("token", [None, "session/token+value="])
@pytest.mark.parametrize(
    ("method", "path", "params", "headers"),
    [
        ("GET", "/bucket/blobs/ab/abc", {}, {}),
        (
            "GET",
            "/bucket/p/blobs/ab/abc",
            {"response-content-disposition": DISPOSITION},
            {},
        ),
        ("PUT", "/bucket/k", {"partNumber": "3", "uploadId": "a/b+c=="}, {}),
        (
            "PUT",
            "/bucket/blobs/00/x",
            {},
            {
                "content-length": "1000",
                "x-amz-checksum-sha256": "q83v/+w==",
                "x-amz-meta-ferry-uploader": "t",
            },
        ),
    ],
)
def test_urls_match_botocore(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    token: str | None,
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    presigner = Presigner(endpoint, "eu-west-1")
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: MOMENT.replace(tzinfo=None))

    ours = presigner.url(
        credentials, method, path, expires_in=900, params=params, headers=headers, now=MOMENT
    )

    same_url(
        ours, botocore_url(endpoint, credentials, method, path, params=params, headers=headers)
    )


def test_the_default_port_is_left_out_of_the_signed_host() -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret")
    with_port = Presigner("https://s3.example.com:443", "eu-west-1")
    without = Presigner("https://s3.example.com", "eu-west-1")

    a = with_port.url(credentials, "GET", "/b/k", expires_in=60, now=MOMENT)
    b = without.url(credentials, "GET", "/b/k", expires_in=60, now=MOMENT)

    assert a.split("X-Amz-Signature=")[1] == b.split("X-Amz-Signature=")[1]


def test_s3_accepts_the_urls_and_refuses_them_altered(s3: S3Server) -> None:
    presigner = Presigner(s3.endpoint_url, s3.region)
    credentials = Credentials(s3.access_key, s3.secret_key)
    data = b"signed by hand"
    key = f"/{s3.bucket}/sigv4/{hashlib.sha256(data).hexdigest()}"
    headers = {"x-amz-meta-ferry-uploader": "alice"}

    put = presigner.url(
        credentials,
        "PUT",
        key,
        expires_in=60,
        headers={"content-length": str(len(data)), **headers},
    )
    assert (
        httpx.put(put, content=data, headers={"x-amz-meta-ferry-uploader": "mallory"}).status_code
        == 403
    )
    assert httpx.put(put, content=data, headers=headers).status_code == 200
    get = presigner.url(credentials, "GET", key, expires_in=60)
    assert httpx.get(get).content == data
    assert httpx.get(get.replace("X-Amz-Expires=60", "X-Amz-Expires=61")).status_code == 403
    head = s3_client(s3).head_object(Bucket=s3.bucket, Key=key.split("/", 2)[2])
    assert head["Metadata"] == {"ferry-uploader": "alice"}
