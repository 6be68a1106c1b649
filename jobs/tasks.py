from celery import shared_task

from jobs.agent import run_job


@shared_task(name="jobs.run", acks_late=True)
def run_job_task(job_id: int) -> str:
    """Sent to the queue of the host the scheduler chose (``host.<name>``)."""
    return run_job(job_id)
