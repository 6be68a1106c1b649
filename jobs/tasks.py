from typing import Any

from celery import Task, shared_task

from config.celery_app import app
from jobs.agent import run_job

RUN_TASK = "jobs.run"


@shared_task(name=RUN_TASK, acks_late=True)
def run_job_task(job_id: int) -> str:
    """One job, on the queue of the host the scheduler chose (``host.<name>``)."""
    return run_job(job_id)


@shared_task(name="jobs.start", bind=True, acks_late=True)
def start_jobs_task(self: Task[Any, Any], job_ids: list[int]) -> str:
    """What the scheduler tells a host after a pass (``fleet.delivery``): the jobs it placed
    there. The first runs here; the others go back on this host's queue as a ``jobs.run`` each,
    so that the agent's free slots take them side by side."""
    first, *others = job_ids
    # The queue it came from: this host's (the routing key of a queue is its name).
    queue = (self.request.delivery_info or {}).get("routing_key")
    assert queue, "jobs.start comes from a host's queue"
    for job_id in others:
        app.send_task(RUN_TASK, args=[job_id], queue=queue)
    return run_job(first)
