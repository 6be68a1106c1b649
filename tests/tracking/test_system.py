"""A job's system metrics: its real process tree's CPU and memory, and its GPUs through NVML."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from tracking.parsing import MetricPoint
from tracking.system import (
    FakeNvml,
    GpuMemory,
    NvmlError,
    PyNvml,
    SystemSampler,
    nvml_for,
)

MB = 1024 * 1024
HELD_MB = 100
BURN_S = 0.3

# Holds HELD_MB of written (so resident) memory until its stdin closes.
HOLD = f"import sys; held = b'x' * ({HELD_MB} * {MB}); print('held', flush=True); sys.stdin.read()"
# Burns BURN_S of CPU time, then exits.
BURN = f"import time\nwhile time.process_time() < {BURN_S}:\n    pass"
# The job: a parent that starts HOLD, then does what it is told on stdin, one line at a time.
PARENT = f"""
import subprocess, sys
hold = subprocess.Popen(
    [sys.executable, "-c", {HOLD!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE
)
hold.stdout.readline()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "burn":
        break
    subprocess.run([sys.executable, "-c", {BURN!r}], check=True)
    print("burned", flush=True)
hold.stdin.close()
hold.wait()
"""


@dataclass
class Tree:
    process: "subprocess.Popen[str]"

    @property
    def pid(self) -> int:
        return self.process.pid

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, line: str) -> None:
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == line


@pytest.fixture
def tree() -> Iterator[Tree]:
    """A running job's process tree: a parent and its child holding HELD_MB."""
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    job = Tree(process)
    try:
        job.expect("ready")
        yield job
    finally:
        # A closed stdin ends the parent, which ends its child.
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def values(points: list[MetricPoint]) -> dict[str, float]:
    return {point.key: point.value for point in points}


def gone_pid() -> int:
    """The pid of a process that has ended and been waited for: nothing has it now."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_memory_of_the_whole_tree_is_summed(tree: Tree) -> None:
    sampler = SystemSampler(tree.pid, [], FakeNvml(0))

    memory_mb = values(sampler.sample(0))["system/memory_mb"]

    # The parent alone is a few MB of Python; the child it started holds HELD_MB more.
    assert HELD_MB <= memory_mb < HELD_MB + 300


def test_cpu_of_a_child_that_ran_and_exited_between_samples_counts(tree: Tree) -> None:
    started = time.monotonic()
    sampler = SystemSampler(tree.pid, [], FakeNvml(0))
    tree.tell("burn")  # a new child burns BURN_S of CPU and exits; the parent waits for it
    tree.expect("burned")

    busy = values(sampler.sample(1))["system/cpu_percent"]
    elapsed = time.monotonic() - started
    time.sleep(0.2)
    idle = values(sampler.sample(2))["system/cpu_percent"]

    # The sampler's interval lies within `elapsed`, so this is at most the CPU time it saw.
    # The parent itself only waited: without its ended children's time, this would be ~0.
    assert busy / 100 * elapsed >= 0.8 * BURN_S
    assert idle < 25  # the tree sleeps now; the earlier burn is not counted twice


def test_a_sample_right_after_the_last_has_no_cpu_point() -> None:
    sampler = SystemSampler(os.getpid(), [], FakeNvml(0))

    points = sampler.sample(0)

    # Microseconds of CPU ticks would give noise, not a percentage; memory needs no interval.
    assert set(values(points)) == {"system/memory_mb"}


def test_a_tree_that_ends_between_samples_has_no_more_points(tree: Tree) -> None:
    sampler = SystemSampler(tree.pid, [], FakeNvml(0))
    assert "system/memory_mb" in values(sampler.sample(0))

    tree.tell("end")
    # Ended but not yet waited for: the root is a zombie, as a job is until its agent reaps it.
    os.waitid(os.P_PID, tree.pid, os.WEXITED | os.WNOWAIT)
    as_zombie = sampler.sample(1)
    tree.process.wait()
    after = sampler.sample(2)

    assert as_zombie == []
    assert after == []


def test_a_pid_that_does_not_exist_gives_no_points() -> None:
    sampler = SystemSampler(gone_pid(), [], FakeNvml(0))

    assert sampler.sample(0) == []


def test_a_process_that_exits_between_listing_and_reading_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    listed = psutil.Process(child.pid)
    child.communicate()  # it ends and is waited for after it was listed
    monkeypatch.setattr(psutil.Process, "children", lambda self, recursive: [listed])
    sampler = SystemSampler(os.getpid(), [], FakeNvml(0))

    points = values(sampler.sample(0))

    assert points["system/memory_mb"] > 0  # this process's own, and no exception


def test_fake_nvml_reports_the_jobs_gpus_only() -> None:
    nvml = nvml_for("2xA100,2xT4")
    sampler = SystemSampler(gone_pid(), [1, 3], nvml)

    points = sampler.sample(7)

    assert isinstance(nvml, FakeNvml)
    assert [point.key for point in points] == [
        f"system/gpu{i}/{name}"
        for i in (1, 3)
        for name in ("utilization_percent", "memory_used_mb", "memory_percent")
    ]
    assert {point.step for point in points} == {7}
    found = values(points)
    for i in (1, 3):
        assert 0 < found[f"system/gpu{i}/utilization_percent"] <= 100
        assert 0 < found[f"system/gpu{i}/memory_percent"] <= 100
        assert found[f"system/gpu{i}/memory_used_mb"] > 1000
    assert sampler.sample(8) == [MetricPoint(key=p.key, value=p.value, step=8) for p in points]


def test_fake_nvml_has_no_gpu_beyond_its_spec() -> None:
    sampler = SystemSampler(gone_pid(), [0, 2], nvml_for("2xA100"))

    assert {point.key.split("/")[1] for point in sampler.sample(0)} == {"gpu0"}


class FlakyNvml:
    """A test double of the Nvml protocol, since this machine has no GPU: GPU 1 fails once."""

    def __init__(self) -> None:
        self.failures = {1}

    def utilization_percent(self, index: int) -> float:
        if index in self.failures:
            self.failures.discard(index)
            raise NvmlError("GPU is lost")
        return 50.0

    def memory(self, index: int) -> GpuMemory:
        return GpuMemory(used_bytes=4 * 1024 * MB, total_bytes=16 * 1024 * MB)

    def close(self) -> None:
        pass


def test_an_nvml_error_skips_that_gpu_for_that_sample_only() -> None:
    sampler = SystemSampler(gone_pid(), [0, 1], FlakyNvml())

    first = values(sampler.sample(0))
    second = values(sampler.sample(1))

    assert first == {
        "system/gpu0/utilization_percent": 50.0,
        "system/gpu0/memory_used_mb": 4096.0,
        "system/gpu0/memory_percent": 25.0,
    }
    assert {key.split("/")[1] for key in second} == {"gpu0", "gpu1"}


def nvml_works() -> bool:
    nvml = PyNvml()
    try:
        nvml.memory(0)
    except NvmlError:
        return False
    finally:
        nvml.close()
    return True


def test_real_nvml_gives_gpu_points_only_where_nvml_is() -> None:
    nvml = nvml_for("")
    sampler = SystemSampler(gone_pid(), [0], nvml)

    points = values(sampler.sample(0))
    nvml.close()

    assert isinstance(nvml, PyNvml)
    if not nvml_works():
        assert points == {}  # no driver or no library: a CPU machine, not an error
        return
    assert 0 <= points["system/gpu0/utilization_percent"] <= 100
    assert points["system/gpu0/memory_used_mb"] > 0
