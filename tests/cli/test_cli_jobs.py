"""`ferry init`, `run`, `logs -f`, `status`, `stop` in-process against a live server.

The agent's side runs here too: the test schedules the job and runs it with the real local
executor, as the host's Celery worker would.
"""

import json
import time
from pathlib import Path

import pytest

from accounts.services import api_token_create
from jobs.models import Job
from tests.cli.conftest import Ferry
from tests.cli.test_cli_datasets import write
from tests.factories import UserFactory
from tests.support.local_agent import agent_dir, run_in_agent

__all__ = ["agent_dir"]  # a fixture, used by name

pytestmark = pytest.mark.django_db(transaction=True)

CHECKPOINT = b"""\
import os, pathlib
out = pathlib.Path(os.environ["FERRY_OUTPUT"]) / "ckpt"
out.mkdir()
(out / "model.txt").write_text("w1")
"""
TRAIN = b"""\
import os, pathlib, sys
rows = (pathlib.Path(os.environ["FERRY_INPUT_MNIST"]) / "train.csv").read_text().splitlines()
print("rows", len(rows), "lr", os.environ["FERRY_PARAM_LR"])
pathlib.Path(os.environ["FERRY_OUTPUT"], "model.txt").write_text("weights")
"""


@pytest.mark.usefixtures("agent_dir")
def test_init_run_follow_and_status(logged_in: Ferry, workdir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data, {"train.csv": b"1\n2\n3\n"})
    assert logged_in("data", "init", "mnist", cwd=data).code == 0
    assert logged_in("data", "upload", cwd=data).code == 0
    write(workdir, {"train.py": TRAIN, "big.ckpt": b"x" * 10})
    (workdir / ".ferryignore").write_text("*.ckpt\n")

    assert logged_in("init", "alice/mnist").out.startswith("Created project alice/mnist")
    ran = logged_in(
        "run", "--data", "alice/datasets/mnist/1:mnist", "--param", "lr=0.1", "-m", "first",
        "python3", "train.py",
    )  # fmt: skip

    assert ran.code == 0, ran
    assert ran.out.startswith("Job alice/mnist/1 queued (cpu, python-3.11; code: 2 files")
    agent = run_in_agent(1)
    followed = logged_in("logs", "-f", "1")
    agent.join(60)
    assert followed.code == 0, followed
    assert followed.out == "rows 3 lr 0.1\n"
    assert followed.err.strip() == "Job alice/mnist/1 succeeded (exit code 0)"
    job = json.loads(logged_in("info", "1").out)
    assert job["command"] == "python3 train.py"
    assert [i["name"] for i in job["inputs"]] == ["mnist"]
    assert job["output"] is not None
    assert (job["host"]["name"], job["host"]["executor"]) == ("here", "local")
    table = logged_in("status").out
    assert "succeeded" in table
    assert "python3 train.py" in table
    hosts = logged_in("hosts").out.split()
    assert hosts[:3] == ["here", "online", "local"]


@pytest.mark.usefixtures("agent_dir")
def test_ferry_yml_and_tasks_set_the_run(logged_in: Ferry, workdir: Path) -> None:
    (workdir / "ferry.yml").write_text(
        "command: echo default\nmachine: cpu\ntask:\n  other:\n    command: echo other\n"
    )
    logged_in("init", "alice/mnist")

    plain = json.loads(logged_in("run", "--json").out)
    task = json.loads(logged_in("run", "--task", "other", "--json").out)
    flagged = json.loads(logged_in("run", "--task", "other", "--json", "echo", "flag").out)

    assert (plain["command"], task["command"], flagged["command"]) == (
        "echo default", "echo other", "echo flag",
    )  # fmt: skip
    missing = logged_in("run", "--task", "nope")
    assert missing.code == 1
    assert "has no task 'nope'; its tasks: other" in missing.err


@pytest.mark.usefixtures("agent_dir")
def test_a_running_job_is_stopped_from_the_cli(logged_in: Ferry, workdir: Path) -> None:
    logged_in("init", "alice/mnist")
    logged_in("run", "echo started; sleep 600")
    agent = run_in_agent(1)
    deadline = time.monotonic() + 20
    while "started" not in logged_in("logs", "1").out and time.monotonic() < deadline:
        time.sleep(0.2)

    stopped = logged_in("stop", "1")
    agent.join(60)

    assert stopped.out.strip() == "Job alice/mnist/1 stopping"
    followed = logged_in("logs", "-f", "1")
    assert followed.code == 1
    assert followed.err.startswith("Job alice/mnist/1 stopped")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("run",), "Give a command to run"),
        (("run", "--machine", "tpu", "true"), "No machine type 'tpu' here; choose one of: cpu"),
        (("run", "--data", "alice/datasets/ghost", "true"), "No dataset alice/datasets/ghost"),
        (("run", "--param", "novalue", "true"), "NAME=VALUE"),
        (("logs", "9"), "alice/mnist has no job 9"),
        (("stop", "x/y"), "Give a job as N"),
    ],
)
def test_bad_runs_say_what_to_change(
    logged_in: Ferry, workdir: Path, argv: tuple[str, ...], message: str
) -> None:
    logged_in("init", "alice/mnist")

    result = logged_in(*argv)

    assert result.code == 1, result
    assert message in result.err
    assert "Traceback" not in result.err
    assert not Job.objects.exists()


def test_code_over_the_limit_names_the_largest_files(logged_in: Ferry, workdir: Path) -> None:
    logged_in("init", "alice/mnist")
    write(workdir, {"weights.bin": b"x" * 2000, "train.py": b"print(1)\n"})

    result = logged_in("run", "true", env={"FERRY_MAX_CODE_BYTES": "1000"})

    assert result.code == 1
    assert "weights.bin (2000 bytes)" in result.err
    assert ".ferryignore" in result.err
    assert not Job.objects.exists()


def test_run_outside_a_project_says_how_to_link(logged_in: Ferry, workdir: Path) -> None:
    result = logged_in("run", "true")

    assert result.code == 1
    assert "ferry init OWNER/PROJECT" in result.err


@pytest.mark.usefixtures("agent_dir")
def test_an_output_is_fetched_and_feeds_the_next_run(
    logged_in: Ferry, workdir: Path, tmp_path: Path
) -> None:
    write(workdir, {"train.py": CHECKPOINT})
    logged_in("init", "alice/mnist")
    logged_in("run", "python3 train.py")
    early = logged_in("output", "1")
    assert early.code == 1
    assert "has no output yet (queued)" in early.err
    run_in_agent(1).join(60)

    listed = logged_in("output", "1", "--ls")
    got = logged_in("output", "1", "--get", "ckpt/model.txt", "-p", str(tmp_path / "m.txt"))
    whole = logged_in("output", "1", "-p", str(tmp_path / "all"))

    assert listed.out.split() == ["2", "B", "ckpt/model.txt"]
    assert got.code == 0, got
    assert (tmp_path / "m.txt").read_text() == "w1"
    assert whole.out.strip().endswith("(1 files, 2 bytes)")
    assert (tmp_path / "all" / "ckpt" / "model.txt").read_text() == "w1"

    second = logged_in(
        "run", "--data", "alice/projects/mnist/1:prev", "cat $FERRY_INPUT_PREV/ckpt/model.txt"
    )
    assert second.code == 0, second
    run_in_agent(2).join(60)
    assert logged_in("logs", "-f", "2").out == "w1"


@pytest.mark.usefixtures("agent_dir")
def test_restart_clone_and_an_output_as_a_dataset_version(
    logged_in: Ferry, workdir: Path, tmp_path: Path
) -> None:
    write(workdir, {"train.py": CHECKPOINT})
    logged_in("init", "alice/mnist")
    logged_in("run", "--param", "lr=1", "python3 train.py")
    run_in_agent(1).join(60)

    restarted = logged_in("restart", "--cpu2", "--param", "lr=2", "1")
    cloned = logged_in("clone", "1", "-p", str(tmp_path / "code"))
    data = tmp_path / "models"
    data.mkdir()
    logged_in("data", "init", "models", cwd=data)
    added = logged_in("data", "add", "alice/projects/mnist/1/output", cwd=data)

    assert restarted.out.strip() == "Job alice/mnist/2 queued (a restart of job 1)"
    second = json.loads(logged_in("info", "2").out)
    assert (second["machine"], second["params"]) == ("cpu2", {"lr": 2})
    assert (tmp_path / "code" / "train.py").read_bytes() == CHECKPOINT
    assert cloned.out.startswith("Cloned the code of job alice/mnist/1")
    assert added.out.startswith("Added the output of job alice/mnist/1 as version 1")
    got = logged_in("data", "get", "models/1", "ckpt/model.txt", cwd=tmp_path)
    assert got.code == 0, got
    assert (tmp_path / "model.txt").read_text() == "w1"


def test_naming_yourself_as_owner_works_even_for_a_reserved_name(
    ferry: Ferry, workdir: Path
) -> None:
    admin = UserFactory.create(username="admin")  # as `make up` makes it; "admin" is reserved
    ferry("login", "--token", api_token_create(user=admin, name="t").secret)

    project = ferry("init", "admin/mnist")
    dataset = ferry("data", "init", "admin/mnist-data")

    assert project.out.startswith("Created project admin/mnist"), project
    assert dataset.out.startswith("Created dataset admin/datasets/mnist-data"), dataset
