"""floyd-cli's data commands end to end: the real ``floyd`` and ``floyd-local`` executables
(floyd-cli 0.11.17, unmodified) against a live Ferry server, uploads through
``ferry floyd-proxy`` (floyd-local's fixed addresses) and unpacked by a real Celery worker."""

import hashlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from ferry.cli.floyd_proxy import API_PORT, UPLOAD_PORT
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from blobs.models import Tree
from blobs.services import tree_store_directory
from compat.floyd import tus
from compat.floyd.models import DataUpload, UploadState
from config.celery_app import app
from core.errors import Conflict
from datasets.models import Dataset, DatasetVersion
from datasets.services import dataset_create, dataset_version_commit
from jobs.models import Job, JobStatus
from tests.e2e.floyd.conftest import TIMEOUT_S, Floyd, Ran
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.factories import JobFactory
from tests.support.floyd_cli import REPO
from tests.support.services import unavailable

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # floyd-local's addresses are fixed (127.0.0.1:8080 and :1080): with the suite on several
    # workers (pytest-xdist), these tests run on one of them, one after another.
    pytest.mark.xdist_group("floyd-local-ports"),
]

CHUNK = 5 * 1024 * 1024  # what floyd-cli sends per PATCH


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def worker(redis_url: str) -> Iterator[None]:
    """A real Celery worker on the test broker: it unpacks what floyd-cli uploads."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


@pytest.fixture
def proxy(live_server: LiveServer) -> Iterator[subprocess.Popen[str]]:
    """``ferry floyd-proxy --host <live server>``, the command itself in a process of its own,
    listening where floyd-local has its addresses written in; stopped with Ctrl-C."""
    for port in (API_PORT, UPLOAD_PORT):
        if _listening(port):
            unavailable("floyd-local ports", f"127.0.0.1:{port} is taken by something else")
    command = [
        sys.executable, "-c", "import sys; from ferry.cli.main import main; sys.exit(main())",
        "floyd-proxy", "--host", live_server.url,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "cli")}  # this checkout's ferry package
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not all(_listening(port) for port in (API_PORT, UPLOAD_PORT)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "ferry floyd-proxy did not start listening"
        time.sleep(0.1)
    yield process
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 0, out
    assert "Stopped" in out


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def floyd_local(
    proxy: subprocess.Popen[str], floyd_bin: Path, floyd_home: Path, workdir: Path, logged_in: Floyd
) -> Floyd:
    """``floyd_local(*argv, cwd=...)`` runs ``floyd-local argv`` through the proxy, logged in
    (floyd and floyd-local share ~/.floydconfig)."""

    def run(*argv: str, cwd: Path | None = None, stdin: str = "") -> Ran:
        done = subprocess.run(
            [str(floyd_bin / "floyd-local"), *argv], cwd=cwd or workdir, input=stdin,
            capture_output=True, text=True, timeout=TIMEOUT_S,
            env={"HOME": str(floyd_home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )  # fmt: skip
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def files() -> dict[str, bytes]:
    """A dataset of three files, one large enough for two PATCHes (it does not compress)."""
    return {
        "train.csv": b"x,y\n1,2\n3,4\n",
        "sub/labels.txt": b"cat\ndog\n",
        "big.bin": secrets.token_bytes(CHUNK + 300_000),
    }


@pytest.fixture
def data_dir(workdir: Path, files: dict[str, bytes]) -> Path:
    root = workdir / "data"
    write(root, files)
    os.chmod(root / "train.csv", 0o755)
    return root


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def version_files(version: DatasetVersion) -> dict[str, tuple[int, int, str]]:
    return {
        entry.path: (entry.size, entry.mode, entry.blob_id) for entry in version.tree.entries.all()
    }


def digests(files: dict[str, bytes]) -> dict[str, tuple[int, str]]:
    return {path: (len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()}


def finished_job(owner: User, files: dict[str, bytes], tmp_path: Path, **fields: Any) -> Job:
    """Job 1 of ``owner``/mnist, with ``files`` stored as its output, as an agent would."""
    output = tmp_path / "job-output"
    write(output, files)
    project = ProjectFactory.create(owner_user=owner, name="mnist")
    tree = tree_store_directory(output, owner_id=owner.id)
    values: dict[str, Any] = {"status": JobStatus.SUCCEEDED, "output_tree": tree, **fields}
    job: Job = JobFactory.create(project=project, number=1, created_by=owner, **values)
    return job


# --- the scripted session -----------------------------------------------------------------------


def test_a_dataset_through_every_data_command(
    floyd_local: Floyd,
    logged_in: Floyd,
    worker: None,
    configured_storage: str,
    alice: User,
    data_dir: Path,
    files: dict[str, bytes],
    tmp_path: Path,
) -> None:
    # data init: creates alice/mnist, as `ferry data init` would.
    ran = logged_in("data", "init", "mnist", cwd=data_dir)
    assert ran.code == 0, ran
    dataset = Dataset.objects.get(owner_user=alice, name="mnist")
    assert json.loads((data_dir / ".floyddata").read_text())["family_id"] == str(dataset.id)

    # data upload: tar.gz over tus through the proxy, unpacked by the worker.
    ran = floyd_local("data", "upload", "-m", "first cut", cwd=data_dir)
    assert ran.code == 0, ran
    assert "alice/datasets/mnist/1" in ran.text
    version = DatasetVersion.objects.get(dataset=dataset, number=1)
    assert version.message == "first cut"
    stored = version_files(version)
    assert {p: (s, d) for p, (s, _, d) in stored.items()} == digests(files)  # no .floyddata
    assert stored["train.csv"][1] == 0o755
    assert stored["sub/labels.txt"][1] == 0o644
    upload = DataUpload.objects.get(dataset=dataset)
    assert (upload.state, upload.version_id) == (UploadState.VALID, version.id)
    assert not upload.chunks.exists()  # the tarball's bytes went once the version was made

    # data status: every version of the dataset; one by name.
    ran = logged_in("data", "status", cwd=data_dir)
    assert ran.code == 0, ran
    assert "alice/datasets/mnist/1" in ran.text
    assert "valid" in ran.text
    ran = logged_in("data", "status", "alice/datasets/mnist/1")
    assert ran.code == 0, ran
    assert "alice/datasets/mnist/1" in ran.text
    assert "5.3MiB" in ran.text

    # data listfiles: depth first, directories marked.
    ran = logged_in("data", "listfiles", "alice/datasets/mnist/1")
    assert ran.code == 0, ran
    listed = [line.strip() for line in ran.out.splitlines() if line.strip()]
    assert listed == ["big.bin", "sub/", "train.csv", "sub/labels.txt"]

    # data getfile: one file's bytes.
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    ran = logged_in("data", "getfile", "alice/datasets/mnist/1", "sub/labels.txt", cwd=fetched)
    assert ran.code == 0, ran
    assert (fetched / "labels.txt").read_bytes() == files["sub/labels.txt"]

    # data clone: the whole version; and -p, one directory of it.
    whole, part = tmp_path / "whole", tmp_path / "part"
    whole.mkdir()
    part.mkdir()
    ran = logged_in("data", "clone", "alice/datasets/mnist/1", cwd=whole)
    assert ran.code == 0, ran
    for path, data in files.items():
        assert (whole / path).read_bytes() == data
    assert stat.S_IMODE((whole / "train.csv").stat().st_mode) == 0o755
    assert not (whole / "output.tar").exists()
    ran = logged_in("data", "clone", "-p", "sub", "alice/datasets/mnist/1", cwd=part)
    assert ran.code == 0, ran
    assert sorted(p.relative_to(part).as_posix() for p in part.rglob("*") if p.is_file()) == [
        "sub/labels.txt"
    ]

    # data add: a finished job's output becomes version 2, naming the same tree.
    job = finished_job(alice, {"model.pt": b"weights"}, tmp_path)
    ran = logged_in("data", "add", "alice/projects/mnist/1/output", cwd=data_dir)
    assert ran.code == 0, ran
    assert "alice/datasets/mnist/2" in ran.text
    added = DatasetVersion.objects.get(dataset=dataset, number=2)
    assert added.tree_id == job.output_tree_id

    # data delete: version 2 goes, version 1 stays.
    ran = logged_in("data", "delete", "-y", "alice/datasets/mnist/2", cwd=data_dir)
    assert ran.code == 0, ran
    assert "Deleted" in ran.text
    assert list(dataset.versions.values_list("number", flat=True)) == [1]


def test_versions_made_with_ferry_show_in_floyd_and_the_reverse(
    logged_in: Floyd, alice: User, tmp_path: Path, configured_storage: str
) -> None:
    dataset = dataset_create(actor=alice, name="cifar")
    job = finished_job(alice, {"a.txt": b"made by ferry"}, tmp_path)
    assert job.output_tree is not None
    dataset_version_commit(actor=alice, dataset=dataset, tree_digest=job.output_tree.digest)

    ran = logged_in("data", "listfiles", "alice/datasets/cifar/1")
    assert ran.code == 0, ran
    assert "a.txt" in ran.out
    ran = logged_in("data", "getfile", "alice/cifar/1", "a.txt", cwd=tmp_path)
    assert ran.code == 0, ran
    assert (tmp_path / "a.txt").read_bytes() == b"made by ferry"


def test_output_of_a_job_reads_as_data(
    logged_in: Floyd, alice: User, tmp_path: Path, configured_storage: str
) -> None:
    finished_job(alice, {"out/model.pt": b"weights"}, tmp_path)
    target = tmp_path / "clone"
    target.mkdir()

    status = logged_in("data", "status", "alice/projects/mnist/1/output")
    listed = logged_in("data", "listfiles", "alice/projects/mnist/1/output")
    cloned = logged_in("data", "clone", "alice/projects/mnist/1/output", cwd=target)
    part = tmp_path / "part"
    part.mkdir()
    # -p takes the job's name: floyd-cli looks the experiment up by it.
    one_dir = logged_in("data", "clone", "-p", "out", "alice/projects/mnist/1", cwd=part)

    assert status.code == 0, status
    assert "alice/mnist/1/output" in status.out  # as floyd-cli shortens job names
    assert "valid" in status.out
    assert [line.strip() for line in listed.out.splitlines()] == ["out/", "out/model.pt"]
    assert cloned.code == 0, cloned
    assert (target / "out" / "model.pt").read_bytes() == b"weights"
    assert one_dir.code == 0, one_dir  # by the job's id: /download/artifacts/files/<id>
    assert (part / "out" / "model.pt").read_bytes() == b"weights"


# --- resuming, and what goes wrong --------------------------------------------------------------


@pytest.fixture
def second_patch_refused(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The server refuses the upload's second PATCH once, as a dropped connection would end
    it; records the offset of every PATCH that reaches the upload."""
    offsets: list[int] = []
    real = tus.tus_append

    def flaky(upload: DataUpload, offset: int, body: Any, size: int) -> int:
        offsets.append(offset)
        if len(offsets) == 2:
            raise Conflict("injected: the connection dropped")
        return real(upload, offset, body, size)

    monkeypatch.setattr(tus, "tus_append", flaky)
    return offsets


def test_an_interrupted_upload_resumes_where_it_stopped(
    floyd_local: Floyd,
    logged_in: Floyd,
    worker: None,
    alice: User,
    data_dir: Path,
    files: dict[str, bytes],
    second_patch_refused: list[int],
) -> None:
    assert logged_in("data", "init", "mnist", cwd=data_dir).code == 0

    first = floyd_local("data", "upload", cwd=data_dir)
    assert "Failed to finish upload" in first.text, first
    upload = DataUpload.objects.get()
    assert (upload.state, upload.received) == (UploadState.UPLOADING, CHUNK)
    assert not DatasetVersion.objects.exists()

    resumed = floyd_local("data", "upload", "-r", cwd=data_dir)

    assert resumed.code == 0, resumed
    assert second_patch_refused == [0, CHUNK, CHUNK]  # the first 5 MiB were not sent again
    version = DatasetVersion.objects.get(number=1)
    stored = version_files(version)
    assert {p: (s, d) for p, (s, _, d) in stored.items()} == digests(files)


def test_a_corrupt_tarball_fails_with_a_message_and_makes_no_version(
    floyd_local: Floyd,
    logged_in: Floyd,
    worker: None,
    alice: User,
    data_dir: Path,
    second_patch_refused: list[int],
) -> None:
    assert logged_in("data", "init", "mnist", cwd=data_dir).code == 0
    floyd_local("data", "upload", cwd=data_dir)
    # The tarball waiting to be resumed is damaged after its first 5 MiB were sent.
    tarball = Path(json.loads((data_dir / ".floyddata").read_text())["tarball_path"])
    size = tarball.stat().st_size
    with tarball.open("r+b") as damaged:
        damaged.seek(CHUNK)
        damaged.write(secrets.token_bytes(size - CHUNK))

    ran = floyd_local("data", "upload", "-r", cwd=data_dir)

    assert ran.code != 0, ran
    assert "not a readable tar.gz archive" in ran.text
    upload = DataUpload.objects.get()
    assert upload.state == UploadState.FAILED
    assert "upload the directory again" in upload.error.lower()
    assert not DatasetVersion.objects.exists()
    assert (
        not Tree.objects.exclude(code_of_jobs__isnull=False)
        .exclude(output_of_jobs__isnull=False)
        .exists()
    )


def test_init_in_someone_elses_namespace_is_refused_and_creates_nothing(
    logged_in: Floyd,
) -> None:
    UserFactory.create(username="bob")

    ran = logged_in("data", "init", "bob/secret", stdin="\n")

    assert ran.code != 0
    assert "only under your own name" in ran.text
    assert not Dataset.objects.exists()


def test_an_unknown_version_is_not_found(logged_in: Floyd, alice: User) -> None:
    dataset_create(actor=alice, name="mnist")

    status = logged_in("data", "status", "alice/datasets/mnist/7")
    listed = logged_in("data", "listfiles", "alice/datasets/mnist/7")

    assert "DATA NAME" not in status.out  # no table: nothing found
    assert "not found" in status.text
    assert "not found" in listed.text


def test_adding_the_output_of_a_running_job_is_refused(
    logged_in: Floyd, alice: User, workdir: Path, tmp_path: Path, configured_storage: str
) -> None:
    assert logged_in("data", "init", "mnist").code == 0
    finished_job(alice, {"partial.pt": b"half"}, tmp_path, status=JobStatus.RUNNING)

    ran = logged_in("data", "add", "alice/projects/mnist/1/output")

    assert ran.code != 0
    assert "still running" in ran.text
    assert not DatasetVersion.objects.exists()


def test_deleting_someone_elses_version_is_refused(logged_in: Floyd, tmp_path: Path) -> None:
    bob = UserFactory.create(username="bob")
    dataset = dataset_create(actor=bob, name="private")
    job = finished_job(bob, {"x": b"y"}, tmp_path)
    assert job.output_tree is not None
    version = dataset_version_commit(actor=bob, dataset=dataset, tree_digest=job.output_tree.digest)

    ran = logged_in("data", "delete", "-y", f"data-{version.id}")

    assert ran.code != 0
    assert DatasetVersion.objects.filter(id=version.id).exists()
