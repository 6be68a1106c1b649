"""One suite that every executor backend must pass: ``local``, bare and in bubblewrap, and
``docker``."""

import json
import os
import resource
import shlex
import signal
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import ferry
import pytest

from jobs.executors import Executor, Exit, Handle, JobSpec, LocalExecutor, Mount, Resources
from jobs.executors.docker import DockerExecutor
from jobs.executors.local import bwrap_problem
from tests.support import docker_image
from tests.support.services import docker_engine_problem, unavailable

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024


def require_bwrap() -> None:
    """Skip the test that needs a bubblewrap sandbox, or fail it if FERRY_TEST_REQUIRE says."""
    if (problem := bwrap_problem()) is not None:
        unavailable("bwrap", problem)


def local_bare() -> Executor:
    return LocalExecutor(sandbox=False, timeout_grace_s=1)


def local_bwrap() -> Executor:
    require_bwrap()
    return LocalExecutor(sandbox=True, timeout_grace_s=1)


@cache
def docker_setup() -> tuple[str | None, str]:
    """The test image (built if need be, once per session), or why docker cannot run jobs."""
    if (problem := docker_engine_problem()) is not None:
        return None, problem
    try:
        return docker_image.built_image(), ""
    except docker_image.ImageUnavailable as exc:
        return None, f"no test image: {exc}"


def docker_executor() -> DockerExecutor:
    """Skip the test that needs a Docker engine, or fail it if FERRY_TEST_REQUIRE says."""
    image, problem = docker_setup()
    if image is None:
        unavailable("docker", problem)
    return DockerExecutor(default_image=image, timeout_grace_s=1)


BACKENDS: dict[str, Callable[[], Executor]] = {
    "local": local_bare,
    "local-bwrap": local_bwrap,
    "docker": docker_executor,
}


@pytest.fixture(params=sorted(BACKENDS))
def make_executor(request: pytest.FixtureRequest) -> Callable[[], Executor]:
    """Makes fresh instances of one backend, as a restarted agent would."""
    factory = BACKENDS[request.param]
    factory()  # skips here, once, if the backend cannot run
    return factory


@pytest.fixture
def executor(make_executor: Callable[[], Executor]) -> Executor:
    return make_executor()


def lay_out(root: Path) -> Path:
    """A job's directories under ``root`` as the agent lays them out: the code, one input
    (mnist, holding a.txt) and an output."""
    (root / "job" / "code").mkdir(parents=True)
    (root / "cache" / "mnist").mkdir(parents=True)
    (root / "cache" / "mnist" / "a.txt").write_text("digits\n")
    (root / "output").mkdir()
    return root


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    return lay_out(tmp_path)


def spec_for(job_dir: Path, command: str, **changes: object) -> JobSpec:
    fields: dict[str, object] = {
        "job_id": "job-1",
        "image": None,
        "command": command,
        "workdir": job_dir / "job",
        "mounts": [
            Mount.input("mnist", job_dir / "cache" / "mnist"),
            Mount.output(job_dir / "output"),
        ],
        "env": {},
        "resources": Resources(cpus=1, memory_mb=256, gpus=()),
        "max_runtime_s": None,
    }
    return JobSpec(**{**fields, **changes})  # type: ignore[arg-type]


def finish(executor: Executor, handle: Handle, timeout: float = 20) -> Exit:
    ended = executor.wait(handle, timeout)
    assert ended is not None, f"the job still runs after {timeout}s"
    return ended


def all_logs(executor: Executor, handle: Handle) -> str:
    return b"".join(executor.logs(handle)).decode()


def read_until(executor: Executor, handle: Handle, needle: str) -> str:
    """The logs up to the first chunk holding ``needle`` (or all of them, if it never comes)."""
    seen = b""
    for chunk in executor.logs(handle):
        seen += chunk
        if needle.encode() in seen:
            break
    return seen.decode()


def killed(ended: Exit) -> bool:
    # Sandboxes and containers report a death by SIGKILL as 128 + 9.
    return ended.signal == signal.SIGKILL or ended.code == 128 + signal.SIGKILL


@pytest.mark.timeout(docker_image.BUILD_TIMEOUT_S + 60)
def test_the_docker_backend_has_its_image() -> None:
    """The first test here, so that building the image (a minute or two, once per machine,
    where CI's script has not) counts against no job test's timeout."""
    assert docker_executor().default_image == docker_image.TAG


# --- exits and logs -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3])
def test_the_exit_code_is_reported(
    executor: Executor, run: Callable[..., Handle], code: int
) -> None:
    handle = run(f"exit {code}")

    assert finish(executor, handle) == Exit(code=code, signal=None, timed_out=False, stopped=False)


def test_logs_arrive_while_the_job_runs(executor: Executor, run: Callable[..., Handle]) -> None:
    handle = run("echo first; sleep 30; echo second")
    started = time.monotonic()

    assert "first" in read_until(executor, handle, "first")

    assert time.monotonic() - started < 10
    assert executor.wait(handle, timeout=0) is None


def test_a_quiet_job_still_gives_its_reader_a_chunk_each_second(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    handle = run("echo first; sleep 30")
    chunks = executor.logs(handle)
    assert next(chunk for chunk in chunks if chunk) == b"first\n"
    started = time.monotonic()

    quiet = [next(chunks) for _ in range(2)]

    assert quiet == [b"", b""]  # nothing printed, yet the reader may act (flush) on time
    assert time.monotonic() - started < 2.5


def test_stdout_and_stderr_are_both_captured(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    handle = run("echo to-stdout; echo to-stderr >&2")
    finish(executor, handle)

    logs = all_logs(executor, handle)

    assert "to-stdout" in logs
    assert "to-stderr" in logs


def test_logs_of_an_ended_job_can_be_read_again(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    handle = run("echo once")
    finish(executor, handle)

    assert all_logs(executor, handle) == all_logs(executor, handle) == "once\n"


# --- mounts and environment -------------------------------------------------------------------


def test_inputs_are_mounted(executor: Executor, run: Callable[..., Handle]) -> None:
    paths = ['"$FERRY_INPUT_MNIST"']
    if executor.sandboxed:
        paths += ["/ferry/input/mnist", "/floyd/input/mnist"]
    handle = run("; ".join(f"cat {path}/a.txt" for path in paths))

    assert finish(executor, handle).code == 0
    assert all_logs(executor, handle) == "digits\n" * len(paths)


def test_inputs_are_read_only_in_a_sandbox(
    executor: Executor, run: Callable[..., Handle], job_dir: Path
) -> None:
    if not executor.sandboxed:
        pytest.skip("without a sandbox, read-only inputs are not enforced (documented)")
    handle = run(
        "for dir in /ferry/input/mnist /floyd/input/mnist; do"
        '  echo changed > "$dir/a.txt" || echo refused;'
        '  touch "$dir/new" || echo refused;'
        "done"
    )
    finish(executor, handle)

    assert all_logs(executor, handle).count("refused") == 4
    assert (job_dir / "cache" / "mnist" / "a.txt").read_text() == "digits\n"
    assert sorted(os.listdir(job_dir / "cache" / "mnist")) == ["a.txt"]


def test_what_the_job_writes_to_its_output_lands_on_the_host(
    executor: Executor, run: Callable[..., Handle], job_dir: Path
) -> None:
    command = 'echo by-variable > "$FERRY_OUTPUT/variable.txt"'
    if executor.sandboxed:
        command += "; echo by-path > /ferry/output/path.txt; echo floyd > /floyd/output/floyd.txt"
    handle = run(command)

    assert finish(executor, handle).code == 0
    assert (job_dir / "output" / "variable.txt").read_text() == "by-variable\n"
    if executor.sandboxed:
        assert (job_dir / "output" / "path.txt").read_text() == "by-path\n"
        assert (job_dir / "output" / "floyd.txt").read_text() == "floyd\n"


def test_the_code_directory_is_the_working_directory(
    executor: Executor, run: Callable[..., Handle], job_dir: Path
) -> None:
    (job_dir / "job" / "code" / "train.py").write_text("print('training')\n")
    handle = run('cat train.py; [ "$(pwd)" = "$FERRY_CODE" ] && echo same')

    finish(executor, handle)

    assert all_logs(executor, handle) == "print('training')\nsame\n"


# How a job comes to use exactly its GPUs differs by backend: each states it here, as the
# host's indices of the GPUs that CUDA in the job would use.
GpusUsed = Callable[[Executor, Callable[..., Handle], Path, tuple[int, ...]], tuple[int, ...]]


def gpus_used_by_a_local_job(
    executor: Executor, run: Callable[..., Handle], job_dir: Path, gpus: tuple[int, ...]
) -> tuple[int, ...]:
    """Every GPU's device is there, and CUDA_VISIBLE_DEVICES, in the host's numbering, picks."""
    handle = run(
        'printf %s "${CUDA_VISIBLE_DEVICES-unset}"',
        resources=Resources(cpus=1, memory_mb=256, gpus=gpus),
    )
    finish(executor, handle)
    seen = all_logs(executor, handle)
    assert seen != "unset", "CUDA uses every GPU where CUDA_VISIBLE_DEVICES is unset"
    return tuple(int(index) for index in seen.split(",") if index)


def gpus_used_by_a_docker_job(
    executor: Executor, run: Callable[..., Handle], job_dir: Path, gpus: tuple[int, ...]
) -> tuple[int, ...]:
    """The container is given exactly the devices it requests, which it numbers from 0, and
    CUDA_VISIBLE_DEVICES counts in that numbering.

    The one faked check of the suite: it reads the container's configuration instead of
    running the job, which would take GPUs and NVIDIA's container runtime. (The docker suite
    has the engine store that configuration: HostConfig.DeviceRequests.)"""
    assert isinstance(executor, DockerExecutor)
    spec = spec_for(job_dir, "true", resources=Resources(cpus=1, memory_mb=256, gpus=gpus))
    config = executor.container_config(spec, job_dir / "state")
    given = [
        int(index)
        for request in config.get("device_requests", [])
        if ["gpu"] in request["Capabilities"]
        for index in request["DeviceIDs"]
    ]
    seen = config["environment"]["CUDA_VISIBLE_DEVICES"]
    return tuple(given[int(index)] for index in seen.split(",") if index)


GPUS_USED: dict[str, GpusUsed] = {
    "local": gpus_used_by_a_local_job,
    "docker": gpus_used_by_a_docker_job,
}


@pytest.mark.parametrize("gpus", [(0, 2), (1,), ()])
def test_a_job_uses_exactly_its_gpus(
    executor: Executor, run: Callable[..., Handle], job_dir: Path, gpus: tuple[int, ...]
) -> None:
    assert GPUS_USED[executor.name](executor, run, job_dir, gpus) == gpus


def test_a_job_without_gpus_reads_an_empty_cuda_visible_devices(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    # "unset" would let CUDA see every GPU: no GPUs must read as an empty list.
    handle = run("printf '[%s]' \"${CUDA_VISIBLE_DEVICES-unset}\"")
    finish(executor, handle)

    assert all_logs(executor, handle) == "[]"


def test_the_spec_env_reaches_the_job(executor: Executor, run: Callable[..., Handle]) -> None:
    handle = run('printf %s "$GREETING"', env={"GREETING": "hello there"})
    finish(executor, handle)

    assert all_logs(executor, handle) == "hello there"


def test_the_jobs_python_imports_the_ferry_sdk(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    script = "import ferry, sys; print(ferry.__name__, ferry.__version__)"
    handle = run(f"python3 -c {shlex.quote(script)}")

    assert finish(executor, handle).code == 0
    assert all_logs(executor, handle) == f"ferry {ferry.__version__}\n"


def test_the_jobs_own_pythonpath_works_beside_the_sdk(
    executor: Executor, run: Callable[..., Handle], job_dir: Path
) -> None:
    (job_dir / "job" / "code" / "lib").mkdir()
    (job_dir / "job" / "code" / "lib" / "mine.py").write_text("NAME = 'mine'\n")
    script = "import ferry, mine; print(ferry.__name__, mine.NAME)"
    handle = run(f"python3 -c {shlex.quote(script)}", env={"PYTHONPATH": "lib"})  # from the code

    assert finish(executor, handle).code == 0
    assert all_logs(executor, handle) == "ferry mine\n"


def test_python_paths_put_a_mounts_modules_after_the_sdk_and_before_the_jobs_own(
    executor: Executor, run: Callable[..., Handle], job_dir: Path
) -> None:
    lib = job_dir / "cache" / "lib"
    lib.mkdir()
    (lib / "helpers.py").write_text("NAME = 'helpers'\n")
    script = "import ferry, helpers; print(helpers.NAME)"
    handle = run(
        f"python3 -c {shlex.quote(script)};"
        ' [ "${PYTHONPATH#*:}" = "$FERRY_INPUT_LIB:mine" ] && echo in-order',
        mounts=[*spec_for(job_dir, "true").mounts, Mount.input("lib", lib)],
        python_paths=("/ferry/input/lib",),
        env={"PYTHONPATH": "mine"},
    )

    assert finish(executor, handle).code == 0
    assert all_logs(executor, handle) == "helpers\nin-order\n"


# --- stopping -----------------------------------------------------------------------------------


def test_stop_sends_sigterm_and_the_jobs_trap_runs(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    handle = run("trap 'echo got-term; exit 7' TERM; echo ready; sleep 30 & wait")
    read_until(executor, handle, "ready")  # the trap is set
    started = time.monotonic()

    executor.stop(handle, grace_s=10)

    assert time.monotonic() - started < 5
    assert finish(executor, handle, timeout=0) == Exit(7, None, timed_out=False, stopped=True)
    assert "got-term" in all_logs(executor, handle)


def test_stop_sends_sigterm_to_the_program_the_shell_started_and_lets_it_finish(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    # Training scripts save on SIGTERM: the signal must reach `python3 train.py`, not only the
    # shell that runs the command (which, with `; echo`, cannot exec into it), and the job must
    # not end, killing the program, when that shell dies first. The handler takes its time, as
    # writing a checkpoint does.
    handle = run(
        "python3 -c 'import signal, sys, time\n"
        "def saved(*_):\n"
        "    time.sleep(0.5)\n"
        '    print("python-saved", flush=True)\n'
        "    sys.exit(5)\n"
        "signal.signal(signal.SIGTERM, saved)\n"
        'print("ready", flush=True)\n'
        "time.sleep(30)'; echo shell-went-on-with-$?"
    )
    read_until(executor, handle, "ready")

    executor.stop(handle, grace_s=10)

    ended = finish(executor, handle, timeout=10)
    assert ended.stopped
    assert "python-saved" in all_logs(executor, handle)


def test_a_command_that_handles_sigterm_and_exits_ends_the_job_at_once(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    # Its trap leaves a process behind that never got the SIGTERM: the job has ended all the
    # same, and that process goes with it rather than holding the stop until the grace.
    handle = run("trap 'sleep 30 & exit 7' TERM; echo ready; while :; do sleep 0.1; done")
    read_until(executor, handle, "ready")
    started = time.monotonic()

    executor.stop(handle, grace_s=10)

    assert time.monotonic() - started < 5
    assert finish(executor, handle, timeout=0) == Exit(7, None, timed_out=False, stopped=True)


def test_a_job_ignoring_sigterm_is_killed_with_its_children_after_the_grace(
    executor: Executor, run: Callable[..., Handle], job_dir: Path
) -> None:
    handle = run(
        "trap '' TERM;"
        ' (while :; do date +%s%N > "$FERRY_OUTPUT/beat"; sleep 0.05; done) &'
        " echo ready; sleep 1000"
    )
    read_until(executor, handle, "ready")
    started = time.monotonic()

    executor.stop(handle, grace_s=1)

    assert 1 <= time.monotonic() - started < 5
    ended = finish(executor, handle, timeout=0)
    assert ended.stopped
    assert killed(ended)
    beat = (job_dir / "output" / "beat").read_text()
    time.sleep(0.3)
    assert (job_dir / "output" / "beat").read_text() == beat, "the child still runs"


def test_max_runtime_stops_the_job(executor: Executor, run: Callable[..., Handle]) -> None:
    started = time.monotonic()
    handle = run("echo started; sleep 30", max_runtime_s=1)

    ended = finish(executor, handle)

    assert 1 <= time.monotonic() - started < 6
    assert ended.timed_out
    assert not ended.stopped
    assert not ended.succeeded
    assert "started" in all_logs(executor, handle)


def test_stop_of_an_ended_job_is_harmless(executor: Executor, run: Callable[..., Handle]) -> None:
    handle = run("exit 0")
    ended = finish(executor, handle)

    executor.stop(handle, grace_s=1)
    executor.stop(handle, grace_s=1)

    assert executor.wait(handle) == ended == Exit(0, None, timed_out=False, stopped=False)


def test_stop_twice_is_harmless(executor: Executor, run: Callable[..., Handle]) -> None:
    handle = run("echo ready; sleep 30")
    read_until(executor, handle, "ready")

    executor.stop(handle, grace_s=5)
    executor.stop(handle, grace_s=5)

    assert finish(executor, handle, timeout=0).stopped


def test_keepalive_is_harmless_while_running_after_the_end_and_after_cleanup(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    handle = run("echo ready; sleep 0.2", keepalive_s=60)
    read_until(executor, handle, "ready")
    executor.keepalive(handle)
    ended = finish(executor, handle)

    executor.keepalive(handle)
    executor.cleanup(handle)
    executor.keepalive(handle)

    assert ended == Exit(0, None, timed_out=False, stopped=False)


# --- finding a job again ------------------------------------------------------------------------


def test_a_handle_restored_from_its_state_can_wait_and_stop_the_job(
    make_executor: Callable[[], Executor], run: Callable[..., Handle]
) -> None:
    handle = run("echo ready; sleep 30")
    state = json.loads(json.dumps(handle.to_state()))  # as an agent would store it
    fresh = make_executor()
    restored = Handle.from_state(state)

    assert "ready" in read_until(fresh, restored, "ready")
    assert fresh.wait(restored, timeout=0.2) is None
    fresh.stop(restored, grace_s=5)

    assert finish(fresh, restored, timeout=0).stopped


def test_a_restored_handle_reads_the_exit_code(
    make_executor: Callable[[], Executor], run: Callable[..., Handle]
) -> None:
    handle = run("sleep 0.5; exit 5")
    restored = Handle.from_state(json.loads(json.dumps(handle.to_state())))

    assert finish(make_executor(), restored).code == 5


# --- bounded memory ---------------------------------------------------------------------------


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_gigabyte_of_output_streams_in_bounded_memory(
    executor: Executor, run: Callable[..., Handle]
) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    resident_before = resident_bytes()
    resident_most = resident_before
    handle = run("yes | head -c 1G")

    total = 0
    for index, chunk in enumerate(executor.logs(handle)):
        total += len(chunk)
        if index % 64 == 0:
            resident_most = max(resident_most, resident_bytes())

    assert total == 1024 * MiB
    assert finish(executor, handle).code == 0
    assert resident_most - resident_before < 100 * MiB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before < 100 * MiB


# --- the spec ---------------------------------------------------------------------------------


def test_an_empty_command_is_refused_before_launching(executor: Executor, job_dir: Path) -> None:
    with pytest.raises(ValueError, match="command is empty"):
        executor.launch(spec_for(job_dir, "  \n "))

    assert os.listdir(job_dir / "job") == ["code"]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("/data", "under /ferry"),
        ("/ferry/input/../../etc", "under /ferry"),
        ("/ferry//input/x", "normalised"),
        ("/ferry/input/bad name", "letters, digits"),
        ("/ferry/code", "reserved"),
        ("/ferry/input", "reserved"),
        ("/ferry/sdk", "reserved"),
        ("/ferry/sdk/ferry", "reserved"),
    ],
)
def test_a_mount_target_outside_the_layout_is_refused(
    job_dir: Path, target: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        spec_for(job_dir, "true", mounts=[Mount(job_dir / "cache", target, read_only=True)])


@pytest.mark.parametrize(
    "targets",
    [
        ("/ferry/input/a", "/ferry/input/a"),
        ("/ferry/input/a", "/ferry/input/a/b"),
        ("/ferry/input/mnist-1", "/ferry/input/mnist_1"),  # one variable for both
    ],
)
def test_clashing_mounts_are_refused(job_dir: Path, targets: tuple[str, str]) -> None:
    mounts = [Mount(job_dir / "cache", target, read_only=True) for target in targets]

    with pytest.raises(ValueError, match=r"overlap|share"):
        spec_for(job_dir, "true", mounts=mounts)


def test_each_mount_is_named_by_a_variable_and_a_floyd_path(job_dir: Path) -> None:
    mount = Mount.input("mnist-v1.2", job_dir / "cache")

    assert mount.env_name == "FERRY_INPUT_MNIST_V1_2"
    assert mount.floyd_target == "/floyd/input/mnist-v1.2"
    assert Mount.output(job_dir / "output").env_name == "FERRY_OUTPUT"


def test_python_paths_must_be_mount_targets(job_dir: Path) -> None:
    with pytest.raises(ValueError, match="python_paths"):
        spec_for(job_dir, "true", python_paths=("/ferry/input/elsewhere",))


@pytest.mark.parametrize("keepalive_s", [0, -1.5])
def test_a_keepalive_that_is_not_positive_is_refused(job_dir: Path, keepalive_s: float) -> None:
    with pytest.raises(ValueError, match="keepalive_s must be positive"):
        spec_for(job_dir, "true", keepalive_s=keepalive_s)


def test_a_handle_survives_json_and_junk_is_refused() -> None:
    handle = Handle("local", "job-1", {"state_dir": "/x", "pgid": 12})

    assert Handle.from_state(json.loads(json.dumps(handle.to_state()))) == handle
    with pytest.raises(ValueError, match="handle"):
        Handle.from_state({"backend": "local", "job_id": "job-1", "data": {"pgid": [1]}})
