"""The docker executor beyond the shared contract: what its containers let a job do (isolation,
limits), what they are on the engine, and its watchdog. On a real engine, with the test image
(tests/support/docker_image.py); only the GPU configuration is checked without running it."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from jobs.executors import Exit, Handle, JobNotFound, LaunchError, Mount, Resources
from jobs.executors.common import STATE_DIR, lock_held, unwatched
from jobs.executors.docker import (
    LABEL_EXECUTOR,
    LABEL_JOB,
    LABEL_WORKDIR,
    PIDS_LIMIT,
    DockerExecutor,
    job_user,
)
from tests.jobs.test_executor_contract import (
    all_logs,
    docker_executor,
    finish,
    killed,
    lay_out,
    read_until,
    spec_for,
)
from tests.support import docker_image

pytestmark = pytest.mark.timeout(90)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Launches one job from a separate process, prints its handle's state and exits at once: the
# agent that dies, leaving its job to the watchdog.
LAUNCHER = """
import json, sys
from pathlib import Path
from jobs.executors.docker import DockerExecutor
from tests.jobs.test_executor_contract import spec_for

executor = DockerExecutor(default_image=sys.argv[2], timeout_grace_s=1)
spec = spec_for(Path(sys.argv[1]), "echo started; sleep 60", **json.loads(sys.argv[3]))
print(json.dumps(executor.launch(spec).to_state()))
"""


@pytest.fixture
def executor() -> DockerExecutor:
    return docker_executor()


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    return lay_out(tmp_path)


@pytest.fixture
def engine(executor: DockerExecutor) -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def container_of(engine: docker.DockerClient, handle: Handle) -> Container:
    container = handle.data["container"]
    assert isinstance(container, str)
    return engine.containers.get(container)


@pytest.mark.timeout(docker_image.BUILD_TIMEOUT_S + 60)
def test_the_docker_backend_has_its_image() -> None:
    """The first test here, so that building the image (a minute or two, once per machine,
    where CI's script has not) counts against no job test's timeout."""
    assert docker_executor().default_image == docker_image.TAG


# --- isolation ----------------------------------------------------------------------------------


def test_a_job_cannot_write_its_inputs_even_where_the_files_would_let_it(
    executor: DockerExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    # Writable by anyone on the host: only the read-only mount stands in the job's way.
    (job_dir / "cache" / "mnist").chmod(0o777)
    (job_dir / "cache" / "mnist" / "a.txt").chmod(0o666)
    handle = run(
        "echo changed > /ferry/input/mnist/a.txt || echo refused;"
        " touch /floyd/input/mnist/new || echo refused"
    )
    finish(executor, handle)

    assert all_logs(executor, handle).count("refused") == 2
    assert "Read-only file system" in all_logs(executor, handle)
    assert (job_dir / "cache" / "mnist" / "a.txt").read_text() == "digits\n"


def test_a_job_cannot_see_another_jobs_files(executor: DockerExecutor, tmp_path: Path) -> None:
    first, second = lay_out(tmp_path / "first"), lay_out(tmp_path / "second")
    (first / "job" / "code" / "secret.txt").write_text("first-job-7f3a\n")
    snoop = (
        f"cat {first}/job/code/secret.txt 2>/dev/null || echo no-path;"
        " cat /ferry/output/theirs.txt 2>/dev/null || echo not-theirs;"
        " grep -rl first-job-7f3a /ferry /floyd /tmp 2>/dev/null || echo nothing-found"
    )
    handles = [
        executor.launch(spec_for(first, "echo ours > /ferry/output/theirs.txt; echo up; sleep 30")),
        executor.launch(spec_for(second, snoop, job_id="job-2")),
    ]
    try:
        read_until(executor, handles[0], "up")  # it runs beside the second
        assert finish(executor, handles[1]).code == 0
        logs = all_logs(executor, handles[1])
    finally:
        for handle in handles:
            executor.cleanup(handle)

    assert logs == "no-path\nnot-theirs\nnothing-found\n"
    assert (first / "output" / "theirs.txt").read_text() == "ours\n"


def test_a_job_over_its_memory_limit_is_killed_and_its_end_says_so(
    executor: DockerExecutor, run: Callable[..., Handle]
) -> None:
    handle = run(
        "python3 -c 'x = bytearray(200 * 1024 * 1024); print(\"survived\")'",
        resources=Resources(cpus=1, memory_mb=64),
    )

    ended = finish(executor, handle)

    assert ended.oom_killed
    assert killed(ended)
    assert not ended.succeeded
    assert "survived" not in all_logs(executor, handle)


def test_the_docker_socket_is_not_in_the_container(
    executor: DockerExecutor, run: Callable[..., Handle]
) -> None:
    handle = run(
        "for path in /var/run/docker.sock /run/docker.sock; do [ -e $path ] || echo absent; done"
    )
    finish(executor, handle)

    assert all_logs(executor, handle) == "absent\nabsent\n"


def test_the_job_has_no_capabilities(executor: DockerExecutor, run: Callable[..., Handle]) -> None:
    handle = run("grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status")
    finish(executor, handle)

    values = [line.split()[1] for line in all_logs(executor, handle).splitlines()]

    assert values == ["0000000000000000"] * 3


def test_the_job_cannot_gain_privileges(
    executor: DockerExecutor, run: Callable[..., Handle]
) -> None:
    handle = run("grep NoNewPrivs /proc/self/status")
    finish(executor, handle)

    assert all_logs(executor, handle).split() == ["NoNewPrivs:", "1"]


def test_the_job_runs_as_an_unprivileged_user(
    executor: DockerExecutor, run: Callable[..., Handle], job_dir: Path
) -> None:
    handle = run('id -u; id -g; echo written > "$FERRY_OUTPUT/by-the-job.txt"')

    assert finish(executor, handle).code == 0
    uid, gid = all_logs(executor, handle).split()
    assert (int(uid), int(gid)) == job_user()
    assert int(uid) != 0
    assert (job_dir / "output" / "by-the-job.txt").stat().st_uid == int(uid)


def test_a_job_cannot_start_more_processes_than_its_limit(
    executor: DockerExecutor, job_dir: Path
) -> None:
    small = DockerExecutor(default_image=executor.default_image, pids_limit=32)
    handle = small.launch(
        spec_for(job_dir, "i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done; echo all")
    )
    try:
        ended = finish(small, handle)
        logs = all_logs(small, handle)
    finally:
        small.cleanup(handle)

    assert ended.code != 0
    assert "all" not in logs.split()
    assert "fork" in logs.lower()


def test_without_network_the_container_has_only_loopback(
    executor: DockerExecutor, run: Callable[..., Handle], tmp_path: Path
) -> None:
    interfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"
    cut_off = run(interfaces, network=False)
    connected = executor.launch(spec_for(lay_out(tmp_path / "other"), interfaces))
    try:
        for handle in (cut_off, connected):
            finish(executor, handle)
        seen = [all_logs(executor, handle).split() for handle in (cut_off, connected)]
    finally:
        executor.cleanup(connected)

    assert seen[0] == ["lo"]
    assert len(seen[1]) > 1  # the engine's bridge, besides


# --- the container on the engine ----------------------------------------------------------------


def test_the_container_is_labelled_limited_and_locked_down(
    executor: DockerExecutor,
    run: Callable[..., Handle],
    job_dir: Path,
    engine: docker.DockerClient,
) -> None:
    handle = run("sleep 30", resources=Resources(cpus=1.5, memory_mb=300))

    attrs = container_of(engine, handle).attrs
    host = attrs["HostConfig"]

    assert attrs["Config"]["Labels"] == {
        LABEL_EXECUTOR: "docker",
        LABEL_JOB: "job-1",
        LABEL_WORKDIR: str(job_dir / "job"),
    }
    assert attrs["Name"].startswith("/ferry-job-job-1-")
    assert attrs["Config"]["User"] == "{}:{}".format(*job_user())
    assert (host["NanoCpus"], host["Memory"], host["MemorySwap"]) == (
        1_500_000_000,
        300 * 1024 * 1024,
        300 * 1024 * 1024,
    )
    assert host["PidsLimit"] == PIDS_LIMIT
    assert (host["CapDrop"], host["SecurityOpt"], host["Init"]) == (
        ["ALL"],
        ["no-new-privileges"],
        True,
    )
    assert not host["Privileged"]
    read_only = {mount["Destination"]: not mount["RW"] for mount in attrs["Mounts"]}
    assert read_only == {
        "/ferry/code": False,
        "/floyd/home": False,
        "/ferry/input/mnist": True,
        "/floyd/input/mnist": True,
        "/ferry/output": False,
        "/floyd/output": False,
        "/ferry/sdk/ferry": True,
        "/ferry/.output.log": False,
    }


@pytest.mark.parametrize(
    ("gpus", "requested", "cuda", "nvidia"),
    [((0, 2), ["0", "2"], "0,1", "0,2"), ((), None, "", "void")],
)
def test_the_engine_is_asked_for_exactly_the_jobs_gpus(
    executor: DockerExecutor,
    engine: docker.DockerClient,
    job_dir: Path,
    gpus: tuple[int, ...],
    requested: list[str] | None,
    cuda: str,
    nvidia: str,
) -> None:
    # Faked, the one part of the suites that is: the container is created but never started,
    # since starting it takes GPUs and NVIDIA's container runtime. What the engine stores is
    # what that runtime acts on.
    spec = spec_for(job_dir, "true", resources=Resources(cpus=1, memory_mb=256, gpus=gpus))
    config = executor.container_config(spec, job_dir / "job" / STATE_DIR)
    config["mounts"] = []  # the state directory does not exist: nothing to bind
    container = engine.containers.create(**config)
    try:
        container.reload()
        attrs = container.attrs
    finally:
        container.remove(force=True)

    stored = attrs["HostConfig"]["DeviceRequests"]
    if requested is None:
        assert not stored
    else:
        assert [(item["DeviceIDs"], item["Capabilities"]) for item in stored] == [
            (requested, [["gpu"]])
        ]
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]) == (cuda, nvidia)


def test_cleanup_removes_the_container_and_keeps_the_output(
    executor: DockerExecutor,
    run: Callable[..., Handle],
    job_dir: Path,
    engine: docker.DockerClient,
) -> None:
    handle = run('echo result > "$FERRY_OUTPUT/kept.txt"; echo ready; sleep 30')
    read_until(executor, handle, "ready")
    container = handle.data["container"]

    executor.cleanup(handle)

    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(str(container))
    assert not (job_dir / "job" / STATE_DIR).exists()
    assert (job_dir / "output" / "kept.txt").read_text() == "result\n"
    with pytest.raises(JobNotFound):
        executor.wait(handle)
    executor.cleanup(handle)  # harmless twice


def test_the_agent_finds_ended_containers_and_removes_those_of_jobs_it_does_not_know(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    ended = executor.launch(spec_for(lay_out(tmp_path / "a"), "true", job_id="ended"))
    running = executor.launch(spec_for(lay_out(tmp_path / "b"), "sleep 30", job_id="running"))
    try:
        finish(executor, ended)

        assert [item.job_id for item in executor.ended_containers(under=tmp_path)] == ["ended"]
        removed = executor.remove_containers_except({"ended"}, under=tmp_path)

        assert [item.job_id for item in removed] == ["running"]
        assert [item.job_id for item in executor.containers(under=tmp_path)] == ["ended"]
        assert killed(finish(executor, running))  # removing it ended it
    finally:
        for handle in (ended, running):
            executor.cleanup(handle)
    assert executor.containers(under=tmp_path) == []


# --- the watchdog -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"keepalive_s": 1}, Exit(143, None, timed_out=False, stopped=True)),
        ({"max_runtime_s": 1}, Exit(143, None, timed_out=True, stopped=False)),
    ],
    ids=["keepalive", "max-runtime"],
)
def test_the_watchdog_holds_the_limits_of_a_job_whose_agent_died(
    executor: DockerExecutor, job_dir: Path, limits: dict[str, int], expected: Exit
) -> None:
    started = time.monotonic()
    image = str(executor.default_image)
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(job_dir), image, json.dumps(limits)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    handle = Handle.from_state(json.loads(launched.stdout))
    try:
        ended = finish(executor, handle)
        logs = all_logs(executor, handle)
    finally:
        executor.cleanup(handle)

    assert time.monotonic() - started < 10
    assert ended == expected  # SIGTERM: the shell ends of it, 128 + 15
    # The command's shell may say "Terminated" of its `sleep`: SIGTERM reaches every process.
    logs = logs.replace("Terminated\n", "")
    if "keepalive_s" in limits:
        assert logs == f"started\n[ferry] {unwatched(1)}\n"
    else:
        assert logs == "started\n"


def test_a_job_whose_watchdog_died_is_lost_until_the_engine_knows_its_end(
    executor: DockerExecutor,
    run: Callable[..., Handle],
    job_dir: Path,
    engine: docker.DockerClient,
) -> None:
    handle = run("echo ready; sleep 1; exit 6")
    read_until(executor, handle, "ready")

    kill_watchdog(job_dir / "job" / STATE_DIR)

    # Running, but nothing holds its limits now: lost, as the local executor has it.
    assert finish(executor, handle) == Exit(None, None)
    container_of(engine, handle).wait(timeout=10)
    # Ended unwatched (a machine restarted, say): the engine's word.
    assert finish(executor, handle) == Exit(6, None, timed_out=False, stopped=False)


def test_stop_ends_a_job_whose_watchdog_died(
    executor: DockerExecutor,
    run: Callable[..., Handle],
    job_dir: Path,
    engine: docker.DockerClient,
) -> None:
    handle = run("echo ready; sleep 30")
    read_until(executor, handle, "ready")
    kill_watchdog(job_dir / "job" / STATE_DIR)

    executor.stop(handle, grace_s=1)

    assert container_of(engine, handle).wait(timeout=5)["StatusCode"] == 128 + signal.SIGKILL


def kill_watchdog(state_dir: Path) -> None:
    """SIGKILL the job's watchdog, and return once it is gone (its lock free)."""
    os.kill(watchdog_of(state_dir), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while lock_held(state_dir / "watcher.lock"):
        assert time.monotonic() < deadline, "the watchdog outlived SIGKILL"
        time.sleep(0.01)


def watchdog_of(state_dir: Path) -> int:
    """The pid of the watchdog of the job whose state directory is ``state_dir``: it works
    there (it may have been started before the job, so its argv does not name it)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if (proc / "cwd").readlink() == state_dir and b"jobs.executors.engine_api" in (
                proc / "cmdline"
            ).read_bytes():
                found.append(int(proc.name))
    assert len(found) == 1, found
    return found[0]


# --- launching ----------------------------------------------------------------------------------


def test_a_missing_image_is_a_launch_error_and_leaves_nothing_behind(
    executor: DockerExecutor, job_dir: Path
) -> None:
    with pytest.raises(LaunchError, match="ferry-test/absent:never"):
        executor.launch(spec_for(job_dir, "true", image="ferry-test/absent:never"))

    assert not (job_dir / "job" / STATE_DIR).exists()
    assert executor.containers(under=job_dir) == []


def test_an_image_without_a_shell_ends_the_job_with_the_reason_in_its_log(
    executor: DockerExecutor, job_dir: Path, engine: docker.DockerClient
) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("etc/hostname"), io.BytesIO(b""))
    engine.api.import_image_from_data(layer.getvalue(), repository="ferry-test/no-shell", tag="1")
    handle = executor.launch(spec_for(job_dir, "echo never", image="ferry-test/no-shell:1"))
    try:
        ended = finish(executor, handle)
        logs = all_logs(executor, handle)
    finally:
        executor.cleanup(handle)
        engine.images.remove("ferry-test/no-shell:1")  # each run imports a new one

    assert ended.code == 127
    # Printed by the container's init, outside the job's redirect: the engine kept it.
    assert "exec /bin/sh failed" in logs


def test_a_job_without_an_image_is_refused(job_dir: Path) -> None:
    with pytest.raises(ValueError, match="no image"):
        DockerExecutor().launch(spec_for(job_dir, "true"))


def test_an_input_that_is_no_directory_is_a_launch_error(
    executor: DockerExecutor, job_dir: Path
) -> None:
    missing = [Mount.input("gone", job_dir / "nowhere")]

    with pytest.raises(LaunchError, match="/ferry/input/gone"):
        executor.launch(spec_for(job_dir, "true", mounts=missing))

    assert not (job_dir / "job" / STATE_DIR).exists()


def test_a_handle_of_another_backend_is_refused(executor: DockerExecutor) -> None:
    with pytest.raises(ValueError, match="local"):
        executor.wait(Handle("local", "job-1", {"state_dir": "/x", "pgid": 1}))
