"""The tracking SDK as a job's code uses it: a real Python process with only the standard library
and ``cli/`` on its path, talking to a live Ferry server."""

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.services import api_token_for_job
from jobs.models import Job, JobMode, JobStatus
from projects.models import Project
from tests.factories import ProjectFactory
from tests.fleet.factories import JobFactory
from tracking.models import Metric, Param, Tag

# Transactional: the live server answers from its own thread, and must see the test's rows.
pytestmark = pytest.mark.django_db(transaction=True)

CLI = Path(__file__).resolve().parents[2] / "cli"


@pytest.fixture
def project(alice: User) -> Project:
    created: Project = ProjectFactory.create(owner_user=alice, name="mnist")
    return created


@pytest.fixture
def job(project: Project, alice: User) -> Job:
    created: Job = JobFactory.create(project=project, created_by=alice, status=JobStatus.RUNNING)
    return created


@pytest.fixture
def in_job(live_server: LiveServer, job: Job) -> dict[str, str]:
    """What the agent puts in a job's environment."""
    token = api_token_for_job(job)
    assert token is not None
    return {"FERRY_URL": live_server.url, "FERRY_JOB_TOKEN": token, "FERRY_JOB": str(job)}


def run_python(tmp_path: Path, code: str, env: dict[str, str], timeout: float = 120) -> "Ran":
    """``code`` in a fresh interpreter without site-packages (-S): the SDK must need nothing
    but the standard library."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(code))
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": str(CLI),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-S", str(script)],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


class Ran:
    def __init__(self, code: int, out: str, err: str, seconds: float) -> None:
        self.code, self.out, self.err, self.seconds = code, out, err, seconds

    def __repr__(self) -> str:
        return (
            f"Ran(code={self.code}, seconds={self.seconds:.1f}, out={self.out!r}, err={self.err!r})"
        )


def series(job: Job, key: str) -> list[tuple[int, float]]:
    rows = Metric.objects.filter(job=job, key=key).order_by("step", "id")
    return list(rows.values_list("step", "value"))


def entries(job: Job) -> tuple[dict[str, str], dict[str, str]]:
    params = dict(Param.objects.filter(job=job).values_list("key", "value"))
    tags = dict(Tag.objects.filter(job=job).values_list("key", "value"))
    return params, tags


# --- inside a job -------------------------------------------------------------------------------


def test_what_a_job_logs_arrives_without_a_flush(
    tmp_path: Path, in_job: dict[str, str], job: Job
) -> None:
    ran = run_python(
        tmp_path,
        """
        import ferry
        for i in range(2500):
            ferry.log_metric("loss", 1.0 / (i + 1))
        ferry.log_metrics({"acc": 0.5, "lr": 0.01}, step=7)
        ferry.log_metric("grad", float("nan"), step=3)
        ferry.log_metric("grad", float("inf"), step=4, timestamp=1_700_000_000_000)
        ferry.log_params({"lr": 0.01, "batch": 64})
        ferry.set_tags({"stage": "test"})
        print(ferry.init(project="someone/else"))
        """,
        in_job,
    )

    assert ran.code == 0, ran
    assert ran.err == ""
    assert ran.out.strip() == str(job)  # init() in a job is the job
    loss = series(job, "loss")
    assert [step for step, _ in loss] == list(range(2500))
    assert [value for _, value in loss] == [1.0 / (i + 1) for i in range(2500)]
    assert series(job, "acc") == [(7, 0.5)]
    assert series(job, "lr") == [(7, 0.01)]
    (nan_step, nan), (inf_step, inf) = series(job, "grad")
    assert (nan_step, inf_step) == (3, 4)
    assert math.isnan(nan)
    assert inf == math.inf
    at = Metric.objects.get(job=job, key="grad", step=4).timestamp
    assert at.timestamp() == 1_700_000_000
    assert entries(job) == ({"lr": "0.01", "batch": "64"}, {"stage": "test"})
    assert Job.objects.filter(project=job.project).count() == 1


def test_flush_sends_what_was_logged(tmp_path: Path, in_job: dict[str, str], job: Job) -> None:
    ran = run_python(
        tmp_path,
        """
        import os, ferry
        for step in range(100):
            ferry.log_metric("loss", step * 0.5, step=step)
        ferry.set_tags({"phase": "one"})
        print(ferry.flush(timeout=30), flush=True)
        os._exit(0)  # no exit handlers: only flush() can have sent them
        """,
        in_job,
    )

    assert ran.code == 0, ran
    assert ran.out.strip() == "True"
    assert series(job, "loss") == [(step, step * 0.5) for step in range(100)]
    assert entries(job)[1] == {"phase": "one"}


def test_a_call_costs_a_few_microseconds(tmp_path: Path, in_job: dict[str, str], job: Job) -> None:
    ran = run_python(
        tmp_path,
        """
        import json, time, ferry
        ferry.log_metric("warm", 0.0)
        calls = 100_000
        started = time.perf_counter()
        for step in range(calls):
            ferry.log_metric("loss", 0.25, step=step)
        print(json.dumps({"us": (time.perf_counter() - started) / calls * 1e6}))
        """,
        in_job,
    )

    assert ran.code == 0, ran
    per_call = json.loads(ran.out)["us"]
    print(f"log_metric: {per_call:.2f} us a call; 100,000 calls sent in {ran.seconds:.1f} s")
    assert per_call < 25, ran  # ~1-3 us measured; the bound leaves room for a busy machine
    assert Metric.objects.filter(job=job, key="loss").count() == 100_000, ran
    assert ran.err == ""


def test_a_param_that_may_not_change_costs_no_metrics(
    tmp_path: Path, in_job: dict[str, str], job: Job
) -> None:
    ran = run_python(
        tmp_path,
        """
        import ferry
        ferry.log_params({"lr": 0.1})
        ferry.flush()
        ferry.log_params({"lr": 0.2})
        ferry.log_metric("loss", 1.0, step=0)
        """,
        in_job,
    )

    assert ran.code == 0, ran
    assert "params or tags not recorded: Param 'lr' is already logged" in ran.err
    assert entries(job)[0] == {"lr": "0.1"}
    assert series(job, "loss") == [(0, 1.0)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_with_the_server_down_the_script_ends_quickly(
    tmp_path: Path, in_job: dict[str, str], job: Job
) -> None:
    ran = run_python(
        tmp_path,
        """
        import time, ferry
        started = time.perf_counter()
        for i in range(2500):
            ferry.log_metric("loss", 1.0 / (i + 1))
        ferry.log_params({"lr": 0.1})
        print(f"logged in {time.perf_counter() - started:.3f} s")
        """,
        in_job | {"FERRY_URL": f"http://127.0.0.1:{free_port()}"},
    )

    assert ran.code == 0, ran
    assert float(ran.out.split()[2]) < 1.0  # the loop never waited for the network
    assert ran.seconds < 15, ran
    assert "ferry: could not send" in ran.err
    assert "they are dropped" in ran.err
    assert Metric.objects.filter(job=job).count() == 0


def test_a_finished_job_s_refused_token_is_reported_not_raised(
    tmp_path: Path, in_job: dict[str, str], job: Job
) -> None:
    Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED)

    ran = run_python(
        tmp_path,
        """
        import ferry
        ferry.log_metric("loss", 1.0)
        print(ferry.flush())
        """,
        in_job,
    )

    assert ran.code == 0, ran
    assert ran.out.strip() == "False"
    assert "the server refused what was logged" in ran.err
    assert "token is unknown, revoked or expired" in ran.err


# --- outside a job ------------------------------------------------------------------------------


def test_outside_a_job_without_init_nothing_is_recorded(
    tmp_path: Path, live_server: LiveServer, job: Job
) -> None:
    ran = run_python(
        tmp_path,
        """
        import ferry
        for i in range(10):
            ferry.log_metric("loss", i)
        ferry.log_params({"lr": 0.1})
        ferry.set_tags({"a": "b"})
        print(ferry.flush(), ferry.finish())
        """,
        {"FERRY_URL": live_server.url},
    )

    assert ran.code == 0, ran
    assert ran.out.strip() == "False None"
    assert ran.err.splitlines() == [
        "ferry: not in a Ferry job and ferry.init() was not called: metrics, params and tags "
        "are not recorded"
    ]
    assert Metric.objects.count() == 0
    assert Job.objects.count() == 1


def logged_in(tmp_path: Path, host: str, token: str) -> None:
    """What `ferry login` leaves behind."""
    config = tmp_path / "xdg" / "ferry"
    config.mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"host": host, "token": token}))


def test_init_and_finish_track_an_external_run(
    tmp_path: Path, live_server: LiveServer, project: Project, token: str
) -> None:
    logged_in(tmp_path, live_server.url, token)

    ran = run_python(
        tmp_path,
        """
        import ferry
        run = ferry.init(project="alice/mnist", name="laptop run", params={"lr": 0.1})
        print(run, run.external)
        for step in range(10):
            ferry.log_metric("loss", 1.0 / (step + 1), step=step)
        ferry.set_tags({"where": "laptop"})
        ferry.finish()
        ferry.log_metric("after", 1.0)
        """,
        {},
    )

    assert ran.code == 0, ran
    run = Job.objects.get(project=project)
    assert ran.out.split() == [str(run), "True"]
    assert (run.mode, run.status, run.message) == (
        JobMode.EXTERNAL,
        JobStatus.SUCCEEDED,
        "laptop run",
    )
    assert series(run, "loss") == [(step, 1.0 / (step + 1)) for step in range(10)]
    assert entries(run) == ({"lr": "0.1"}, {"where": "laptop"})
    assert not Metric.objects.filter(key="after").exists()
    assert "ferry.init() was not called" in ran.err  # the call after finish()


def test_a_forked_child_sends_its_own_points_and_leaves_the_run_to_its_parent(
    tmp_path: Path, live_server: LiveServer, project: Project, token: str
) -> None:
    logged_in(tmp_path, live_server.url, token)

    ran = run_python(
        tmp_path,
        """
        import os, sys, ferry
        ferry.init(project="alice/mnist")
        for step in range(10):
            ferry.log_metric("parent", step, step=step)  # still buffered at the fork
        pid = os.fork()
        if pid == 0:
            for step in range(5):
                ferry.log_metric("child", step, step=step)
            sys.exit(0)
        os.waitpid(pid, 0)
        for step in range(10, 20):
            ferry.log_metric("parent", step, step=step)
        ferry.finish("failed")
        """,
        {},
    )

    assert ran.code == 0, ran
    run = Job.objects.get(project=project)
    assert run.status == JobStatus.FAILED  # the child's exit did not end it
    assert series(run, "parent") == [(step, float(step)) for step in range(20)]
    assert series(run, "child") == [(step, float(step)) for step in range(5)]


@pytest.mark.parametrize(
    ("ending", "status"),
    [("pass", JobStatus.SUCCEEDED), ("raise RuntimeError('boom')", JobStatus.FAILED)],
    ids=["ends", "crashes"],
)
def test_a_run_left_open_ends_as_the_script_did(
    tmp_path: Path,
    live_server: LiveServer,
    project: Project,
    token: str,
    ending: str,
    status: JobStatus,
) -> None:
    logged_in(tmp_path, live_server.url, token)

    ran = run_python(
        tmp_path,
        f"""
        import ferry
        ferry.init(project="alice/mnist")
        ferry.log_metric("loss", 0.5)
        {ending}
        """,
        {},
    )

    run = Job.objects.get(project=project)
    assert run.status == status, ran
    assert series(run, "loss") == [(0, 0.5)]


@pytest.mark.parametrize(
    ("project_name", "config", "says"),
    [
        ("alice/mnist", False, "Not logged in"),
        ("alice/nothing", True, "refused to start a run: No project alice/nothing"),
        ("mnist", True, "Name the project as owner/name"),
    ],
    ids=["not logged in", "no such project", "no owner"],
)
def test_init_says_why_it_cannot_start_a_run(
    tmp_path: Path,
    live_server: LiveServer,
    project: Project,
    token: str,
    project_name: str,
    config: bool,
    says: str,
) -> None:
    if config:
        logged_in(tmp_path, live_server.url, token)

    ran = run_python(
        tmp_path,
        f"""
        import ferry
        from ferry.tracking import TrackingError
        try:
            ferry.init(project={project_name!r})
        except TrackingError as exc:
            print(exc)
        """,
        {"FERRY_HOST": live_server.url},
    )

    assert ran.code == 0, ran
    assert says in ran.out
    assert not Job.objects.filter(project=project).exists()
