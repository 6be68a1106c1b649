from typing import Any

from celery import Task, shared_task

from fleet.delivery import DISPATCH_TASK, Starts, send_starts
from fleet.reaper import ReapSummary, reap
from fleet.scheduler import ScheduleSummary, schedule

# A wake that finds another loop running may carry a job that loop read the queue too early to
# see; it tries again shortly, a few times, and the periodic run catches whatever is left.
BUSY_RETRY_S = 1
BUSY_RETRIES = 5


@shared_task(name="fleet.schedule", bind=True, max_retries=BUSY_RETRIES)
def schedule_task(self: Task[Any, Any]) -> ScheduleSummary:
    summary = schedule()
    if not summary["ran"] and self.request.retries < BUSY_RETRIES:
        raise self.retry(countdown=BUSY_RETRY_S)
    return summary


@shared_task(name=DISPATCH_TASK)
def dispatch_task(starts: Starts) -> int:
    """A big pass's ``jobs.start`` messages (``fleet.delivery``); returns the hosts told."""
    send_starts(starts)
    return len(starts)


@shared_task(name="fleet.reap")
def reap_task() -> ReapSummary:
    return reap()
