"""What this machine offers to jobs: cpus, memory and GPUs, as its agent registers them.

The numbers are what this process may really use, not what the hardware has: a container or a
systemd slice limits cpus (affinity, a cgroup v2 ``cpu.max`` quota) and memory (``memory.max``),
and a host that promised the full machine would be over-committed by the scheduler.

This module imports nothing from Django, so that it can be run on a bare machine to see what an
agent would register there (``python -m fleet.inventory``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pynvml

if TYPE_CHECKING:
    from fleet.models import GpuInfo

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
MEMINFO = Path("/proc/meminfo")
MB = 1024 * 1024


@dataclass(frozen=True)
class Inventory:
    cpus: float
    memory_mb: int
    gpus: list[GpuInfo] = field(default_factory=list)


def inventory_read(fake_gpus: str = "") -> Inventory:
    """This machine's inventory, as far as this process may use it. ``fake_gpus`` (see
    ``gpus_faked``) stands in for NVML's GPUs, for trying the scheduler without any."""
    cgroup = cgroup_dir()
    gpus = gpus_faked(fake_gpus) if fake_gpus else gpus_read()
    return Inventory(cpus=cpus_usable(cgroup), memory_mb=memory_mb_usable(cgroup), gpus=gpus)


def gpus_faked(spec: str) -> list[GpuInfo]:
    """GPUs that are not there, described as ``COUNTxMODEL`` terms joined by commas
    (``"2xA100,1xT4"``): numbered from 0 in that order, their models and UUIDs saying "FAKE".
    A job placed on one gets its index in ``CUDA_VISIBLE_DEVICES`` and no GPU to use."""
    gpus: list[GpuInfo] = []
    for term in spec.split(","):
        count, _, model = term.strip().partition("x")
        if not count.isdigit() or not model.strip():
            raise ValueError(
                f"FERRY_AGENT_FAKE_GPUS: {term.strip()!r} is not COUNTxMODEL;"
                " write e.g. 2xA100,1xT4"
            )
        for _ in range(int(count)):
            index = len(gpus)
            gpus.append(
                {"index": index, "uuid": f"GPU-FAKE-{index}", "model": f"FAKE {model.strip()}",
                 "memory_mb": 0}
            )  # fmt: skip
    return gpus


def cgroup_dir(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> Path:
    """This process's cgroup v2 directory (``0::<path>`` in /proc/self/cgroup), or ``root``."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return root
    for line in lines:
        if line.startswith("0::"):
            candidate = root / line[3:].lstrip("/")
            return candidate if candidate.is_dir() else root
    return root


def _cgroup_chain(cgroup: Path, root: Path) -> list[Path]:
    # A limit may sit on any ancestor (a slice around the container), and the tightest one wins.
    chain = [cgroup]
    while chain[-1] != root and root in chain[-1].parents:
        chain.append(chain[-1].parent)
    return chain


def cpus_usable(cgroup: Path = CGROUP_ROOT, root: Path = CGROUP_ROOT) -> float:
    """CPUs this process may run on, lowered by the tightest cgroup ``cpu.max`` quota."""
    cpus = float(len(os.sched_getaffinity(0)))
    for directory in _cgroup_chain(cgroup, root):
        quota = _cpu_max(directory / "cpu.max")
        if quota is not None:
            cpus = min(cpus, quota)
    # A quota below one CPU still runs a job, slowly; 0 would make the host useless.
    return max(round(cpus, 2), 0.01)


def _cpu_max(path: Path) -> float | None:
    """``"<quota> <period>"`` as CPUs; None for ``max`` (no limit) or no file."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max" or int(period) <= 0:
        return None
    return int(quota) / int(period)


def memory_mb_usable(
    cgroup: Path = CGROUP_ROOT, root: Path = CGROUP_ROOT, meminfo: Path = MEMINFO
) -> int:
    """MemTotal, lowered by the tightest cgroup ``memory.max``."""
    total = _mem_total_bytes(meminfo)
    for directory in _cgroup_chain(cgroup, root):
        limit = _memory_max(directory / "memory.max")
        if limit is not None:
            total = min(total, limit)
    return total // MB


def _mem_total_bytes(meminfo: Path) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024  # the kernel writes kB
    raise RuntimeError(f"{meminfo} has no MemTotal line")


def _memory_max(path: Path) -> int | None:
    try:
        value = path.read_text().strip()
    except OSError:
        return None
    return None if value == "max" else int(value)


def gpus_read() -> list[GpuInfo]:
    """Each GPU NVML sees; none where the NVIDIA library or driver is missing."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        # No libnvidia-ml.so or no driver loaded: a CPU machine, which is no error.
        return []
    try:
        count = pynvml.nvmlDeviceGetCount()
        return [_gpu(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    finally:
        pynvml.nvmlShutdown()


def _gpu(handle: object) -> GpuInfo:
    return {
        # NVML's index, the one `docker --gpus device=N` takes. CUDA numbers GPUs the same way
        # only under CUDA_DEVICE_ORDER=PCI_BUS_ID: the local executor must set it along with
        # CUDA_VISIBLE_DEVICES, or a job may get a GPU it was not allocated.
        "index": int(pynvml.nvmlDeviceGetIndex(handle)),
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        "model": _text(pynvml.nvmlDeviceGetName(handle)),
        "memory_mb": math.floor(pynvml.nvmlDeviceGetMemoryInfo(handle).total / MB),
    }


def _text(value: str | bytes) -> str:
    # Older NVML bindings return bytes, newer ones str.
    return value.decode() if isinstance(value, bytes) else value


if __name__ == "__main__":
    print(json.dumps(asdict(inventory_read()), indent=2))
