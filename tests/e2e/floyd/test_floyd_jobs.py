"""floyd-cli's job commands against Ferry: run, status, info, logs, stop, restart, delete,
clone, output, with the real `floyd` executable in a subprocess.

The agent's side runs here: the test schedules a job and runs it with the real local executor
in a thread, as the host's Celery worker would.
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from accounts.models import User
from blobs.models import Blob, Tree
from blobs.services import tree_store_directory
from datasets.services import dataset_create, dataset_version_commit
from jobs.models import Job, JobStatus
from jobs.services import JobRequest, job_create
from tests.e2e.floyd.conftest import Floyd, Ran
from tests.factories import ProjectFactory, UserFactory
from tests.support.local_agent import agent_dir, run_in_agent

__all__ = ["agent_dir"]  # a fixture, used by name

pytestmark = pytest.mark.django_db(transaction=True)

TRAIN = """\
import json
from sub.helper import NAME
print("hello from floyd", NAME)
print(json.dumps({"metric": "loss", "value": 0.25, "step": 1}))
"""
FILES = {
    "train.py": TRAIN,
    "sub/helper.py": 'NAME = "kept"\n',
    "floyd_requirements.txt": "# nothing to install\n",
}
FLOYD_YML = """\
env: python-3.11
max_runtime: 900
task:
  evaluate:
    command: python3 -c "print('evaluating')"
    description: from the task
"""
SUCCESS = "[success] Finished execution"
SHUTDOWN = "[shutdown] Task execution cancelled"


@pytest.fixture
def project_dir(logged_in: Floyd, workdir: Path) -> Path:
    """A directory linked to alice/mnist, with code in it."""
    for name, text in FILES.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text)
    assert logged_in("init", "mnist").code == 0
    return workdir


def in_background(call: Callable[[], Ran]) -> tuple[threading.Thread, list[Ran]]:
    done: list[Ran] = []
    thread = threading.Thread(target=lambda: done.append(call()))
    thread.start()
    return thread, done


def wait_for_job(number: int) -> None:
    deadline = time.monotonic() + 60
    while not Job.objects.filter(number=number).exists():
        assert time.monotonic() < deadline, f"job {number} was never created"
        time.sleep(0.2)


def counts() -> tuple[int, int, int]:
    return Job.objects.count(), Tree.objects.count(), Blob.objects.count()


@pytest.mark.usefixtures("agent_dir")
def test_a_session_of_job_commands(logged_in: Floyd, project_dir: Path, tmp_path: Path) -> None:
    ran = logged_in("run", "--cpu", "-m", "first run", "-r", "600", "python3 train.py")

    assert ran.code == 0, ran
    assert "alice/projects/mnist/1" in ran.text
    job = Job.objects.get(number=1)
    assert (job.command, job.message, job.max_runtime_s) == ("python3 train.py", "first run", 600)
    assert (job.machine_type.name, job.environment.is_default) == ("cpu", True)
    assert job.code_tree is not None
    paths = set(job.code_tree.entries.values_list("path", flat=True))
    assert {"train.py", "sub/helper.py", "floyd_requirements.txt", ".floydexpt"} <= paths

    agent = run_in_agent(1)
    followed = logged_in("logs", "-f", "1")
    agent.join(60)
    assert followed.code == 0, followed
    assert "hello from floyd kept" in followed.text
    assert followed.text.count(SUCCESS) == 1
    assert SUCCESS.encode() not in b"".join(bytes(c.data) for c in job.log_chunks.all())

    status = logged_in("status")
    assert status.code == 0, status
    assert "alice/projects/mnist/1" in status.text
    assert "success" in status.text
    assert "loss=0.25" in status.text

    info = logged_in("info", "1")
    assert info.code == 0, info
    assert "first run" in info.text
    assert "c1" in info.text

    logs = logged_in("logs", "1")
    assert "hello from floyd kept" in logs.text
    assert SUCCESS in logs.text

    clone = tmp_path / "clone"
    clone.mkdir()
    cloned = logged_in("clone", "alice/projects/mnist/1", cwd=clone)
    assert cloned.code == 0, cloned
    assert (clone / "train.py").read_text() == TRAIN
    assert (clone / "sub" / "helper.py").read_text() == FILES["sub/helper.py"]
    assert not (clone / "output.tar").exists()

    part = tmp_path / "part"
    part.mkdir()
    assert logged_in("clone", "-p", "sub", "alice/projects/mnist/1", cwd=part).code == 0
    assert sorted(str(p.relative_to(part)) for p in part.rglob("*")) == ["sub", "sub/helper.py"]

    output = logged_in("output", "-u", "1")
    assert output.code == 0, output
    assert "alice/projects/mnist/1/files" in output.text

    restarted = logged_in("restart", "1", "--gpu", "--env", "pytorch-2.5", "-m", "again", "echo hi")
    assert restarted.code == 0, restarted
    assert "alice/projects/mnist/2" in restarted.text
    second = Job.objects.get(number=2)
    assert (second.restart_of_id, second.command, second.message) == (job.id, "echo hi", "again")
    assert (second.machine_type.name, second.environment.name) == ("gpu", "pytorch-2.5")
    assert second.code_tree_id == job.code_tree_id

    refused = logged_in("delete", "-y", "2")
    assert refused.code == 1
    assert "is queued; stop it and delete it once it has ended" in refused.text
    assert Job.objects.filter(number=2).exists()

    stopped = logged_in("stop", "2")
    assert stopped.code == 0, stopped
    assert "shutdown request submitted" in stopped.text
    second.refresh_from_db()
    assert second.status == JobStatus.STOPPED
    assert SHUTDOWN in logged_in("logs", "2").text
    assert "shutdown" in logged_in("status", "2").text

    deleted = logged_in("delete", "-y", "2")
    assert deleted.code == 0, deleted
    assert "Job alice/projects/mnist/2 Deleted" in deleted.text
    assert not Job.objects.filter(number=2).exists()


@pytest.mark.usefixtures("agent_dir")
def test_run_with_follow_streams_the_log_until_the_job_ends(
    logged_in: Floyd, project_dir: Path
) -> None:
    floyd, done = in_background(lambda: logged_in("run", "--follow", "python3 train.py"))
    wait_for_job(1)
    agent = run_in_agent(1)
    floyd.join(90)
    agent.join(60)

    assert done, "floyd run --follow did not end"
    assert done[0].code == 0, done[0]
    assert "hello from floyd kept" in done[0].text
    assert SUCCESS in done[0].text


@pytest.mark.usefixtures("agent_dir")
def test_a_failed_job_ends_its_log_with_floyds_failure_line(
    logged_in: Floyd, project_dir: Path
) -> None:
    assert logged_in("run", "python3 -c 'raise SystemExit(3)'").code == 0
    run_in_agent(1).join(60)

    logs = logged_in("logs", "-f", "1")

    assert "[failed] Task execution failed (exited with code 3)" in logs.text
    assert "failed" in logged_in("status", "1").text


@pytest.mark.usefixtures("agent_dir")
def test_a_running_job_is_stopped_and_its_log_ends(logged_in: Floyd, project_dir: Path) -> None:
    ran = logged_in("run", "echo started; sleep 300")
    assert ran.code == 0, ran
    agent = run_in_agent(1)
    deadline = time.monotonic() + 30
    while "started" not in logged_in("logs", "1").text:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.5)
    assert "running" in logged_in("status", "1").text

    stopped = logged_in("stop", "1")
    agent.join(60)

    assert stopped.code == 0, stopped
    assert Job.objects.get(number=1).status == JobStatus.STOPPED
    followed = logged_in("logs", "-f", "1")
    assert "started" in followed.text
    assert f"{SHUTDOWN} (stopped by alice)" in followed.text


@pytest.mark.usefixtures("agent_dir")
def test_a_job_past_its_max_runtime_is_a_timeout(logged_in: Floyd, project_dir: Path) -> None:
    assert logged_in("run", "--max-runtime", "1", "sleep 60").code == 0
    run_in_agent(1).join(60)

    followed = logged_in("logs", "-f", "1")

    assert "[timeout] Task execution cancelled" in followed.text
    assert "timeout" in logged_in("status", "1").text


def test_floyd_yml_and_a_task_set_the_run(logged_in: Floyd, project_dir: Path) -> None:
    (project_dir / "floyd.yml").write_text(FLOYD_YML)

    plain = logged_in("run", "python3 train.py")
    task = logged_in("run", "--task", "evaluate")

    assert plain.code == 0, plain
    assert task.code == 0, task
    first, second = Job.objects.order_by("number")
    assert (first.command, first.max_runtime_s) == ("python3 train.py", 900)
    assert first.environment.name == "python-3.11"
    assert second.command == "python3 -c \"print('evaluating')\""
    assert second.message == "from the task"


def test_run_mounts_a_dataset_version_given_with_data(
    logged_in: Floyd, project_dir: Path, alice: User, tmp_path: Path
) -> None:
    files = tmp_path / "mnist"
    files.mkdir()
    (files / "train.csv").write_text("1\n2\n")
    dataset = dataset_create(actor=alice, name="mnist")
    tree = tree_store_directory(files, owner_id=alice.pk)
    dataset_version_commit(actor=alice, dataset=dataset, tree_digest=tree.digest)

    ran = logged_in("run", "--data", "alice/datasets/mnist/1:/mnist", "ls /floyd/input/mnist")

    assert ran.code == 0, ran
    (mounted,) = Job.objects.get(number=1).inputs.all()
    assert (mounted.name, str(mounted.dataset_version)) == ("mnist", "alice/datasets/mnist/1")


# --- refusals: a clear message, and nothing created ---------------------------------------


@pytest.mark.parametrize(
    ("mode", "message"),
    [("serve", "does not serve models through floyd-cli yet"),
     ("jupyter", "does not run notebooks through floyd-cli yet")],
)  # fmt: skip
def test_serve_and_jupyter_modes_are_refused(
    logged_in: Floyd, project_dir: Path, mode: str, message: str
) -> None:
    before = counts()

    ran = logged_in("run", "--mode", mode)

    assert ran.code != 0
    assert message in ran.text
    assert counts() == before


def test_an_unknown_env_is_refused_by_the_cli(logged_in: Floyd, project_dir: Path) -> None:
    before = counts()

    ran = logged_in("run", "--env", "tensorflow-0.1", "echo hi")

    assert ran.code != 0
    assert "tensorflow-0.1 is not in the list of supported environments" in ran.text
    assert "pytorch-2.5" in ran.text
    assert counts() == before


def test_an_unknown_env_in_floyd_yml_is_refused(logged_in: Floyd, project_dir: Path) -> None:
    (project_dir / "floyd.yml").write_text("env: tensorflow-1.8\n")
    before = counts()

    ran = logged_in("run", "echo hi")

    assert ran.code != 0
    assert "No environment 'tensorflow-1.8' here; choose one of:" in ran.text
    assert counts() == before


def test_a_run_without_a_command_is_refused(logged_in: Floyd, project_dir: Path) -> None:
    before = counts()

    ran = logged_in("run")

    assert ran.code != 0
    assert "Give a command to run" in ran.text
    assert counts() == before


def test_an_unknown_task_is_refused(logged_in: Floyd, project_dir: Path) -> None:
    (project_dir / "floyd.yml").write_text(FLOYD_YML)
    before = counts()

    ran = logged_in("run", "--task", "train")

    assert ran.code != 0
    assert "floyd.yml has no task 'train'; its tasks: evaluate" in ran.text
    assert counts() == before


def test_an_unknown_dataset_is_refused(logged_in: Floyd, project_dir: Path) -> None:
    before = counts()

    ran = logged_in("run", "--data", "alice/datasets/nope/1:/x", "echo hi")

    assert ran.code != 0
    assert "Data not found for name" in ran.text
    assert counts() == before


def test_an_unknown_job_is_not_found(logged_in: Floyd, project_dir: Path) -> None:
    for command in ("status", "info", "stop", "logs"):
        ran = logged_in(command, "99")
        assert ran.code != 0, (command, ran)
        assert "not found" in ran.text, (command, ran)


def test_restart_of_an_unknown_job_creates_nothing(logged_in: Floyd, project_dir: Path) -> None:
    before = counts()

    ran = logged_in("restart", "99")

    assert ran.code != 0
    assert "not found" in ran.text
    assert counts() == before


def test_jobs_of_a_project_one_cannot_see_stay_hidden(logged_in: Floyd, project_dir: Path) -> None:
    bob = UserFactory.create(username="bob")
    secret = ProjectFactory.create(owner_user=bob, name="secret")
    job = job_create(actor=bob, project=secret, request=JobRequest(command="echo secret"))
    before = counts()

    for argv in (("status", str(job.id)), ("stop", str(job.id)), ("restart", str(job.id)),
                 ("status", "bob/projects/secret/1"), ("delete", "-y", str(job.id))):  # fmt: skip
        ran = logged_in(*argv)
        assert ran.code != 0, (argv, ran)
        assert "echo secret" not in ran.text
        assert "bob/projects/secret/1" not in ran.text.replace(" ".join(argv), "")

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert counts() == before
