"""A job's ferry_requirements.txt is installed once per image and content, by a real pip run
through the real local executor (unsandboxed and in bubblewrap), from wheels this test makes
and serves over HTTP."""

import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from pytest_django.fixtures import Settings

from jobs.executors import Handle, JobSpec, LocalExecutor, Mount, Resources
from jobs.requirements import (
    DEPS_TARGET,
    PRUNE_THREAD,
    RequirementsFailed,
    deps_key,
    ensure_requirements,
    install_command,
    prune_deps_cache,
    requirements_file,
    with_requirements,
)
from tests.jobs.test_executor_contract import require_bwrap

pytestmark = pytest.mark.django_db  # only for settings; no rows are written


class CountingExecutor(LocalExecutor):
    """The local executor, counting the jobs it launches: each is one pip install."""

    def __init__(self, sandbox: bool) -> None:
        super().__init__(sandbox=sandbox)
        self.launched: list[str] = []

    def launch(self, spec: JobSpec) -> Handle:
        self.launched.append(spec.command)
        return super().launch(spec)


@pytest.fixture(params=[False, True], ids=["unsandboxed", "bwrap"])
def executor(request: pytest.FixtureRequest) -> CountingExecutor:
    if request.param:
        require_bwrap()
    return CountingExecutor(sandbox=request.param)


@pytest.fixture
def agent_dir(tmp_path: Path) -> Path:
    return tmp_path / "agent"


@pytest.fixture(autouse=True)
def prunes_end_with_the_test() -> Iterator[None]:
    """An install prunes the cache in the background: that ends before the next test."""
    yield
    join_prunes()


def join_prunes() -> None:
    for thread in threading.enumerate():
        if thread.name == PRUNE_THREAD:
            thread.join(timeout=60)


def code_with(tmp_path: Path, text: str, name: str = "ferry_requirements.txt") -> Path:
    code = tmp_path / f"code-{len(list(tmp_path.glob('code-*')))}"
    code.mkdir()
    (code / name).write_text(text)
    return code


def ensure(
    executor: CountingExecutor,
    code: Path,
    agent_dir: Path,
    pip_args: list[str],
    logged: list[bytes] | None = None,
) -> tuple[Mount | None, bytes]:
    """``ensure_requirements`` in the test image's name; what it logged goes to ``logged``
    too, where a test needs it after a failure."""
    logged = [] if logged is None else logged
    mount = ensure_requirements(
        executor,
        image="ferry/python:3.11",
        code_dir=code,
        agent_dir=agent_dir,
        log=logged.append,
        pip_args=pip_args,
    )
    return mount, b"".join(logged)


IMPORT = 'python3 -c "import ferry_tiny; print(ferry_tiny.VERSION)"'


def job_spec(workdir: Path, mounts: list[Mount], python_paths: tuple[str, ...] = ()) -> JobSpec:
    return JobSpec(
        job_id="job-1",
        image="ferry/python:3.11",
        command=IMPORT,
        workdir=workdir,
        mounts=mounts,
        env={},
        resources=Resources(cpus=1, memory_mb=256),
        max_runtime_s=60,
        python_paths=python_paths,
    )


def run_job(like: LocalExecutor, spec: JobSpec) -> str:
    """What the job printed, run as ``like`` runs jobs (but not counted as an install)."""
    executor = LocalExecutor(sandbox=like.sandboxed)
    handle = executor.launch(spec)
    try:
        output = b"".join(executor.logs(handle)).decode()
        ended = executor.wait(handle, timeout=60)
    finally:
        executor.cleanup(handle)
    assert ended is not None, output
    assert ended.succeeded, output
    return output.strip()


def imported_version(like: LocalExecutor, deps: Mount, workdir: Path) -> str:
    """What a job given the deps mount on its PYTHONPATH imports."""
    return run_job(like, job_spec(workdir, [deps], python_paths=(deps.target,)))


def test_the_ferry_file_comes_first_then_floyds(tmp_path: Path) -> None:
    assert requirements_file(tmp_path) is None
    (tmp_path / "floyd_requirements.txt").write_text("ferry-tiny\n")
    assert requirements_file(tmp_path) == tmp_path / "floyd_requirements.txt"
    (tmp_path / "ferry_requirements.txt").write_text("ferry-tiny==1.0\n")
    assert requirements_file(tmp_path) == tmp_path / "ferry_requirements.txt"


def test_a_file_naming_nothing_or_a_link_is_no_requirements(tmp_path: Path) -> None:
    (tmp_path / "ferry_requirements.txt").write_text("# nothing yet\n\n   \n")
    assert requirements_file(tmp_path) is None
    (tmp_path / "ferry_requirements.txt").unlink()
    (tmp_path / "secrets.txt").write_text("ferry-tiny\n")
    (tmp_path / "ferry_requirements.txt").symlink_to(tmp_path / "secrets.txt")
    assert requirements_file(tmp_path) is None


def test_code_without_requirements_launches_nothing(
    executor: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    code = tmp_path / "code"
    code.mkdir()

    assert ensure(executor, code, agent_dir, pip_args) == (None, b"")
    assert executor.launched == []


def test_the_first_run_installs_and_the_next_reuses(
    executor: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    first, first_log = ensure(
        executor, code_with(tmp_path, "ferry-tiny==1.0\n"), agent_dir, pip_args
    )

    assert first is not None
    assert (first.target, first.read_only) == (DEPS_TARGET, True)
    assert first.source.parent == agent_dir / "deps"
    assert b"Successfully installed ferry-tiny-1.0" in first_log, first_log
    assert len(executor.launched) == 1
    assert imported_version(executor, first, tmp_path / "job1") == "1.0"

    # Another job, the same content under FloydHub's name: nothing is installed.
    code = code_with(tmp_path, "ferry-tiny==1.0\n", name="floyd_requirements.txt")
    second, second_log = ensure(executor, code, agent_dir, pip_args)

    assert second == first
    assert len(executor.launched) == 1
    assert b"reused" in second_log
    assert b"Successfully installed" not in second_log
    assert imported_version(executor, second, tmp_path / "job2") == "1.0"


def test_a_changed_file_installs_again(
    executor: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    old, _ = ensure(executor, code_with(tmp_path, "ferry-tiny==1.0\n"), agent_dir, pip_args)
    new, log = ensure(executor, code_with(tmp_path, "ferry-tiny==2.0\n"), agent_dir, pip_args)

    assert old is not None
    assert new is not None
    assert new.source != old.source
    assert len(executor.launched) == 2
    assert b"Successfully installed ferry-tiny-2.0" in log
    assert imported_version(executor, new, tmp_path / "job") == "2.0"
    # Other pip arguments (another index) are another cache entry as well.
    code = code_with(tmp_path, "ferry-tiny==2.0\n")
    other, _ = ensure(executor, code, agent_dir, [*pip_args, "--no-deps"])
    assert other is not None
    assert other.source not in (old.source, new.source)
    assert len(executor.launched) == 3


def test_a_broken_requirement_fails_clearly_and_caches_nothing(
    executor: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    code = code_with(tmp_path, "ferry-tiny==1.0\nno-such-package==1.0\n")
    logged: list[bytes] = []

    with pytest.raises(RequirementsFailed) as failed:
        ensure(executor, code, agent_dir, pip_args, logged)

    message = str(failed.value)
    assert message.startswith("Installing ferry_requirements.txt failed: pip exited with code 1")
    assert "No matching distribution found for no-such-package==1.0" in message
    assert b"no-such-package" in b"".join(logged)  # the job's log shows pip's own words too
    assert [path for path in (agent_dir / "deps").iterdir() if path.is_dir()] == []
    # Fixed, it installs: the failure was not remembered.
    (code / "ferry_requirements.txt").write_text("ferry-tiny==1.0\n")
    mount, _ = ensure(executor, code, agent_dir, pip_args)
    assert mount is not None
    assert mount.source.is_dir()


def test_what_an_agent_left_dying_mid_install_is_cleared(
    executor: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    content = b"ferry-tiny==1.0\n"
    key = deps_key(executor, "ferry/python:3.11", pip_args, content)
    stale = agent_dir / "deps" / f".install-{key}-dead"
    (stale / "deps" / "ferry_tiny").mkdir(parents=True)

    mount, _ = ensure(executor, code_with(tmp_path, content.decode()), agent_dir, pip_args)

    assert mount is not None
    assert mount.source.name == key
    assert not stale.exists()
    assert sorted(path.name for path in (agent_dir / "deps").iterdir()) == [key, f"{key}.lock"]


def test_two_jobs_at_once_install_once(
    executor: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    codes = [code_with(tmp_path, "ferry-tiny==2.0\n") for _ in range(2)]
    start = threading.Barrier(2)
    results: list[tuple[Mount | None, bytes]] = []

    def job(code: Path) -> None:
        start.wait()
        results.append(ensure(executor, code, agent_dir, pip_args))

    threads = [threading.Thread(target=job, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == 2
    assert results[0][0] == results[1][0] is not None
    assert len(executor.launched) == 1
    logs = sorted(log for _, log in results)
    assert sum(b"Successfully installed ferry-tiny-2.0" in log for log in logs) == 1
    assert sum(b"reused" in log for log in logs) == 1


def test_pip_arguments_reach_the_command_quoted() -> None:
    command = install_command("floyd_requirements.txt", ["--index-url", "https://x/simple?a b"])

    assert command.startswith("python3 -m pip install --no-cache-dir")
    assert '--target "$FERRY_DEPS" -r "$FERRY_CODE"/floyd_requirements.txt' in command
    assert command.endswith("--index-url 'https://x/simple?a b'")


def test_a_job_spec_gets_its_requirements_in_one_call(
    executor: CountingExecutor,
    tmp_path: Path,
    agent_dir: Path,
    pip_args: list[str],
    settings: Settings,
) -> None:
    settings.FERRY_PIP_ARGS = pip_args
    workdir = tmp_path / "job"
    (workdir / "code").mkdir(parents=True)
    (workdir / "code" / "floyd_requirements.txt").write_text("ferry-tiny==2.0\n")
    (tmp_path / "output").mkdir()
    spec = job_spec(workdir, [Mount.output(tmp_path / "output")])
    logged: list[bytes] = []

    ready = with_requirements(executor, spec, agent_dir=agent_dir, log=logged.append)

    assert ready.python_paths == (DEPS_TARGET,)
    assert [mount.target for mount in ready.mounts] == ["/ferry/output", DEPS_TARGET]
    assert b"Successfully installed ferry-tiny-2.0" in b"".join(logged)
    assert run_job(executor, ready) == "2.0"
    # Without a requirements file the spec is the same spec.
    (workdir / "code" / "floyd_requirements.txt").unlink()
    assert with_requirements(executor, spec, agent_dir=agent_dir, log=logged.append) is spec


# --- pruning the cache ---------------------------------------------------------------------------

DAY = 24 * 3600
NEVER = 10**15  # bytes or seconds: a limit nothing reaches


@pytest.fixture
def local(settings: Settings) -> CountingExecutor:
    """Pruning is the same whatever ran pip: the unsandboxed executor, and the settings' limits
    out of reach, so that only the test prunes."""
    settings.FERRY_DEPS_CACHE_MAX_GB = NEVER
    settings.FERRY_DEPS_CACHE_MAX_AGE_DAYS = NEVER
    return CountingExecutor(sandbox=False)


def use_at(
    moment: float,
    executor: CountingExecutor,
    code: Path,
    agent_dir: Path,
    pip_args: list[str],
    used_by: Path | None = None,
) -> Path:
    """The cache entry a job gets at ``moment`` (installed if none is there)."""
    with time_machine.travel(moment, tick=False):
        mount = ensure_requirements(
            executor,
            image="ferry/python:3.11",
            code_dir=code,
            agent_dir=agent_dir,
            log=lambda chunk: None,
            pip_args=pip_args,
            used_by=used_by,
        )
        # Else a test's own prune may find the one an install started still running, and
        # leave the cache to it.
        join_prunes()
    assert mount is not None
    return mount.source


def du(path: Path) -> int:
    """What ``path`` takes on disk, in bytes, as ``du`` counts it."""
    return sum(each.lstat().st_blocks * 512 for each in [path, *path.rglob("*")])


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@contextlib.contextmanager
def locked_elsewhere(lock: Path) -> Iterator[None]:
    """``lock`` held by another process, as an agent installing or looking up the same key
    holds it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; lock = open(sys.argv[1], 'a'); fcntl.flock(lock, fcntl.LOCK_EX);"
            " print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_entries_unused_for_longer_than_the_max_age_are_removed_and_logged(
    local: CountingExecutor,
    tmp_path: Path,
    agent_dir: Path,
    pip_args: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = time.time()
    old_code = code_with(tmp_path, "ferry-tiny==1.0\n")
    old = use_at(base, local, old_code, agent_dir, pip_args)
    recent = use_at(
        base + 20 * DAY, local, code_with(tmp_path, "ferry-tiny==2.0\n"), agent_dir, pip_args
    )

    with caplog.at_level(logging.INFO, logger="jobs.requirements"):
        removed = prune_deps_cache(
            agent_dir, max_bytes=NEVER, max_age_s=30 * DAY, now=base + 31 * DAY
        )

    assert removed == [old]
    assert names(agent_dir / "deps") == [recent.name, f"{recent.name}.lock"]  # nothing of old
    assert f"removed {old} from the requirements cache: unused for 31.0 days" in caplog.messages
    # The next job that wants it installs it again.
    assert use_at(base + 31 * DAY, local, old_code, agent_dir, pip_args) == old
    assert old.is_dir()
    assert len(local.launched) == 3


def test_over_the_size_limit_the_least_recently_used_go_first(
    local: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    base = time.time()
    first_code = code_with(tmp_path, "ferry-tiny==1.0\n")
    first = use_at(base, local, first_code, agent_dir, pip_args)
    second = use_at(base + 60, local, code_with(tmp_path, "ferry-tiny==2.0\n"), agent_dir, pip_args)
    code = code_with(tmp_path, "ferry-tiny==2.0\n")
    third = use_at(base + 120, local, code, agent_dir, [*pip_args, "--no-deps"])
    # Installed first, but used last: the least recently used is the second.
    assert use_at(base + 180, local, first_code, agent_dir, pip_args) == first
    assert len(local.launched) == 3

    def prune(max_bytes: int) -> list[Path]:
        return prune_deps_cache(agent_dir, max_bytes=max_bytes, max_age_s=NEVER, now=base + 240)

    assert prune(du(first) + du(third)) == [second]  # it stops once the rest fits
    assert prune(du(first) + du(third)) == []
    assert prune(du(first)) == [third]
    assert [path.name for path in (agent_dir / "deps").iterdir() if path.is_dir()] == [first.name]


def test_an_entry_a_running_job_has_is_never_removed(
    local: CountingExecutor,
    tmp_path: Path,
    agent_dir: Path,
    pip_args: list[str],
    settings: Settings,
) -> None:
    settings.FERRY_PIP_ARGS = pip_args
    workdir = agent_dir / "jobs" / "7"
    (workdir / "code").mkdir(parents=True)
    (workdir / "code" / "ferry_requirements.txt").write_text("ferry-tiny==1.0\n")
    go = tmp_path / "go"
    spec = with_requirements(local, job_spec(workdir, []), agent_dir=agent_dir, log=lambda _: None)
    join_prunes()
    deps = spec.mounts[-1].source
    unused = use_at(
        time.time(), local, code_with(tmp_path, "ferry-tiny==2.0\n"), agent_dir, pip_args
    )
    waiting = f"while [ ! -e {go} ]; do sleep 0.05; done; {IMPORT}"
    runner = LocalExecutor(sandbox=False)
    handle = runner.launch(dataclasses.replace(spec, command=waiting))
    try:
        # Another process prunes (as an agent restarted while the job runs would), with limits
        # that leave room for nothing: the job's entry stays.
        later = time.time() + 365 * DAY
        pruned = subprocess.run(
            [sys.executable, "-c", PRUNE_ALL, str(agent_dir), str(later)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        )
        assert pruned.stdout == f"[{unused!r}]\n", pruned.stderr
        assert deps.is_dir()
        go.touch()
        output = b"".join(runner.logs(handle)).decode()
        ended = runner.wait(handle, timeout=60)
    finally:
        runner.cleanup(handle)
    assert ended is not None
    assert ended.succeeded, output
    assert output.strip() == "1.0"

    # The job's directory goes when it ends (jobs.agent.finish): then so may its entry.
    workdir.rename(tmp_path / "ended")
    assert prune_deps_cache(agent_dir, max_bytes=0, max_age_s=NEVER, now=later) == [deps]


PRUNE_ALL = """
import sys
from pathlib import Path
from jobs.requirements import prune_deps_cache
removed = prune_deps_cache(Path(sys.argv[1]), max_bytes=0, max_age_s=0, now=float(sys.argv[2]))
print(removed)
"""


def test_an_entry_another_agent_is_looking_up_is_left_alone(
    local: CountingExecutor, tmp_path: Path, agent_dir: Path, pip_args: list[str]
) -> None:
    deps = use_at(time.time(), local, code_with(tmp_path, "ferry-tiny==1.0\n"), agent_dir, pip_args)
    later = time.time() + 365 * DAY

    with locked_elsewhere(agent_dir / "deps" / f"{deps.name}.lock"):
        assert prune_deps_cache(agent_dir, max_bytes=0, max_age_s=0, now=later) == []
        assert deps.is_dir()

    assert prune_deps_cache(agent_dir, max_bytes=0, max_age_s=0, now=later) == [deps]


def test_what_an_agent_left_dying_mid_install_is_removed_a_day_later(
    local: CountingExecutor, agent_dir: Path, pip_args: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = agent_dir / "deps"
    dead, busy = (deps_key(local, "ferry/python:3.11", pip_args, text) for text in (b"a", b"b"))
    half = root / f".install-{dead}-x1y2"
    (half / "deps" / "ferry_tiny").mkdir(parents=True)
    (half / "deps" / "ferry_tiny" / "__init__.py").write_text("VERS")  # cut short
    (root / f"{dead}.lock").touch()
    # A long install, still under way: another agent holds the key's lock.
    running = root / f".install-{busy}-a1b2"
    (running / "deps").mkdir(parents=True)
    now = time.time()

    with locked_elsewhere(root / f"{busy}.lock"):
        assert prune_deps_cache(agent_dir, max_bytes=0, max_age_s=0, now=now) == []
        assert half.is_dir()
        with caplog.at_level(logging.INFO, logger="jobs.requirements"):
            removed = prune_deps_cache(agent_dir, max_bytes=0, max_age_s=0, now=now + 2 * DAY)

    assert removed == [half]
    assert f"removed {half}, which an agent left dying mid-install" in caplog.messages
    assert names(root) == [running.name, f"{busy}.lock"]


def test_an_install_prunes_the_cache_as_the_settings_say(
    tmp_path: Path, agent_dir: Path, pip_args: list[str], settings: Settings
) -> None:
    settings.FERRY_DEPS_CACHE_MAX_AGE_DAYS = 30
    executor = CountingExecutor(sandbox=False)
    base = time.time()
    old = use_at(base, executor, code_with(tmp_path, "ferry-tiny==1.0\n"), agent_dir, pip_args)
    assert old.is_dir()  # the prune after its own install left it

    code = code_with(tmp_path, "ferry-tiny==2.0\n")
    new = use_at(base + 31 * DAY, executor, code, agent_dir, pip_args)

    assert not old.exists()
    assert new.is_dir()
