"""This machine's inventory, and the cgroup limits that lower it."""

import os
from pathlib import Path

import pynvml
import pytest

from fleet.inventory import (
    cgroup_dir,
    cpus_usable,
    gpus_read,
    inventory_read,
    memory_mb_usable,
)

GB = 1024**3


def nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def test_this_machine_has_cpus_and_memory() -> None:
    inventory = inventory_read()

    assert 0 < inventory.cpus <= len(os.sched_getaffinity(0))
    assert inventory.memory_mb > 0


def test_gpus_are_what_nvml_sees() -> None:
    found = gpus_read()

    if not nvml_works():
        assert found == []  # no driver or no library: a CPU machine, not an error
        return
    assert [gpu["index"] for gpu in found] == list(range(len(found)))
    for gpu in found:
        assert gpu["uuid"].startswith("GPU-")
        assert gpu["model"]
        assert gpu["memory_mb"] > 0


def write(path: Path, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in (line.split("=", 1) for line in text.split(";") if line):
        (path / name).write_text(content + "\n")
    return path


@pytest.fixture
def meminfo(tmp_path: Path) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {64 * GB // 1024} kB\nMemFree:        1234 kB\n")
    return path


def test_a_cpu_quota_lowers_the_cpus(tmp_path: Path) -> None:
    root = write(tmp_path / "cg", "cpu.max=50000 100000")

    assert cpus_usable(root, root) == 0.5


def test_no_cpu_quota_leaves_the_affinity(tmp_path: Path) -> None:
    root = write(tmp_path / "cg", "cpu.max=max 100000")

    assert cpus_usable(root, root) == len(os.sched_getaffinity(0))


def test_the_tightest_limit_on_the_way_up_wins(tmp_path: Path, meminfo: Path) -> None:
    root = write(tmp_path / "cg", "")
    write(root / "slice", f"cpu.max=30000 100000;memory.max={2 * GB}")
    leaf = write(root / "slice" / "job", f"cpu.max=max 100000;memory.max={8 * GB}")

    assert cpus_usable(leaf, root) == 0.3
    assert memory_mb_usable(leaf, root, meminfo) == 2048


def test_memory_without_a_limit_is_memtotal(tmp_path: Path, meminfo: Path) -> None:
    root = write(tmp_path / "cg", "memory.max=max")

    assert memory_mb_usable(root, root, meminfo) == 64 * 1024


def test_the_cgroup_of_this_process_is_found(tmp_path: Path) -> None:
    root = write(tmp_path / "cg", "")
    write(root / "system.slice" / "agent.service", "")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/system.slice/agent.service\n")

    assert cgroup_dir(root, proc) == root / "system.slice" / "agent.service"


def test_a_cgroup_v1_machine_falls_back_to_the_root(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/some/where\n1:cpu:/\n")

    assert cgroup_dir(tmp_path, proc) == tmp_path
