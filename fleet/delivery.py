"""Telling hosts what the scheduler gave them: ``jobs.start`` messages, one per host per pass.

A message lists the jobs a pass placed on the host; the agent runs the first and hands itself
the others (``jobs.tasks``), so a pass that fills a fleet sends one message per host, not one
per job. A pass that placed work on a few hosts sends at once: a job submitted to an idle fleet
starts without another hop. A bigger pass hands its sends to ``fleet.dispatch`` messages of up
to ``DISPATCH_HOSTS`` hosts each, which any worker runs: the pass's worker is free for the next
pass, and sends to many hosts are spread over the workers instead of lining up behind the
scheduler.

Everything leaves after the pass's transaction commits. A send that fails is logged and the
others still leave; the reaper loses a job whose host never started it.
"""

import logging
from collections.abc import Mapping, Sequence
from functools import partial

from django.db import transaction

from config.celery_app import app

logger = logging.getLogger(__name__)

START_TASK = "jobs.start"
DISPATCH_TASK = "fleet.dispatch"
# Up to this many hosts, the pass sends itself: a few ms, and no hop for the usual small pass.
SEND_AT_ONCE_HOSTS = 8
# Hosts per fleet.dispatch: about 0.2 s of sends for one worker, so that several share a fill.
DISPATCH_HOSTS = 200

Starts = Mapping[str, Sequence[int]]  # a host's queue -> the jobs to start there, in order


def deliver_on_commit(starts: Starts) -> None:
    """Tell the hosts in ``starts`` what to start, once the current transaction commits."""
    if starts:
        transaction.on_commit(partial(deliver, {q: list(ids) for q, ids in starts.items()}))


def deliver(starts: Starts) -> None:
    if len(starts) <= SEND_AT_ONCE_HOSTS:
        send_starts(starts)
        return
    queues = list(starts)
    with app.producer_or_acquire() as producer:
        for first in range(0, len(queues), DISPATCH_HOSTS):
            chunk = {queue: list(starts[queue]) for queue in queues[first : first + DISPATCH_HOSTS]}
            # Named, not printed: Celery would otherwise walk the whole mapping to show it.
            shown = f"[<jobs of {len(chunk)} hosts>]"
            try:
                app.send_task(DISPATCH_TASK, args=[chunk], argsrepr=shown, producer=producer)
            except Exception:
                logger.exception("could not hand %d hosts' jobs to fleet.dispatch", len(chunk))


def send_starts(starts: Starts) -> None:
    """One ``jobs.start`` per host, through one producer (one broker connection)."""
    with app.producer_or_acquire() as producer:
        for queue, job_ids in starts.items():
            try:
                app.send_task(START_TASK, args=[list(job_ids)], queue=queue, producer=producer)
            except Exception:
                logger.exception("could not tell %s to start jobs %s", queue, list(job_ids))
