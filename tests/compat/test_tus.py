"""The tus endpoint and the unpacking of ``floyd data upload``, in-process: the requests
floyd-cli sends, and those it never would (a PATCH at the wrong offset, someone else's
credentials, a tarball that climbs out of its directory)."""

import base64
import io
import secrets
import tarfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_create
from compat.floyd import data_unpack, tasks
from compat.floyd.data_unpack import upload_unpack, uploads_reap
from compat.floyd.data_uploads import chunk_area, tus_append
from compat.floyd.models import DataUpload, UploadChunk, UploadState
from core.errors import ValidationFailed
from datasets.models import Dataset, DatasetVersion
from datasets.services import dataset_create
from tests.compat.conftest import API, floyd_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


TUS = "/compat/floyd/upload/"
PATCH_TYPE = "application/offset+octet-stream"
FUTURE = timezone.now() + timedelta(days=1)
CaptureOnCommit = Callable[..., Any]


@pytest.fixture
def unpacked_inline(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The unpack task runs at once where it would be sent to a worker; the ids it got."""
    sent: list[int] = []

    def run(upload_id: int) -> None:
        sent.append(upload_id)
        upload_unpack(upload_id)

    monkeypatch.setattr(tasks.unpack_upload_task, "delay", run)
    return sent


@pytest.fixture
def dataset(alice: User) -> Dataset:
    return dataset_create(actor=alice, name="mnist")


class Upload:
    """One upload as floyd-cli drives it: the module, its credentials, the tus calls."""

    def __init__(self, client: APIClient, dataset: Dataset, message: str = "") -> None:
        made = client.post(
            f"{API}/modules/",
            {"name": f"alice/{dataset.name}", "description": message, "module_type": "data",
             "data_type": "gzip", "family_id": str(dataset.id), "version": None,
             "resumable": True},
            format="json",
        )  # fmt: skip
        assert made.status_code == 201, made.content
        self.id: str = made.json()["id"]
        self.name: str = made.json()["name"]
        creds = client.post(f"{API}/modules/{self.id}/upload_v2_credentials")
        assert creds.status_code == 200, creds.content
        self.upload_id: str = creds.json()["data_upload_id"]
        self.token: str = creds.json()["token"]
        self.tus: Any = APIClient()  # the stubs type no binary bodies nor WSGI headers

    @property
    def row(self) -> DataUpload:
        return DataUpload.objects.get(id=int(self.id.removeprefix("upload-")))

    def auth(self, name: str | None = None, token: str | None = None) -> str:
        pair = f"{name or self.upload_id}:{token or self.token}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def create(self, length: int, **headers: str) -> Any:
        defaults = {"HTTP_TUS_RESUMABLE": "1.0.0", "HTTP_UPLOAD_LENGTH": str(length)}
        return self.tus.post(TUS, HTTP_AUTHORIZATION=self.auth(), **{**defaults, **headers})

    def patch(
        self, offset: int, data: bytes, content_type: str = PATCH_TYPE, **headers: str
    ) -> Any:
        defaults = {
            "HTTP_TUS_RESUMABLE": "1.0.0",
            "HTTP_UPLOAD_OFFSET": str(offset),
            "HTTP_AUTHORIZATION": self.auth(),
        }
        return self.tus.generic(
            "PATCH", f"{TUS}{self.upload_id}", data, content_type, **{**defaults, **headers},
        )  # fmt: skip

    def head(self, **headers: str) -> Any:
        defaults = {"HTTP_TUS_RESUMABLE": "1.0.0", "HTTP_AUTHORIZATION": self.auth()}
        return self.tus.head(f"{TUS}{self.upload_id}", **{**defaults, **headers})

    def send(self, data: bytes, chunk: int) -> list[Any]:
        assert self.create(len(data)).status_code == 201
        return [self.patch(at, data[at : at + chunk]) for at in range(0, len(data), chunk)]


def tarball(files: dict[str, bytes], *extra: tarfile.TarInfo) -> bytes:
    """A tar.gz as floyd-cli makes it (members under './'), plus any odd members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        top = tarfile.TarInfo(".")
        top.type = tarfile.DIRTYPE
        archive.addfile(top)
        for path, data in files.items():
            info = tarfile.TarInfo(f"./{path}")
            info.size = len(data)
            info.mode = 0o755 if path.endswith(".sh") else 0o644
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1, link: str = "") -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info


def stored_chunks(upload: Upload) -> list[str]:
    return list(chunk_area(upload.row.id).stored_before(FUTURE))


# --- the whole way ------------------------------------------------------------------------------


def test_a_tarball_sent_in_chunks_becomes_the_next_version(
    client: APIClient,
    dataset: Dataset,
    configured_storage: str,
    unpacked_inline: list[int],
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    files = {"a.csv": b"1,2\n", "deep/b.bin": secrets.token_bytes(300_000), "run.sh": b"#!"}
    data = tarball(files)
    upload = Upload(client, dataset, "first")
    assert upload.name == "alice/datasets/mnist/1"

    created = upload.create(len(data))
    assert created.status_code == 201, created.content
    assert created["Location"] == f"http://testserver{TUS}{upload.upload_id}"
    assert created["Tus-Resumable"] == "1.0.0"
    assert upload.head()["Upload-Offset"] == "0"
    with django_capture_on_commit_callbacks(execute=True):
        answers = [upload.patch(at, data[at : at + 100_000]) for at in range(0, len(data), 100_000)]

    assert [a.status_code for a in answers] == [204] * len(answers)
    assert answers[-1]["Upload-Offset"] == str(len(data))
    assert unpacked_inline == [upload.row.id]  # enqueued once, by the last byte
    version = DatasetVersion.objects.get(dataset=dataset)
    assert (version.number, version.message, version.author) == (1, "first", dataset.created_by)
    entries = {e.path: (e.size, e.mode) for e in version.tree.entries.all()}
    assert entries == {"a.csv": (4, 0o644), "deep/b.bin": (300_000, 0o644), "run.sh": (2, 0o755)}
    assert upload.row.state == UploadState.VALID
    assert client.get(f"{API}/resources/{upload.id}/state").json() == "valid"
    assert not UploadChunk.objects.exists()
    assert stored_chunks(upload) == []


def test_a_resumed_upload_takes_the_rest_from_the_offset_head_reports(
    client: APIClient, dataset: Dataset, unpacked_inline: list[int]
) -> None:
    data = tarball({"x.bin": secrets.token_bytes(50_000)})
    upload = Upload(client, dataset)
    upload.create(len(data))
    upload.patch(0, data[:20_000])

    offset = int(upload.head()["Upload-Offset"])
    last = upload.patch(offset, data[offset:])

    assert (offset, last.status_code) == (20_000, 204)
    assert upload.row.received == len(data)


def test_unpacking_twice_makes_one_version(
    client: APIClient, dataset: Dataset, unpacked_inline: list[int]
) -> None:
    upload = Upload(client, dataset)
    upload.send(tarball({"a": b"1"}), 1_000)
    DataUpload.objects.filter(id=upload.row.id).update(state=UploadState.UNPACKING)

    assert upload_unpack(upload.row.id) == UploadState.VALID
    assert upload_unpack(upload.row.id) == UploadState.VALID  # a second delivery
    assert DatasetVersion.objects.count() == 1


# --- refused, with nothing written --------------------------------------------------------------


def test_a_patch_at_the_wrong_offset_is_a_conflict_and_keeps_nothing(
    client: APIClient, dataset: Dataset
) -> None:
    upload = Upload(client, dataset)
    upload.create(100)

    answer = upload.patch(10, b"z" * 20)

    assert answer.status_code == 409
    assert "stands at offset 0, not 10" in answer.json()["message"]
    assert upload.row.received == 0
    assert not UploadChunk.objects.exists()
    assert stored_chunks(upload) == []


def test_a_patch_past_the_end_is_refused(client: APIClient, dataset: Dataset) -> None:
    upload = Upload(client, dataset)
    upload.create(10)

    answer = upload.patch(0, b"z" * 11)

    assert answer.status_code == 400
    assert "would run past its end" in answer.json()["message"]
    assert (upload.row.received, stored_chunks(upload)) == (0, [])


def test_a_body_shorter_than_announced_keeps_nothing(client: APIClient, dataset: Dataset) -> None:
    upload = Upload(client, dataset)
    upload.create(100)

    with pytest.raises(ValidationFailed, match="ended after 5 of its 50 bytes"):
        tus_append(upload.row, 0, io.BytesIO(b"12345"), 50)

    assert (upload.row.received, stored_chunks(upload)) == (0, [])


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({"HTTP_TUS_RESUMABLE": "0.2.2"}, 412, "speaks tus 1.0.0"),
        ({"HTTP_UPLOAD_OFFSET": "ten"}, 400, "Upload-Offset as a whole number"),
        ({"content_type": "application/json"}, 415, PATCH_TYPE),
    ],
)
def test_malformed_patches_are_refused(
    client: APIClient, dataset: Dataset, headers: dict[str, str], status: int, says: str
) -> None:
    upload = Upload(client, dataset)
    upload.create(100)

    answer = upload.patch(0, b"abc", **headers)

    assert answer.status_code == status
    assert says in answer.json()["message"]
    assert upload.row.received == 0


def test_no_more_bytes_once_the_last_has_arrived(
    client: APIClient, dataset: Dataset, unpacked_inline: list[int]
) -> None:
    upload = Upload(client, dataset)
    upload.send(b"abc", 3)

    answer = upload.patch(3, b"d")

    assert answer.status_code == 409
    assert "takes no more bytes" in answer.json()["message"]


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"upload-1-no-colon").decode(),
        "WRONG_TOKEN",
        "UNKNOWN_UPLOAD",
    ],
)
def test_wrong_credentials_are_refused(
    client: APIClient, dataset: Dataset, authorization: str
) -> None:
    upload = Upload(client, dataset)
    upload.create(100)
    if authorization == "WRONG_TOKEN":
        authorization = upload.auth(token="not-the-token")
    if authorization == "UNKNOWN_UPLOAD":
        authorization = upload.auth(name="upload-999999")

    answer = upload.patch(0, b"abc", HTTP_AUTHORIZATION=authorization)

    assert answer.status_code == 401
    assert answer.json()["message"]
    assert upload.row.received == 0


def test_a_floyd_api_key_is_no_upload_credential(client: APIClient, dataset: Dataset) -> None:
    upload = Upload(client, dataset)
    upload.create(100)
    key = api_token_create(user=upload.row.user, name="k").secret

    answer = upload.patch(0, b"abc", HTTP_AUTHORIZATION=f"apikey {key}")

    assert answer.status_code == 401
    assert upload.row.received == 0


def test_credentials_open_their_own_upload_only(client: APIClient, dataset: Dataset) -> None:
    mine, other = Upload(client, dataset), Upload(client, dataset)
    mine.create(100)
    other.create(100)

    answer = mine.tus.generic(
        "PATCH", f"{TUS}{other.upload_id}", b"abc", PATCH_TYPE,
        HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_OFFSET="0", HTTP_AUTHORIZATION=mine.auth(),
    )  # fmt: skip

    assert answer.status_code == 403
    assert f"not {other.upload_id}" in answer.json()["message"]
    assert (mine.row.received, other.row.received) == (0, 0)


def test_fresh_credentials_replace_the_old(client: APIClient, dataset: Dataset) -> None:
    upload = Upload(client, dataset)
    old = upload.token
    upload.token = client.post(f"{API}/modules/{upload.id}/upload_v2_credentials").json()["token"]

    assert upload.create(10).status_code == 201
    assert upload.patch(0, b"a", HTTP_AUTHORIZATION=upload.auth(token=old)).status_code == 401


def test_someone_else_gets_no_credentials_for_my_upload(
    client: APIClient, dataset: Dataset
) -> None:
    upload = Upload(client, dataset)
    bob = UserFactory.create(username="bob")

    answer = floyd_client(bob).post(f"{API}/modules/{upload.id}/upload_v2_credentials")

    assert answer.status_code == 404  # bob may not even see alice's private dataset
    assert upload.row.token_hash != ""  # alice's credentials stand


def test_options_tells_a_client_what_this_server_speaks_without_credentials() -> None:
    answer = APIClient().options(TUS)

    assert answer.status_code == 204
    assert (answer["Tus-Version"], answer["Tus-Extension"]) == ("1.0.0", "creation")
    assert int(answer["Tus-Max-Size"]) > 0


def test_an_upload_larger_than_the_server_takes_is_refused(
    client: APIClient, dataset: Dataset, settings: Settings
) -> None:
    settings.FERRY_MAX_BLOB_SIZE = 1000
    upload = Upload(client, dataset)

    answer = upload.create(1001)

    assert answer.status_code == 400
    assert "at most 1000 bytes" in answer.json()["message"]
    assert upload.row.length is None


# --- tarballs that cannot become a version ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"this is no gzip at all", "not a readable tar.gz archive"),
        (tarball({"a": b"1"})[:-30], "not a readable tar.gz archive"),
        (tarball({"a": b"1"}, member("../escape")), "'..' path segments are not allowed"),
        (tarball({"a": b"1"}, member("/etc/evil")), "drop the leading '/'"),
        (tarball({"a": b"1"}, member("./a/inside")), "both as a file and as a directory"),
    ],
    ids=["garbage", "truncated", "dotdot", "absolute", "file-and-directory"],
)
def test_a_bad_tarball_fails_with_a_reason_and_makes_no_version(
    client: APIClient,
    dataset: Dataset,
    unpacked_inline: list[int],
    django_capture_on_commit_callbacks: CaptureOnCommit,
    tmp_path: Path,
    data: bytes,
    says: str,
) -> None:
    upload = Upload(client, dataset)
    with django_capture_on_commit_callbacks(execute=True):
        upload.send(data, 7)

    row = upload.row
    assert row.state == UploadState.FAILED
    assert says in row.error
    assert not DatasetVersion.objects.exists()
    assert (stored_chunks(upload), UploadChunk.objects.count()) == ([], 0)
    state = client.get(f"{API}/resources/{upload.id}/state")
    assert state.status_code == 400
    assert says in state.json()["message"]
    assert not (tmp_path / "escape").exists()
    assert not list((tmp_path / "var" / "floyd-unpack").iterdir())  # no scratch left behind


def test_links_and_special_files_are_left_out(
    client: APIClient,
    dataset: Dataset,
    unpacked_inline: list[int],
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    data = tarball(
        {"real.txt": b"data", ".floyddata": b"{}"},
        member("./link", tarfile.SYMTYPE, link="/etc/passwd"),
        member("./hard", tarfile.LNKTYPE, link="real.txt"),
        member("./fifo", tarfile.FIFOTYPE),
    )
    upload = Upload(client, dataset)
    with django_capture_on_commit_callbacks(execute=True):
        upload.send(data, 1000)

    version = DatasetVersion.objects.get()
    assert list(version.tree.entries.values_list("path", flat=True)) == ["real.txt"]


def test_storage_that_stays_away_fails_the_upload_after_the_last_try(
    client: APIClient, dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = Upload(client, dataset)
    upload.send(tarball({"a": b"1"}), 1000)
    DataUpload.objects.filter(id=upload.row.id).update(state=UploadState.UNPACKING)
    UploadChunk.objects.filter(upload_id=upload.row.id).update(digest="0" * 64)  # bytes gone

    outcome = tasks.unpack_upload_task.apply(args=(upload.row.id,), retries=tasks.UNPACK_RETRIES)

    assert outcome.result == "failed"
    assert upload.row.state == UploadState.FAILED
    assert "could not be read back from storage" in upload.row.error


# --- the reaper ---------------------------------------------------------------------------------


def test_the_reaper_sends_a_quiet_unpacking_again_and_gives_up_abandoned_uploads(
    client: APIClient, dataset: Dataset, unpacked_inline: list[int]
) -> None:
    quiet, abandoned, fresh = (
        Upload(client, dataset),
        Upload(client, dataset),
        Upload(client, dataset),
    )
    quiet.send(tarball({"a": b"1"}), 1000)
    abandoned.create(100)
    abandoned.patch(0, b"half")
    fresh.create(100)
    long_ago = timezone.now() - timedelta(days=8)
    DataUpload.objects.filter(id=quiet.row.id).update(
        state=UploadState.UNPACKING, updated_at=timezone.now() - data_unpack.STALE_AFTER * 2
    )
    DataUpload.objects.filter(id=abandoned.row.id).update(updated_at=long_ago)

    reaped = uploads_reap()

    assert reaped == {"requeued": 1, "abandoned": 1}
    assert unpacked_inline == [quiet.row.id]
    assert quiet.row.state == UploadState.VALID
    assert abandoned.row.state == UploadState.FAILED
    assert stored_chunks(abandoned) == []
    assert fresh.row.state == UploadState.UPLOADING


# --- deleting an upload -------------------------------------------------------------------------


def test_deleting_an_unfinished_upload_drops_its_bytes(client: APIClient, dataset: Dataset) -> None:
    upload = Upload(client, dataset)
    upload.create(100)
    upload.patch(0, b"some bytes")
    row_id = upload.row.id
    assert stored_chunks(upload)

    answer = client.delete(f"{API}/modules/{upload.id}")

    assert answer.status_code == 204
    assert not DataUpload.objects.filter(id=row_id).exists()
    assert list(chunk_area(row_id).stored_before(FUTURE)) == []


def test_an_upload_being_unpacked_is_not_deleted(client: APIClient, dataset: Dataset) -> None:
    upload = Upload(client, dataset)
    upload.send(b"abc", 3)  # the last byte: unpacking (the task is not run here)

    answer = client.delete(f"{API}/modules/{upload.id}")

    assert answer.status_code == 400
    assert "being unpacked" in answer.json()["message"]
    assert upload.row.state == UploadState.UNPACKING
    assert stored_chunks(upload)


@pytest.mark.django_db(transaction=True)
def test_a_long_unpacking_keeps_saying_it_is_alive(
    client: APIClient, dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = Upload(client, dataset)
    upload.send(tarball({"a": b"1"}), 1000)  # unpacking now (no worker takes the task here)
    long_ago = timezone.now() - timedelta(hours=1)
    DataUpload.objects.filter(id=upload.row.id).update(updated_at=long_ago)
    seen_while_working: list[Any] = []
    real_extract = data_unpack.extract_tarball

    def slow_extract(stream: Any, root: Path) -> int:
        time.sleep(0.5)
        seen_while_working.append(upload.row.updated_at)
        return real_extract(stream, root)

    monkeypatch.setattr(data_unpack, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(data_unpack, "extract_tarball", slow_extract)

    assert upload_unpack(upload.row.id) == UploadState.VALID
    assert seen_while_working[0] > long_ago + timedelta(minutes=30)
