"""What an agent finds when it starts again: the jobs its earlier run left behind.

The local executor's jobs outlive their agent (each has a supervisor of its own), so an agent
that died, or was restarted for an upgrade, leaves their directories under
``FERRY_AGENT_DIR/jobs``. On start the agent looks at each:

- a job the server still counts as on this host is watched again, its log taken up from where
  the stored log ends: log, metrics, checkpoints, stop requests and its end are handled as if
  the agent had never gone (nothing it printed meanwhile is lost: the executor kept it);
- a job that started launching but never got as far as its handle fails, saying so;
- anything else (lost while the agent was away, stopped, gone) is stopped if it still runs,
  and its directory removed;
- on Docker, containers of the agent's jobs that nothing watches any more are removed.
"""

import logging
import shutil
import threading
from pathlib import Path

from django.db import close_old_connections

from jobs.agent import JOB_RELATED, AgentPaths, Launched, finish, watch
from jobs.executors import DockerExecutor, Executor, Exit
from jobs.logs import log_size
from jobs.models import Job, JobStatus

logger = logging.getLogger(__name__)

# The statuses in which a job's process may be running under an agent.
LAUNCHED = (JobStatus.STARTING, JobStatus.RUNNING, JobStatus.STOPPING)


def recover_jobs(host: str, executor: Executor, paths: AgentPaths) -> list[threading.Thread]:
    """Deal with every job directory left on this host; returns the threads watching the jobs
    taken up again."""
    watchers = []
    for workdir in sorted(paths.jobs.iterdir()) if paths.jobs.is_dir() else []:
        if workdir.name.isdigit():
            watcher = _recover(host, int(workdir.name), workdir, executor, paths)
            if watcher is not None:
                watchers.append(watcher)
    if isinstance(executor, DockerExecutor):
        _remove_stray_containers(host, executor, paths)
    return watchers


def _remove_stray_containers(host: str, executor: DockerExecutor, paths: AgentPaths) -> None:
    """Containers of this agent's jobs that nothing watches any more (their directory gone
    with a crash, or their job ended while the agent was away) are removed, running or not."""
    launched = Job.objects.filter(
        status__in=LAUNCHED, allocations__host__name=host, allocations__released_at__isnull=True
    ).distinct()
    keep = [str(job_id) for job_id in launched.values_list("id", flat=True)]
    for container in executor.remove_containers_except(keep, under=paths.jobs):
        logger.info("removed the container of job %s, which had ended", container.job_id)


def _recover(
    host: str, job_id: int, workdir: Path, executor: Executor, paths: AgentPaths
) -> threading.Thread | None:
    launched = Launched.load(workdir)
    handle = launched.handle if launched is not None else None
    job = _still_ours(host, job_id)
    if job is not None and launched is not None and launched.handle.backend == executor.name:
        logger.info("taking job %s up again", job)
        watcher = threading.Thread(
            target=_watch_again, args=(job, executor, launched, paths), daemon=True
        )
        watcher.start()
        return watcher
    if job is not None:
        finish(job, Exit(code=None, signal=None), "its agent restarted while starting it", paths)
        return None
    if handle is not None and handle.backend == executor.name:
        executor.cleanup(handle)  # stops it if it still runs
    shutil.rmtree(workdir, ignore_errors=True)
    return None


def _still_ours(host: str, job_id: int) -> Job | None:
    return (
        Job.objects.select_related(*JOB_RELATED)
        .filter(
            id=job_id,
            status__in=LAUNCHED,
            allocations__host__name=host,
            allocations__released_at__isnull=True,
        )
        .first()
    )


def _watch_again(job: Job, executor: Executor, launched: Launched, paths: AgentPaths) -> None:
    try:
        watch(job, executor, launched, paths, stored=log_size(job.id))
    except Exception:
        logger.exception("watching job %s again failed", job)
    finally:
        close_old_connections()
