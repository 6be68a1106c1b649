"""A running job's system metrics, sampled by its agent: CPU, memory and the job's GPUs.

The agent makes one ``SystemSampler`` per job as it starts it and calls ``sample`` every few
seconds; the points it returns are recorded like the job's own metrics, under ``system/``::

    system/cpu_percent                  the job's process tree; 100 = one core busy
    system/memory_mb                    resident memory of the process tree, summed
    system/gpu<i>/utilization_percent   for each GPU i allocated to the job (NVML's numbering)
    system/gpu<i>/memory_used_mb
    system/gpu<i>/memory_percent

A GPU is allocated to one job at a time, so a GPU's own utilization and memory are the job's.

Sampling never raises for what a running job does: processes come and go, a job ends between
two samples, NVML may be missing (a CPU machine) or fail for one GPU. What cannot be read is
left out of that sample, so a chart has a gap rather than a made-up zero.

Like ``fleet.inventory``, this module imports nothing from Django: an agent's side only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import psutil
import pynvml

from fleet.inventory import MB, gpus_faked
from tracking.parsing import MetricPoint

# Below this, CPU time (counted in 10 ms clock ticks) over the elapsed time is mostly rounding:
# such a sample has no cpu point, and the next one measures from the older baseline.
MIN_CPU_INTERVAL_S = 0.1
# What the fake GPUs have: plausible for a data-centre card, the same on every fake GPU.
FAKE_MEMORY_TOTAL_BYTES = 16 * 1024 * MB


class NvmlError(Exception):
    """A GPU could not be read: NVML missing, a bad index, a driver error."""


class GpuMemory(NamedTuple):
    used_bytes: int
    total_bytes: int


class Nvml(Protocol):
    """The few NVML calls a sampler makes, by NVML's GPU index. Each raises ``NvmlError`` when
    that GPU cannot be read. One object may serve every job's sampler; the agent closes it when
    it stops."""

    def utilization_percent(self, index: int) -> float: ...

    def memory(self, index: int) -> GpuMemory: ...

    def close(self) -> None: ...


def nvml_for(fake_gpus: str) -> Nvml:
    """The NVML an agent samples GPUs with: the fake one when it registered fake GPUs
    (``FERRY_AGENT_FAKE_GPUS``, see ``fleet.inventory.gpus_faked``), the real one otherwise."""
    return FakeNvml(len(gpus_faked(fake_gpus))) if fake_gpus else PyNvml()


class PyNvml:
    """NVML through pynvml, initialised on first use: making one costs nothing on a machine
    without GPUs, where every call raises ``NvmlError`` (and NVML is not tried again)."""

    def __init__(self) -> None:
        # The agent samples its jobs from several threads, and nvmlInit counts its callers:
        # two racing first calls would initialise twice and one close would not shut it down.
        self._lock = threading.Lock()
        self._state: bool | None = None  # None: not tried yet; False: NVML is not there

    def utilization_percent(self, index: int) -> float:
        rates = self._call(pynvml.nvmlDeviceGetUtilizationRates, self._handle(index))
        return float(rates.gpu)

    def memory(self, index: int) -> GpuMemory:
        info = self._call(pynvml.nvmlDeviceGetMemoryInfo, self._handle(index))
        return GpuMemory(used_bytes=int(info.used), total_bytes=int(info.total))

    def close(self) -> None:
        with self._lock:
            if self._state:
                pynvml.nvmlShutdown()
            self._state = None

    def _handle(self, index: int) -> object:
        self._initialise()
        return self._call(pynvml.nvmlDeviceGetHandleByIndex, index)

    def _initialise(self) -> None:
        with self._lock:
            if self._state is None:
                self._state = _nvml_init()
        if not self._state:
            raise NvmlError("NVML is not available on this machine")

    @staticmethod
    def _call(function: Callable[..., Any], *args: object) -> Any:
        # pynvml raises a subclass of NVMLError per return code; the sampler needs only one type.
        try:
            return function(*args)
        except pynvml.NVMLError as exc:
            raise NvmlError(str(exc)) from exc


def _nvml_init() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        # No libnvidia-ml.so or no driver loaded: a CPU machine, which is no error.
        return False
    return True


class FakeNvml:
    """A stand-in for NVML because no GPU is present: the fake GPUs an agent registers with
    ``FERRY_AGENT_FAKE_GPUS``, so that a job placed on one shows GPU charts when the platform
    is tried without a GPU. Values are made up, fixed per GPU, and plausible (a busy GPU, part of
    its memory used); an index the spec has no GPU for raises, as NVML does."""

    def __init__(self, gpu_count: int) -> None:
        self._gpu_count = gpu_count

    def utilization_percent(self, index: int) -> float:
        # Different per GPU, so that a chart of two GPUs tells them apart.
        return float(40 + (self._checked(index) * 17) % 55)

    def memory(self, index: int) -> GpuMemory:
        share = 0.25 + (self._checked(index) * 0.13) % 0.6
        return GpuMemory(int(FAKE_MEMORY_TOTAL_BYTES * share), FAKE_MEMORY_TOTAL_BYTES)

    def close(self) -> None:
        pass

    def _checked(self, index: int) -> int:
        if not 0 <= index < self._gpu_count:
            raise NvmlError(f"no fake GPU {index}: the spec has {self._gpu_count}")
        return index


@dataclass(frozen=True)
class _Usage:
    cpu_s: float  # CPU time the tree has used since its processes started
    rss_bytes: int


@dataclass(frozen=True)
class _CpuReading:
    at: float  # time.monotonic()
    cpu_s: float


class SystemSampler:
    """Samples one job: its process tree from ``root_pid`` (the local executor's supervisor, or
    a container's init process as the host sees it) and its GPUs, by NVML's indices.

    The CPU percentage covers the time since the previous sample; the first sample's covers
    the time since the sampler was made, so the agent should make it as the job starts. No
    sample blocks to measure CPU, and none reports a zero it did not measure.
    """

    def __init__(self, root_pid: int, gpu_indices: list[int], nvml: Nvml) -> None:
        self._root = _process(root_pid)
        self._gpu_indices = list(gpu_indices)
        self._nvml = nvml
        usage = _tree_usage(self._root) if self._root else None
        self._previous = _CpuReading(time.monotonic(), usage.cpu_s) if usage else None

    def sample(self, step: int) -> list[MetricPoint]:
        """This moment's points, at ``step``; those that cannot be read now are left out."""
        return [*self._tree_points(step), *self._gpu_points(step)]

    def _tree_points(self, step: int) -> list[MetricPoint]:
        # A root that is gone has no tree: the job ended, and so do its points.
        usage = _tree_usage(self._root) if self._root else None
        if usage is None:
            return []
        points = [_point("system/memory_mb", usage.rss_bytes / MB, step)]
        cpu_percent = self._cpu_percent(_CpuReading(time.monotonic(), usage.cpu_s))
        if cpu_percent is not None:
            points.insert(0, _point("system/cpu_percent", cpu_percent, step))
        return points

    def _cpu_percent(self, now: _CpuReading) -> float | None:
        previous = self._previous
        if previous is not None and now.at - previous.at < MIN_CPU_INTERVAL_S:
            return None  # too short to measure; the older baseline stays
        self._previous = now
        if previous is None:
            return None  # no baseline (the tree could not be read when made): from now on
        # A process that leaves the tree (a daemon that double-forks) takes its CPU time with
        # it and the total drops: that sample under-reports, but is never negative.
        used = max(now.cpu_s - previous.cpu_s, 0.0)
        return 100 * used / (now.at - previous.at)

    def _gpu_points(self, step: int) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for index in self._gpu_indices:
            try:
                points += _gpu_points(self._nvml, index, step)
            except NvmlError:
                continue  # this GPU is left out of this sample only; the next one tries again
        return points


def _gpu_points(nvml: Nvml, index: int, step: int) -> list[MetricPoint]:
    # Both read before any point is made: a GPU has all its points in a sample or none.
    utilization = nvml.utilization_percent(index)
    memory = nvml.memory(index)
    if memory.total_bytes <= 0:
        raise NvmlError(f"GPU {index} reports no memory")  # a percentage of it would be made up
    memory_percent = 100 * memory.used_bytes / memory.total_bytes
    prefix = f"system/gpu{index}"
    return [
        _point(f"{prefix}/utilization_percent", utilization, step),
        _point(f"{prefix}/memory_used_mb", memory.used_bytes / MB, step),
        _point(f"{prefix}/memory_percent", memory_percent, step),
    ]


def _point(key: str, value: float, step: int) -> MetricPoint:
    # One decimal is finer than anyone reads these charts, and keeps the stored numbers short.
    return MetricPoint(key=key, value=round(value, 1), step=step)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _tree_usage(root: psutil.Process) -> _Usage | None:
    """What ``root`` and its descendants use now; None when ``root`` is gone."""
    processes = _tree(root)
    usages = [_usage(process) for process in processes]
    if not usages or usages[0] is None:
        return None  # the root ended while it was read
    read = [usage for usage in usages if usage is not None]
    return _Usage(sum(u.cpu_s for u in read), sum(u.rss_bytes for u in read))


def _tree(root: psutil.Process) -> list[psutil.Process]:
    """``root`` first, then its descendants; empty when ``root`` is gone."""
    try:
        # is_running() compares start times too: a pid reused by another process is not ours.
        # A zombie root has ended and only waits for its parent to read its exit status.
        if not root.is_running() or root.status() == psutil.STATUS_ZOMBIE:
            return []
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _usage(process: psutil.Process) -> _Usage | None:
    try:
        times = process.cpu_times()
        rss = process.memory_info().rss
    except psutil.Error:
        # It exited between the listing and now (or is not ours to read): it is not counted.
        # Exited and waited for, its CPU time is in its parent's children_* from now on.
        return None
    # children_*: the CPU time of descendants that ended and were waited for. Without it, a
    # child that runs and exits between two samples would never be seen. (RSS, by contrast,
    # counts pages shared between processes once per process: the sum can over-state.)
    cpu_s = times.user + times.system + times.children_user + times.children_system
    return _Usage(cpu_s=cpu_s, rss_bytes=rss)
