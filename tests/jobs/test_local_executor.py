"""The local executor beyond the shared contract: its supervisor, its sandbox, its failures."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.executors import (
    Exit,
    Handle,
    JobNotFound,
    JobSpec,
    LaunchError,
    LocalExecutor,
    Mount,
    Resources,
)
from jobs.executors import local as local_module
from jobs.executors.common import STATE_DIR
from tests.jobs.test_executor_contract import all_logs, finish, require_bwrap, spec_for

pytestmark = pytest.mark.timeout(60)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Launches one job from a separate process, prints its handle's state and exits at once.
LAUNCHER = """
import json, sys
from pathlib import Path
from jobs.executors import JobSpec, LocalExecutor, Resources

spec = JobSpec(
    job_id="far", image=None, command="echo from-afar; sleep 1; exit 4",
    workdir=Path(sys.argv[1]), mounts=[], env={}, resources=Resources(1, 64, ()),
    max_runtime_s=None,
)
print(json.dumps(LocalExecutor(sandbox=sys.argv[2] == "1").launch(spec).to_state()))
"""


@pytest.fixture(params=[False, True], ids=["bare", "bwrap"])
def sandbox(request: pytest.FixtureRequest) -> bool:
    if request.param:
        require_bwrap()
    return bool(request.param)


@pytest.fixture
def executor(sandbox: bool) -> LocalExecutor:
    return LocalExecutor(sandbox=sandbox, timeout_grace_s=1)


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    (tmp_path / "job" / "code").mkdir(parents=True)
    (tmp_path / "cache" / "mnist").mkdir(parents=True)
    (tmp_path / "output").mkdir()
    return tmp_path


def env_of(logs: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in logs.splitlines() if "=" in line)


def gone(pid: int, within_s: float = 5) -> bool:
    """Whether ``pid`` ends within a few seconds (SIGKILL takes effect soon, not at once)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rpartition(")")[2].split()[0] == "Z":  # dead, not yet reaped by its new parent
            return True
        time.sleep(0.01)
    return False


# --- the supervisor ---------------------------------------------------------------------------


def test_the_job_outlives_its_launcher_and_is_found_again(sandbox: bool, tmp_path: Path) -> None:
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "job"), "1" if sandbox else "0"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=30,
        check=True,
    )
    handle = Handle.from_state(json.loads(launched.stdout))
    executor = LocalExecutor(sandbox=sandbox)

    assert finish(executor, handle) == Exit(4, None, timed_out=False, stopped=False)
    assert all_logs(executor, handle) == "from-afar\n"
    executor.cleanup(handle)


def test_processes_left_in_the_background_end_with_the_job(
    executor: LocalExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    handle = run('sleep 30 & echo $! > "$FERRY_OUTPUT/pid"; exit 0')

    assert finish(executor, handle).code == 0

    assert gone(int((job_dir / "output" / "pid").read_text()))


def test_a_job_whose_supervisor_died_is_reported_lost(tmp_path: Path, job_dir: Path) -> None:
    executor = LocalExecutor(sandbox=False)
    handle = executor.launch(spec_for(job_dir, "echo ready; sleep 30"))
    pgid = handle.data["pgid"]
    assert isinstance(pgid, int)
    supervisor = int(Path(f"/proc/{pgid}/stat").read_text().rpartition(")")[2].split()[1])
    try:
        os.kill(supervisor, signal.SIGKILL)

        assert finish(executor, handle, timeout=10) == Exit(None, None)
    finally:
        os.killpg(pgid, signal.SIGKILL)  # unsupervised now: nothing else will


def test_cleanup_stops_a_running_job_and_forgets_it(
    executor: LocalExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    (job_dir / "output" / "kept.txt").write_text("result")
    handle = run("sleep 30")

    executor.cleanup(handle)

    assert not (job_dir / "job" / STATE_DIR).exists()
    assert (job_dir / "output" / "kept.txt").read_text() == "result"
    with pytest.raises(JobNotFound):
        executor.wait(handle)
    executor.stop(handle, grace_s=1)
    executor.cleanup(handle)


# --- the keepalive lease ---------------------------------------------------------------------


UNWATCHED = "[ferry] stopped: nothing watched this job for 1 s (its agent is gone)\n"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo started", f"started\n{UNWATCHED}"),
        ("printf half-a-line", f"half-a-line\n{UNWATCHED}"),
    ],
    ids=["after-a-line", "mid-line"],
)
def test_a_job_nobody_keeps_alive_is_stopped_and_its_log_says_why(
    executor: LocalExecutor, run: Callable[..., Handle], command: str, expected: str
) -> None:
    started = time.monotonic()
    handle = run(f"{command}; sleep 30", keepalive_s=1)

    ended = finish(executor, handle, timeout=10)

    assert 1 <= time.monotonic() - started < 5
    assert ended.stopped
    assert not ended.timed_out
    assert all_logs(executor, handle) == expected


def test_a_job_kept_alive_runs_on(
    sandbox: bool, executor: LocalExecutor, run: Callable[..., Handle]
) -> None:
    handle = run("echo started; sleep 30", keepalive_s=1)
    # As a restarted agent would: another executor, the handle from its stored state.
    agent, restored = LocalExecutor(sandbox=sandbox), Handle.from_state(handle.to_state())

    until = time.monotonic() + 3
    while time.monotonic() < until:
        agent.keepalive(restored)
        assert executor.wait(handle, timeout=0.2) is None, "stopped though kept alive"

    executor.stop(handle, grace_s=1)
    assert "[ferry]" not in all_logs(executor, handle)


def test_a_job_without_a_lease_is_not_stopped_for_want_of_keepalives(
    executor: LocalExecutor, run: Callable[..., Handle]
) -> None:
    handle = run("sleep 2; echo done", keepalive_s=None)

    assert finish(executor, handle) == Exit(0, None, timed_out=False, stopped=False)
    assert all_logs(executor, handle) == "done\n"


# --- the environment ----------------------------------------------------------------------------


def test_the_env_is_clean_and_ferrys_variables_win(
    executor: LocalExecutor, run: Callable[..., Handle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_SECRET", "do-not-leak")
    handle = run(
        "env",
        env={"CUDA_VISIBLE_DEVICES": "0,1,2,3", "FERRY_OUTPUT": "/elsewhere", "MINE": "kept"},
        resources=Resources(cpus=1, memory_mb=64, gpus=(1,)),
    )
    finish(executor, handle)

    env = env_of(all_logs(executor, handle))

    assert "AGENT_SECRET" not in env
    assert env["MINE"] == "kept"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["FERRY_OUTPUT"] != "/elsewhere"
    assert env["FERRY_JOB_ID"] == "job-1"


def test_the_sdk_comes_first_on_the_pythonpath_and_the_jobs_own_follows(
    executor: LocalExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    handle = run('printf %s "$PYTHONPATH"', env={"PYTHONPATH": "/mine:/also-mine"})
    finish(executor, handle)

    sdk = "/ferry/sdk" if executor.sandboxed else str(job_dir / "job" / STATE_DIR / "sdk")
    assert all_logs(executor, handle) == f"{sdk}:/mine:/also-mine"


def test_without_the_sdk_the_job_runs_and_its_pythonpath_is_its_own(
    executor: LocalExecutor, run: Callable[..., Handle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "sdk_package", lambda: None)
    handle = run('echo "${PYTHONPATH-unset}"; [ -e /ferry/sdk ] || echo no-sdk')

    assert finish(executor, handle).code == 0
    assert all_logs(executor, handle) == "unset\nno-sdk\n"


def test_no_network_without_a_sandbox_is_refused(job_dir: Path) -> None:
    with pytest.raises(ValueError, match="without network"):
        LocalExecutor(sandbox=False).launch(spec_for(job_dir, "true", network=False))

    assert not (job_dir / "job" / STATE_DIR).exists()


# --- the sandbox ------------------------------------------------------------------------------


@pytest.fixture
def sandboxed() -> LocalExecutor:
    require_bwrap()
    return LocalExecutor(sandbox=True)


def test_without_network_the_sandbox_has_only_loopback(
    sandboxed: LocalExecutor, job_dir: Path
) -> None:
    handle = sandboxed.launch(spec_for(job_dir, "cat /proc/net/dev", network=False))
    finish(sandboxed, handle)

    lines = all_logs(sandboxed, handle).splitlines()[2:]  # two header lines

    assert [line.split(":")[0].strip() for line in lines] == ["lo"]


def test_the_sandbox_job_has_no_capabilities_and_a_read_only_root(
    sandboxed: LocalExecutor, job_dir: Path
) -> None:
    handle = sandboxed.launch(
        spec_for(job_dir, "grep CapEff /proc/self/status; touch /ferry/x 2>/dev/null || echo ro")
    )
    finish(sandboxed, handle)

    assert all_logs(sandboxed, handle).split() == ["CapEff:", "0000000000000000", "ro"]


def test_a_sandbox_that_fails_to_start_is_a_launch_error(
    sandboxed: LocalExecutor, job_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = local_module.sandbox_args

    def broken(spec: JobSpec, tmp: Path, sdk: Path | None) -> list[str]:
        return [*real(spec, tmp, sdk), "--ro-bind", str(job_dir / "missing"), "/ferry/missing"]

    monkeypatch.setattr(local_module, "sandbox_args", broken)

    with pytest.raises(LaunchError, match="sandbox"):
        sandboxed.launch(spec_for(job_dir, "echo never"))

    assert not (job_dir / "job" / STATE_DIR).exists()


# --- launching ----------------------------------------------------------------------------------


def test_a_missing_input_is_a_launch_error_and_the_job_can_be_launched_again(
    executor: LocalExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    missing = [Mount.input("gone", job_dir / "nowhere")]

    with pytest.raises(LaunchError, match="/ferry/input/gone"):
        run("true", mounts=missing)

    assert finish(executor, run("true")).code == 0


def test_a_workdir_is_launched_once(
    executor: LocalExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    finish(executor, run("true"))

    with pytest.raises(LaunchError, match="launched in"):
        run("true")


def test_a_handle_of_another_backend_is_refused(executor: LocalExecutor) -> None:
    with pytest.raises(ValueError, match="docker"):
        executor.wait(Handle("docker", "job-1", {"container": "abc"}))
