"""A job's ferry_requirements.txt is installed once per image and content, by a real pip run
through the real local executor (unsandboxed and in bubblewrap), from wheels this test makes
and serves over HTTP."""

import threading
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from jobs.executors import Handle, JobSpec, LocalExecutor, Mount, Resources
from jobs.requirements import (
    DEPS_TARGET,
    RequirementsFailed,
    deps_key,
    ensure_requirements,
    install_command,
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
