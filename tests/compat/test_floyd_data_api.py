"""The FloydHub data API in-process: exact JSON shapes, and the refusals the real CLI cannot
easily provoke (ids of things one may not see, a version jobs still use, odd sources)."""

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from accounts.ownership import Visibility
from blobs.models import Tree
from blobs.services import tree_store_directory
from compat.floyd.models import DataUpload
from datasets.models import Dataset, DatasetVersion
from datasets.services import dataset_create, dataset_version_commit
from jobs.models import InputKind, Job, JobInput, JobStatus
from tests.compat.conftest import API
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.factories import JobFactory

pytestmark = pytest.mark.django_db


def stored(owner: User, files: dict[str, bytes], tmp_path: Path) -> Tree:
    root = tmp_path / f"tree-{len(list(tmp_path.iterdir()))}"
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return tree_store_directory(root, owner_id=owner.id)


def version_of(owner: User, name: str, files: dict[str, bytes], tmp_path: Path) -> DatasetVersion:
    dataset = Dataset.objects.filter(name=name).first() or dataset_create(actor=owner, name=name)
    tree = stored(owner, files, tmp_path)
    return dataset_version_commit(actor=owner, dataset=dataset, tree_digest=tree.digest)


def job_with_output(owner: User, tmp_path: Path, **fields: Any) -> Job:
    project = ProjectFactory.create(owner_user=owner, name="mnist")
    values: dict[str, Any] = {
        "status": JobStatus.SUCCEEDED,
        "output_tree": stored(owner, {"model.pt": b"w"}, tmp_path),
        **fields,
    }
    job: Job = JobFactory.create(project=project, number=1, created_by=owner, **values)
    return job


# --- datasets by name ---------------------------------------------------------------------------


def test_a_dataset_is_created_when_first_asked_for(client: APIClient, alice: User) -> None:
    answer = client.get(f"{API}/datasets/alice/mnist")

    assert answer.status_code == 200, answer.content
    dataset = Dataset.objects.get(owner_user=alice, name="mnist")
    assert answer.json() == {
        "id": str(dataset.id), "name": "mnist", "description": "", "public": False,
    }  # fmt: skip
    assert client.get(f"{API}/datasets/alice/mnist").json()["id"] == str(dataset.id)
    assert Dataset.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("datasets/bob/mnist", 403, "only under your own name"),
        ("datasets/nobody/mnist", 400, "No user or team named 'nobody'"),
        ("datasets/alice/-bad-", 400, "cannot be a dataset name"),
    ],
)
def test_a_dataset_that_may_not_be_made_is_refused(
    client: APIClient, path: str, status: int, says: str
) -> None:
    UserFactory.create(username="bob")

    answer = client.get(f"{API}/{path}")

    assert answer.status_code == status
    assert says in answer.json()["message"]
    assert not Dataset.objects.exists()


# --- data modules -------------------------------------------------------------------------------


def test_data_json_is_what_floyd_cli_parses(client: APIClient, alice: User, tmp_path: Path) -> None:
    version = version_of(alice, "mnist", {"a": b"1234"}, tmp_path)

    body = client.get(f"{API}/modules/alice/datasets/mnist/1").json()

    assert body == {
        "id": f"data-{version.id}",
        "name": "alice/datasets/mnist/1",
        "date_created": version.created_at.isoformat(),
        "description": "",
        "data": {"state": "valid", "size": "4.0B"},
        "version": "1",
        "resource_id": f"data-{version.id}",
        "public": False,
        "module_type": "DataModule",
    }
    assert client.get(f"{API}/modules/data-{version.id}").json() == body


def test_a_dataset_without_a_number_means_its_latest_version(
    client: APIClient, alice: User, tmp_path: Path
) -> None:
    version_of(alice, "mnist", {"a": b"1"}, tmp_path)
    latest = version_of(alice, "mnist", {"a": b"2"}, tmp_path)

    body = client.get(f"{API}/modules/alice/datasets/mnist").json()

    assert (body["id"], body["version"]) == (f"data-{latest.id}", "2")


@pytest.mark.parametrize(
    "path",
    ["modules/alice/datasets/mnist/9", "modules/alice/datasets/mnist/x", "modules/data-999"],
)
def test_unknown_versions_are_not_found(
    client: APIClient, alice: User, tmp_path: Path, path: str
) -> None:
    version_of(alice, "mnist", {"a": b"1"}, tmp_path)

    answer = client.get(f"{API}/{path}")

    assert answer.status_code == 404
    assert answer.json()["message"]


def test_someone_elses_private_version_is_not_found(client: APIClient, tmp_path: Path) -> None:
    bob = UserFactory.create(username="bob")
    version = version_of(bob, "secret", {"a": b"1"}, tmp_path)

    for path in (f"modules/data-{version.id}", "modules/bob/datasets/secret/1",
                 f"resources/data-{version.id}?content=true&download=true"):  # fmt: skip
        assert client.get(f"{API}/{path}").status_code == 404, path
    assert client.delete(f"{API}/modules/data-{version.id}").status_code == 404
    assert DatasetVersion.objects.filter(id=version.id).exists()


def test_status_lists_versions_and_unfinished_uploads_in_few_queries(
    client: APIClient, alice: User, tmp_path: Path
) -> None:
    for number in range(5):
        version = version_of(alice, "mnist", {"a": str(number).encode()}, tmp_path)
    pending = DataUpload.objects.create(dataset=version.dataset, user=alice, number_hint=6)

    with CaptureQueriesContext(connection) as queries:
        answer = client.get(
            f"{API}/modules/", {"module_type": "data", "family_id": str(version.dataset_id)}
        )

    assert answer.status_code == 200
    rows = [(row["name"], row["data"]["state"]) for row in answer.json()]
    assert rows == [(f"alice/datasets/mnist/{n}", "valid") for n in (5, 4, 3, 2, 1)] + [
        ("alice/datasets/mnist/6", "created")
    ]
    assert answer.json()[-1]["id"] == f"upload-{pending.id}"
    assert len(queries) <= 8


def test_a_module_for_a_dataset_that_is_not_there_says_to_init(client: APIClient) -> None:
    answer = client.post(
        f"{API}/modules/", {"module_type": "data", "family_id": "424242"}, format="json"
    )

    assert answer.status_code == 400
    assert "Dataset not found, ID" in answer.json()["message"]  # floyd-cli's cue
    assert not DataUpload.objects.exists()


def test_no_upload_into_a_dataset_one_may_only_read(client: APIClient) -> None:
    bob = UserFactory.create(username="bob")
    public = dataset_create(actor=bob, name="open", visibility=Visibility.PUBLIC)

    answer = client.post(
        f"{API}/modules/", {"module_type": "data", "family_id": str(public.id)}, format="json"
    )

    assert answer.status_code == 403
    assert not DataUpload.objects.exists()


def test_a_version_jobs_use_stays(client: APIClient, alice: User, tmp_path: Path) -> None:
    version = version_of(alice, "mnist", {"a": b"1"}, tmp_path)
    job = job_with_output(alice, tmp_path)
    JobInput.objects.create(
        job=job, name="mnist", kind=InputKind.DATASET, dataset_version=version, tree=version.tree
    )

    answer = client.delete(f"{API}/modules/data-{version.id}")

    assert answer.status_code == 400
    assert "input of jobs" in answer.json()["message"]
    assert DatasetVersion.objects.filter(id=version.id).exists()


def test_a_jobs_output_is_not_deleted_as_data(
    client: APIClient, alice: User, tmp_path: Path
) -> None:
    job = job_with_output(alice, tmp_path)

    answer = client.delete(f"{API}/modules/output-{job.id}")

    assert answer.status_code == 400
    assert "delete the job" in answer.json()["message"]
    assert Job.objects.get(id=job.id).output_tree_id is not None


# --- files --------------------------------------------------------------------------------------


def test_listings_files_and_their_refusals(client: APIClient, alice: User, tmp_path: Path) -> None:
    version = version_of(
        alice, "mnist", {"top.txt": b"t", "d/one.txt": b"1", "d/e/two.txt": b"22"}, tmp_path
    )
    base = f"{API}/resources/data-{version.id}"

    root = client.get(f"{base}/?content=true").json()
    inside = client.get(f"{base}/d?content=true").json()
    file = client.get(f"{base}/d/e/two.txt?content=true")

    assert root == {
        "files": [{"name": "d", "type": "directory"}, {"name": "top.txt", "type": "file"}],
        "skipped_files": 0,
        "total_files": 2,
    }
    assert [f["name"] for f in inside["files"]] == ["e", "one.txt"]
    assert b"".join(file.streaming_content) == b"22"  # type: ignore[attr-defined]
    assert client.get(f"{base}/state").json() == "valid"
    assert client.get(f"{base}/nowhere?content=true").status_code == 404
    assert client.get(f"{base}/d/e/two.txt").status_code == 404  # without content=true
    missing = client.get(f"{API}/download/artifacts/data/data-{version.id}?is_dir=true&path=zz")
    assert missing.status_code == 404
    assert "no directory 'zz'" in missing.json()["message"]


# --- data add -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("alice/projects/mnist/1/weights", "names no job's files"),
        ("alice/mnist/1", "names no job's files"),
        ("alice/projects/mnist/x/output", "is not a job number"),
        ("alice/projects/mnist/2/output", "has no job 2"),
        ("bob/projects/hidden/1/output", "No project bob/hidden"),
    ],
)
def test_add_of_a_source_that_is_no_finished_job_is_refused(
    client: APIClient, alice: User, tmp_path: Path, source: str, says: str
) -> None:
    dataset = dataset_create(actor=alice, name="mnist")
    job_with_output(alice, tmp_path)
    bob = UserFactory.create(username="bob")
    ProjectFactory.create(owner_user=bob, name="hidden")

    answer = client.post(f"{API}/datasets/{dataset.id}", {"source": source}, format="json")

    assert answer.status_code == 400
    assert says in answer.json()["message"]
    assert not DatasetVersion.objects.exists()


def test_add_of_a_running_jobs_output_is_refused(
    client: APIClient, alice: User, tmp_path: Path
) -> None:
    dataset = dataset_create(actor=alice, name="mnist")
    job_with_output(alice, tmp_path, status=JobStatus.RUNNING)

    answer = client.post(
        f"{API}/datasets/{dataset.id}", {"source": "alice/projects/mnist/1/output"}, format="json"
    )

    assert answer.status_code == 400
    assert "still running" in answer.json()["message"]
    assert not DatasetVersion.objects.exists()


def test_add_into_someone_elses_dataset_is_refused(
    client: APIClient, alice: User, tmp_path: Path
) -> None:
    bob = UserFactory.create(username="bob")
    theirs = dataset_create(actor=bob, name="theirs")
    job_with_output(alice, tmp_path)

    answer = client.post(
        f"{API}/datasets/{theirs.id}", {"source": "alice/projects/mnist/1/output"}, format="json"
    )

    assert answer.status_code == 404
    assert not DatasetVersion.objects.exists()


def test_add_makes_the_output_the_next_version(
    client: APIClient, alice: User, tmp_path: Path
) -> None:
    dataset = dataset_create(actor=alice, name="mnist")
    job = job_with_output(alice, tmp_path)

    answer = client.post(
        f"{API}/datasets/{dataset.id}", {"source": "alice/projects/mnist/1"}, format="json"
    )

    assert answer.status_code == 201, answer.content
    version = DatasetVersion.objects.get(dataset=dataset)
    assert answer.json() == {"data_id": f"data-{version.id}"}
    assert (version.number, version.tree_id) == (1, job.output_tree_id)
    output = client.get(f"{API}/modules/alice/projects/mnist/1/output").json()
    assert (output["id"], output["module_type"]) == (f"output-{job.id}", "DataModule")
