"""What a job's agent gathers about it while it runs, besides its log.

- System metrics (``tracking.system``) every ``FERRY_SYSTEM_METRICS_INTERVAL_S`` seconds: CPU and
  memory of the job's processes, and each of its GPUs' utilisation and memory, under ``system/``,
  at step = whole seconds since the job started.
- TensorBoard scalars (``tracking.tensorboard``) that the job writes under its output, read every
  ``FERRY_TENSORBOARD_POLL_S`` seconds while it runs, and what is left once it has ended.

Both are recorded as the job's metrics. A failure here is logged and never stops the job or its
supervision: these are extras on top of what the job reports itself.
"""

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from tracking.parsing import MAX_KEY_CHARS, MetricPoint
from tracking.services import metrics_record
from tracking.system import Nvml, SystemSampler, nvml_for
from tracking.tensorboard import EventDirectoryWatcher, ScalarPoint

logger = logging.getLogger(__name__)

# A final read of the TensorBoard files stops after this many rounds of new points: a job's
# files are bounded, but a reader must not loop on a file that is still being written.
FINAL_READS = 100

_NVML: Nvml | None = None


def agent_nvml() -> Nvml:
    """NVML for this agent's jobs, opened once (the fake GPUs where the agent fakes them)."""
    global _NVML
    if _NVML is None:
        _NVML = nvml_for(settings.FERRY_AGENT_FAKE_GPUS)
    return _NVML


class Collectors:
    """The job's system metrics and TensorBoard scalars, gathered on ``tick`` when due."""

    def __init__(
        self,
        job_id: int,
        *,
        root_pid: int | None,
        gpus: Sequence[int],
        output_dir: Path,
        nvml: Nvml,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self._clock = clock
        self._started = clock()
        self._sampler = SystemSampler(root_pid, list(gpus), nvml) if root_pid else None
        self._watcher = EventDirectoryWatcher(output_dir)
        self._next_sample = self._started + settings.FERRY_SYSTEM_METRICS_INTERVAL_S
        self._next_poll = self._started + settings.FERRY_TENSORBOARD_POLL_S

    def tick(self) -> None:
        now = self._clock()
        if self._sampler is not None and now >= self._next_sample:
            self._next_sample = now + settings.FERRY_SYSTEM_METRICS_INTERVAL_S
            self._record("system metrics", lambda: self._system(now))
        if now >= self._next_poll:
            self._next_poll = now + settings.FERRY_TENSORBOARD_POLL_S
            self._record("TensorBoard scalars", self._scalars)

    def close(self) -> None:
        """Read what the TensorBoard files hold still, once the job has ended."""
        for _ in range(FINAL_READS):
            if not self._record("TensorBoard scalars", self._scalars):
                break

    def _system(self, now: float) -> list[MetricPoint]:
        assert self._sampler is not None
        return self._sampler.sample(step=int(now - self._started))

    def _scalars(self) -> list[MetricPoint]:
        # A tag too long for a metric's key is left out rather than failing the whole read.
        scalars = self._watcher.poll()
        return [_point(scalar) for scalar in scalars if 0 < len(scalar.key) <= MAX_KEY_CHARS]

    def _record(self, what: str, gather: Callable[[], list[MetricPoint]]) -> int:
        try:
            points = gather()
            return metrics_record(self.job_id, points)
        except Exception:
            logger.exception("job %s: its %s could not be recorded", self.job_id, what)
            return 0


def _point(scalar: ScalarPoint) -> MetricPoint:
    try:
        at: datetime | None = datetime.fromtimestamp(scalar.wall_time, tz=UTC)
    except (OverflowError, OSError, ValueError):  # a wall time no clock gives: now, then
        at = None
    return MetricPoint(key=scalar.key, value=scalar.value, step=scalar.step, timestamp=at)
