"""The FloydHub job API in-process: what floyd-cli's requests get, for cases the real CLI
cannot easily send (odd uploads, ids of things one may not see) and the exact JSON shapes."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_create
from blobs.models import Tree
from blobs.services import tree_store_directory
from compat.floyd.jobs import log_text
from datasets.models import DatasetVersion
from datasets.services import dataset_create, dataset_version_commit
from jobs.inputs import InputRequest
from jobs.logs import log_append
from jobs.models import Job, JobStatus
from jobs.services import JobRequest, job_create
from jobs.status import job_transition
from projects.models import Project
from tests.compat.conftest import API
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(alice: User) -> Project:
    project: Project = ProjectFactory.create(owner_user=alice, name="mnist")
    return project


def multipart(files: dict[str, bytes], module: dict[str, Any]) -> tuple[bytes, str]:
    """A body as floyd-cli sends it: a part per file, then the module's JSON."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="code"; filename="{path}"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode()
        + data
        + b"\r\n"
        for path, data in files.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n'.encode()
        + json.dumps(module).encode()
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def module_json(project: Project, **changes: Any) -> dict[str, Any]:
    return {
        "name": "alice/mnist", "description": "", "command": "python train.py", "mode": None,
        "module_type": "code", "family_id": str(project.id), "env": None,
        "instance_type": None, "yaml_config": None, "task": None,
        "cli_default": {"description": "", "command": "", "env": "default"}, **changes,
    }  # fmt: skip


def upload(client: APIClient, files: dict[str, bytes], module: dict[str, Any]) -> Any:
    body, boundary = multipart(files, module)
    return client.post(
        f"{API}/modules/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def run(client: APIClient, project: Project, module_id: str, **changes: Any) -> Any:
    body = {
        "name": "alice/mnist", "description": "", "module_id": module_id, "data_ids": [],
        "full_command": "floyd run 'python train.py'", "family_id": str(project.id),
        "instance_type": None, "env": None, "max_runtime": None, "yaml_config": None,
        "task": None, **changes,
    }  # fmt: skip
    # floyd-cli sends this JSON with no Content-Type.
    return client.generic("POST", f"{API}/experiments/run_module/", json.dumps(body), "")


def uploaded(client: APIClient, project: Project) -> str:
    answer = upload(client, {"./train.py": b"print(1)\n"}, module_json(project))
    assert answer.status_code == 200, answer.content
    module_id: str = answer.json()["id"]
    return module_id


def test_files_keep_their_paths_and_a_run_makes_a_ferry_job(
    client: APIClient, project: Project
) -> None:
    files = {f"./pkg/m{i}.py": f"x = {i}\n".encode() for i in range(150)}
    files["./train.py"] = b"print(1)\n"

    answer = upload(client, files, module_json(project))

    assert answer.status_code == 200, answer.content
    module_id = answer.json()["id"]
    tree = Tree.objects.get(id=int(module_id.removeprefix("code-")))
    assert tree.file_count == 151
    assert tree.entries.filter(path="pkg/m7.py").exists()
    ran = run(client, project, module_id, instance_type="g1", max_runtime=60, description="d")
    assert ran.status_code == 200, ran.content
    job = Job.objects.get(id=int(ran.json()["id"]))
    assert ran.json()["name"] == "alice/projects/mnist/1"
    assert (job.command, job.machine_type.name, job.max_runtime_s) == ("python train.py", "gpu", 60)
    assert (job.message, job.code_tree_id) == ("d", tree.id)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../escape.py": b"x"}, "'..' path segments are not allowed"),
        ({"/etc/passwd": b"x"}, "drop the leading '/'"),
        ({"./a": b"x", "./a/b": b"y"}, "as both a file and a directory"),
    ],
)
def test_a_bad_path_in_an_upload_stores_nothing(
    client: APIClient, project: Project, files: dict[str, bytes], message: str
) -> None:
    answer = upload(client, files, module_json(project))

    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert not Tree.objects.exists()


def test_an_upload_without_its_settings_is_refused(client: APIClient, project: Project) -> None:
    body, boundary = multipart({"./train.py": b"x"}, {})
    body = body.replace(b'name="json"', b'name="other"')

    answer = client.post(
        f"{API}/modules/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert answer.status_code == 400
    assert "no 'json' part" in answer.json()["message"]
    assert not Tree.objects.exists()


def test_code_over_the_limit_is_refused(
    client: APIClient, project: Project, settings: Settings
) -> None:
    settings.FERRY_MAX_CODE_BYTES = 10

    answer = upload(client, {"./big.bin": b"x" * 11}, module_json(project))

    assert answer.status_code == 400
    assert "larger than 10 bytes" in answer.json()["message"]
    assert not Tree.objects.exists()


def test_an_upload_to_someone_elses_project_stores_nothing(client: APIClient) -> None:
    bob = UserFactory.create(username="bob")
    secret = ProjectFactory.create(owner_user=bob, name="secret")

    answer = upload(client, {"./train.py": b"x"}, module_json(secret))

    assert answer.status_code == 404
    assert not Tree.objects.exists()


def test_someone_elses_upload_cannot_be_run(client: APIClient, project: Project) -> None:
    bob = UserFactory.create(username="bob")
    bobs = ProjectFactory.create(owner_user=bob, name="mine")
    bob_client = APIClient()
    bob_client.credentials(
        HTTP_AUTHORIZATION=f"apikey {api_token_create(user=bob, name='f').secret}"
    )
    module_id = uploaded(bob_client, bobs)

    answer = run(client, project, module_id)

    assert answer.status_code == 400
    assert "No code upload" in answer.json()["message"]
    assert not Job.objects.exists()


def one_file_version(owner: User, name: str, tmp_path: Path) -> tuple[Tree, DatasetVersion]:
    """A dataset of ``owner``'s with a first version of one file; its tree, and the version."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("1\n")
    tree = tree_store_directory(tmp_path / "d", owner_id=owner.pk)
    dataset = dataset_create(actor=owner, name=name)
    return tree, dataset_version_commit(actor=owner, dataset=dataset, tree_digest=tree.digest)


def test_data_ids_mount_dataset_versions_and_job_outputs(
    client: APIClient, project: Project, alice: User, tmp_path: Path
) -> None:
    tree, version = one_file_version(alice, "mnist", tmp_path)
    earlier = job_create(actor=alice, project=project, request=JobRequest(command="echo"))
    Job.objects.filter(id=earlier.id).update(output_tree=tree)

    answer = run(
        client, project, uploaded(client, project),
        data_ids=[f"data-{version.id}:/mnist", f"output-{earlier.id}:prev"],
    )  # fmt: skip

    assert answer.status_code == 200, answer.content
    job = Job.objects.get(id=int(answer.json()["id"]))
    mounted = {item.name: item for item in job.inputs.all()}
    assert mounted["mnist"].dataset_version == version
    assert mounted["prev"].source_job == earlier


def test_a_data_id_one_may_not_see_is_refused_without_naming_it(
    client: APIClient, project: Project, tmp_path: Path
) -> None:
    bob = UserFactory.create(username="bob")
    _, version = one_file_version(bob, "private-data", tmp_path)
    module_id = uploaded(client, project)

    answer = run(client, project, module_id, data_ids=[f"data-{version.id}:/x"])

    assert answer.status_code == 400
    message = answer.json()["message"]
    assert f"No dataset version data-{version.id} here, or you may not see it" in message
    assert "private-data" not in message
    assert not Job.objects.exists()
    assert DatasetVersion.objects.count() == 1


def test_restart_replaces_inputs_with_data_ids(
    client: APIClient, project: Project, alice: User, tmp_path: Path
) -> None:
    _, version = one_file_version(alice, "mnist", tmp_path)
    job = job_create(actor=alice, project=project, request=JobRequest(command="echo"))

    answer = client.post(
        f"{API}/experiments/restart/{job.id}",
        {"data_ids": [f"data-{version.id}:data"], "instance_type": "c2", "command": "echo 2"},
        format="json",
    )

    assert answer.status_code == 200, answer.content
    new = Job.objects.get(id=int(answer.json()["id"]))
    assert [item.name for item in new.inputs.all()] == ["data"]
    assert (new.command, new.machine_type.name, new.restart_of_id) == ("echo 2", "cpu2", job.id)


def test_an_experiment_has_every_field_floyd_cli_requires(
    client: APIClient, project: Project, alice: User
) -> None:
    job = job_create(actor=alice, project=project, request=JobRequest(command="echo", message="m"))

    body = client.get(f"{API}/experiments/alice/projects/mnist/1").json()

    assert {"id", "name", "created", "description", "state", "duration", "logId"} <= set(body)
    assert body["id"] == str(job.id)
    assert (body["name"], body["state"], body["description"]) == (
        "alice/projects/mnist/1", "queued", "m",
    )  # fmt: skip
    assert body["canvas"]["nodes"]["0"] == {"taskInstanceId": str(job.id), "type": "module_node"}
    assert (body["instanceLogId"], body["instanceOutputId"]) == (
        f"log-{job.id}",
        f"output-{job.id}",
    )
    assert body["instanceType"] == "c1"
    task = client.get(f"{API}/taskinstances/{job.id}").json()
    assert task["module_id"] is None  # no code: nothing to clone
    assert client.get(f"{API}/experiments/?family_id={project.id}").json()[0]["id"] == str(job.id)


def test_the_job_list_reads_a_fixed_number_of_queries(
    client: APIClient, project: Project, alice: User, django_assert_max_num_queries: Any
) -> None:
    for _ in range(5):
        job_create(actor=alice, project=project, request=JobRequest(command="echo"))

    with django_assert_max_num_queries(12):
        answer = client.get(f"{API}/experiments/?family_id={project.id}")

    assert len(answer.json()) == 5


def test_a_job_stopped_at_its_max_runtime_is_a_floyd_timeout(project: Project, alice: User) -> None:
    job = job_create(actor=alice, project=project, request=JobRequest(command="echo"))
    log_append(job.id, 0, "caf\u00e9 half a line".encode())
    for status in (JobStatus.SCHEDULED, JobStatus.STARTING, JobStatus.RUNNING):
        job_transition(job.id, status)
    reason = "it ran longer than its max runtime and was stopped"
    job_transition(job.id, JobStatus.FAILED, reason=reason)

    assert (
        log_text(job) == f"caf\u00e9 half a line\n[timeout] Task execution cancelled ({reason})\n"
    )


def test_a_running_jobs_log_has_no_ending_and_no_broken_character(
    project: Project, alice: User
) -> None:
    job = job_create(actor=alice, project=project, request=JobRequest(command="echo"))
    log_append(job.id, 0, "caf\u00e9".encode()[:-1])  # the last character is cut in two

    assert log_text(job) == "caf"


def test_a_running_job_cannot_be_deleted(client: APIClient, project: Project, alice: User) -> None:
    job = job_create(actor=alice, project=project, request=JobRequest(command="echo"))

    answer = client.delete(f"{API}/experiments/{job.id}")

    assert answer.status_code == 400
    assert "is queued; stop it and delete it once it has ended" in answer.json()["message"]
    assert Job.objects.filter(id=job.id).exists()


def test_a_job_whose_output_another_job_mounts_cannot_be_deleted(
    client: APIClient, project: Project, alice: User, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.txt").write_text("w")
    tree = tree_store_directory(tmp_path / "out", owner_id=alice.pk)
    first = job_create(actor=alice, project=project, request=JobRequest(command="echo"))
    job_transition(first.id, JobStatus.STOPPED)
    Job.objects.filter(id=first.id).update(output_tree=tree)
    source = InputRequest("alice/projects/mnist/1/output", "prev")
    job_create(actor=alice, project=project, request=JobRequest(command="x", inputs=[source]))

    answer = client.delete(f"{API}/experiments/{first.id}")

    assert answer.status_code == 400
    assert "other jobs mount its output" in answer.json()["message"]
    assert Job.objects.filter(id=first.id).exists()


def test_a_finished_job_is_deleted_with_its_log(
    client: APIClient, project: Project, alice: User
) -> None:
    job = job_create(actor=alice, project=project, request=JobRequest(command="echo"))
    log_append(job.id, 0, b"bye\n")
    job_transition(job.id, JobStatus.STOPPED)

    answer = client.delete(f"{API}/experiments/{job.id}")

    assert answer.status_code == 200, answer.content
    assert not Job.objects.filter(id=job.id).exists()
    assert client.get(f"{API}/resources/log-{job.id}?content=true").status_code == 404


def test_file_names_keep_non_ascii_letters_and_quotes(client: APIClient, project: Project) -> None:
    # As floyd-cli's encoder writes them: UTF-8, with '"' as %22.
    answer = upload(client, {"./dir/café %22q%22.py": b"x"}, module_json(project))

    assert answer.status_code == 200, answer.content
    tree = Tree.objects.get(id=int(answer.json()["id"].removeprefix("code-")))
    assert list(tree.entries.values_list("path", flat=True)) == ['dir/café "q".py']
