"""Experiment tracking through MLflow's client: Ferry's MLflow-compatible API against MLflow's
own tracking server, the same client script on both, in one run (issue 7).

The script is bench/tracking_client.py: the unmodified ``mlflow`` client (``MlflowClient``),
pointed at a server by ``MLFLOW_TRACKING_URI`` (and, for Ferry, ``MLFLOW_TRACKING_TOKEN``), as a
user's training script is, in a process of its own each time. Four servers, side by side:

  mlflow_default    ``mlflow server --backend-store-uri sqlite:///...``, as a user starts it:
                    uvicorn with 4 workers, whose kept-alive requests may pay the 44 ms stall
                    (/work/shared/reference/performance-anchors.md)
  mlflow_workers_1  the same with ``--workers 1``: MLflow's best configuration here
  ferry             ``uvicorn config.asgi:application`` as the Procfile deploys it (one worker),
                    on a throw-away PostgreSQL cluster and Redis, migrated; a user and an API
                    token made through accounts.services in this process
  ferry_workers_2   the same server with ``--workers 2``, on the same database

MLflow's two servers share one store, a SQLite file and an artifacts folder in a temporary
directory, as Ferry's two share one database. Idle, a server takes no CPU from the one
measured. The client script runs against each in turn, one repetition of every figure per run,
for --reps rounds; the order of the sides turns from round to round, because the load of this
shared machine drifts (each round's load average is in the details). A figure is the median of
its rounds. What the client does on the way is in every
figure, on both sides alike:

  create_run_ms             ms per create_run, 20 calls one at a time (goal: ratio >= 10)
  log_metric_ms             ms per log_metric, 100 calls one at a time (goal: ratio >= 10)
  log_batch_metrics_per_s   100,000 points of one key to a new run in log_batch calls of
                            1,000 (goal: ratio >= 20)
  get_metric_history_s      the whole call for that 100,000-point series: the client follows
                            the 25,000-point pages and builds a Metric per point (about 1 s,
                            paid on both sides); the details give the same pages as plain GETs
                            with json.loads, without the client (goal: ratio >= 5)
  search_runs_s             search_runs of an experiment of 1,000 runs with 3 params, 3 metrics
                            and 3 tags each, made once per store beforehand through the client
                            on its one-worker server (create_run and one log_batch each, 4 at a
                            time) (goal: ratio >= 5)

A ratio is MLflow's time over Ferry's (for log_batch, Ferry's rate over MLflow's): above 1,
Ferry is faster. They are given against each MLflow configuration, and the goals are held
against the better MLflow figure of the two: beating a stall is not beating MLflow. Ferry as
deployed (one worker) is "ratios_ferry"; "ratios_ferry_workers_2" the same for two workers.

Ferry only: the downsampled read of a 1,000,000-point series, ``series_read(job, key,
buckets=1000)`` in this process on the same database (goal: median <= 50 ms), after recording
the points with ``metrics_record`` in batches of 10,000; and the same read through Ferry's HTTP
API (GET /api/v1/projects/<owner>/<name>/jobs/<n>/metrics/series?key=...&buckets=1000),
keep-alive, if the server has that endpoint.

A call that fails on either side is listed under "errors" (side, round, phase, the client's
message), and its figures are left out; the rest is measured. Progress goes to stderr.

Usage: .venv/bin/python bench/tracking.py [--quick] [--reps 3]
       (about 12 minutes on this 2-CPU machine, half of it MLflow's; --quick: 10,000 metrics,
       100 runs, 10 create_run and 50 log_metric calls per round, a 100,000-point series: a
       smoke run of about 4 minutes)
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.platform_setup import free_port  # noqa: E402

BIN = Path(sys.executable).parent
MLFLOW_PATH = "/compat/mlflow"  # where Ferry serves MLflow's API

# name: (goal for the ratio, True if the figure is a time, False if a rate)
FIGURES = {
    "create_run_ms": (10.0, True),
    "log_metric_ms": (10.0, True),
    "log_batch_metrics_per_s": (20.0, False),
    "get_metric_history_s": (5.0, True),
    "search_runs_s": (5.0, True),
}
GOAL_SERIES_READ_MS = 50.0
SERIES_BUCKETS = 1000
SERIES_BATCH = 10_000


@dataclass(frozen=True)
class Sizes:
    calls: int  # create_run calls per repetition
    metric_calls: int  # log_metric calls per repetition
    metrics: int  # points log_batch sends, and the series get_metric_history reads
    batch: int
    runs: int  # runs search_runs searches
    series_points: int  # points of the series read downsampled
    reps: int


FULL = Sizes(
    calls=20, metric_calls=100, metrics=100_000, batch=1000, runs=1000, series_points=1_000_000,
    reps=3,
)  # fmt: skip
QUICK = Sizes(
    calls=10, metric_calls=50, metrics=10_000, batch=1000, runs=100, series_points=100_000,
    reps=3,
)  # fmt: skip


# --- processes ----------------------------------------------------------------------------------


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """``command`` running, its output in ``log``; afterwards it and its children (uvicorn's
    workers) are stopped: it leads a process group of its own."""
    with log.open("wb") as output:
        started = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield
    finally:
        _stop_group(started)


def _stop_group(started: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, time to finish, then SIGKILL to whatever of it is left."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(started.pid, sent)
        except ProcessLookupError:
            break
        if sent == signal.SIGTERM:
            with suppress(subprocess.TimeoutExpired):
                started.wait(timeout=20)
    started.wait(timeout=10)


def wait_answering(url: str, log: Path, timeout_s: float = 180) -> None:
    """Until ``url`` gives any HTTP answer (401 too: the server is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"nothing answered at {url} in {timeout_s:.0f} s; its log ends:\n{tail}")


# --- Ferry's services and Django ------------------------------------------------------------------


def ferry_env(stack: ExitStack, work: Path) -> dict[str, str]:
    """The environment of a Ferry on a throw-away PostgreSQL cluster and Redis, migrated."""
    from tests.support.redis_server import redis_for_tests
    from tests.support.services import start_postgres_cluster

    # Throw-away services whatever this shell points at: the bench writes millions of rows.
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    redis_url = stack.enter_context(redis_for_tests(work))
    cluster = start_postgres_cluster()
    stack.callback(cluster.stop)
    env = dict(os.environ) | {
        "DATABASE_URL": f"postgres://ferry@/postgres?host={cluster.socket_dir}",
        "REDIS_URL": redis_url,
        "FERRY_VAR_DIR": str(work / "var"),  # its secret key, not the checkout's
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
    manage = [str(BIN / "python"), "manage.py", "migrate", "-v0"]
    subprocess.run(manage, cwd=REPO, env=env, check=True)
    return env


@dataclass(frozen=True)
class Account:
    username: str
    token: str


def account_create(env: dict[str, str]) -> Account:
    """Django in this process, on Ferry's database; a user and an API token of theirs."""
    os.environ.update(env)
    import django

    django.setup()
    from accounts.services import api_token_create, user_create

    user = user_create(username="bench", email="bench@example.com", password=None)
    return Account(user.username, api_token_create(user=user, name="mlflow-bench").secret)


def plain_env() -> dict[str, str]:
    """This process's environment without Ferry's settings and the client's: for MLflow's
    server and the client script."""
    ours = ("MLFLOW_", "DJANGO_", "FERRY_", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL")
    return {k: v for k, v in os.environ.items() if not k.startswith(ours)}


# --- the servers --------------------------------------------------------------------------------


@dataclass
class Side:
    """One server the client script runs against, and what it measured there, round by round."""

    label: str
    command: list[str]
    env: dict[str, str]
    base_url: str
    ready_path: str
    tracking_path: str = ""
    token: str | None = None
    search_experiment: str | None = None
    search_setup: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tracking_uri(self) -> str:
        return f"{self.base_url}{self.tracking_path}"


def mlflow_side(work: Path, label: str, workers: int | None) -> Side:
    """``mlflow server`` on SQLite, as a user starts it, with ``--workers`` if given; every
    such server here shares one store."""
    port = free_port()
    command = [
        str(BIN / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
        "--artifacts-destination", str(work / "mlflow-artifacts"),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    if workers is not None:
        command += ["--workers", str(workers)]
    return Side(label, command, plain_env(), f"http://127.0.0.1:{port}", "/health")


def ferry_side(label: str, env: dict[str, str], token: str, workers: int | None) -> Side:
    """Ferry as the Procfile's ``web`` runs it, with ``--workers`` if given."""
    port = free_port()
    command = [
        str(BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--no-server-header", "--log-level", "warning",
    ]  # fmt: skip
    if workers is not None:
        command += ["--workers", str(workers)]
    base = f"http://127.0.0.1:{port}"
    return Side(label, command, env, base, "/healthz", MLFLOW_PATH, token)


def servers_start(stack: ExitStack, work: Path, *waves: list[Side]) -> None:
    """Wave by wave, the servers of a wave at once, each waited for. The first server on a
    store goes in a wave before the others: ``mlflow server`` makes its SQLite schema as it
    starts, and two doing that at once collide."""
    for wave in waves:
        for side in wave:
            stack.enter_context(process(side.command, side.env, work / f"{side.label}.log"))
        for side in wave:
            wait_answering(f"{side.base_url}{side.ready_path}", work / f"{side.label}.log")


# --- the client script --------------------------------------------------------------------------


def client_run(side: Side, *arguments: str) -> dict[str, Any]:
    """bench/tracking_client.py against ``side``: its figures, or why it gave none."""
    env = plain_env() | {
        "MLFLOW_TRACKING_URI": side.tracking_uri,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a failed call is a finding, not a retry
    }
    if side.token:
        env["MLFLOW_TRACKING_TOKEN"] = side.token
    command = [str(BIN / "python"), str(REPO / "bench" / "tracking_client.py"), *arguments]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"errors": [{"phase": "client", "error": done.stderr[-3000:]}]}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def search_setup(side: Side, runs: int, sharing: Side) -> None:
    """The experiment search_runs searches on ``side`` and on ``sharing``, whose store is the
    same, made through the client on ``side``."""
    progress(f"{side.label}: {runs} runs to search, made through the client")
    made = client_run(side, "--setup-search", str(runs))
    side.search_setup = made.get("search_setup") or {"errors": made["errors"]}
    side.search_experiment = (made.get("search_setup") or {}).get("experiment_id")
    sharing.search_setup = {"made_through": side.label}
    sharing.search_experiment = side.search_experiment


def client_round(side: Side, sizes: Sizes) -> None:
    """One repetition of every figure on ``side``, with how long it took and how busy the
    machine was: other processes here share its two CPUs with the figures."""
    arguments = [
        "--calls", str(sizes.calls), "--metric-calls", str(sizes.metric_calls),
        "--metrics", str(sizes.metrics), "--batch", str(sizes.batch), "--runs", str(sizes.runs),
        "--reps", "1",
    ]  # fmt: skip
    if side.search_experiment:
        arguments += ["--search-experiment", side.search_experiment]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    figures = client_run(side, *arguments)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    figures["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    side.rounds.append(figures)
    progress(f"{side.label}: {json.dumps(headline(figures))}")


def headline(figures: dict[str, Any]) -> dict[str, float | None]:
    """The five figures of one client run, None where its phase failed."""

    def pick(phase: str, name: str) -> float | None:
        found = figures.get(phase)
        return found[name] if found else None

    return {
        "create_run_ms": pick("create_run", "ms_per_call"),
        "log_metric_ms": pick("log_metric", "ms_per_call"),
        "log_batch_metrics_per_s": pick("log_batch", "metrics_per_s"),
        "get_metric_history_s": pick("get_metric_history", "s"),
        "search_runs_s": pick("search_runs", "s"),
    }


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return round(statistics.median(known), 3) if known else None


def side_figures(side: Side) -> dict[str, float | None]:
    """Each figure's median over the rounds."""
    rounds = [headline(figures) for figures in side.rounds]
    return {name: _median([r[name] for r in rounds]) for name in FIGURES}


def side_details(side: Side) -> dict[str, Any]:
    """Each round's figures, and what explains them: per-call spread, history without the
    client, the setup of the search, how busy the machine was."""

    def each(phase: str, name: str) -> list[Any]:
        return [(figures.get(phase) or {}).get(name) for figures in side.rounds]

    rounds = [headline(figures) for figures in side.rounds]
    return {
        "tracking_uri": side.tracking_uri,
        "per_round": {name: [r[name] for r in rounds] for name in FIGURES},
        "create_run_p50_p90_call_ms": [each("create_run", "p50_call_ms"),
                                       each("create_run", "p90_call_ms")],
        "log_metric_p50_p90_call_ms": [each("log_metric", "p50_call_ms"),
                                       each("log_metric", "p90_call_ms")],
        "get_metric_history_http_only_s": each("get_metric_history", "http_only_s"),
        "get_metric_history_http_mb": _median(each("get_metric_history", "http_mb")),
        "search_setup": side.search_setup,
        "round_wall_s": [figures.get("wall_s") for figures in side.rounds],
        "load_avg_1m_before_after": [figures.get("load_avg_1m") for figures in side.rounds],
    }  # fmt: skip


# --- the downsampled series ---------------------------------------------------------------------


def series_figures(account: Account, url: str, points: int, reps: int) -> dict[str, Any]:
    """A run of ``points`` points recorded in this process; its downsampled read timed here and
    through the HTTP API."""
    from accounts.models import User
    from jobs.services import external_run_create
    from projects.services import project_create
    from tracking.parsing import MetricPoint
    from tracking.selectors import series_read
    from tracking.services import metrics_record

    user = User.objects.get(username=account.username)
    project = project_create(actor=user, name="bench-series")
    job = external_run_create(actor=user, project=project, name="series")
    at = datetime.now(UTC)
    started = time.perf_counter()
    for first in range(0, points, SERIES_BATCH):
        steps = range(first, min(first + SERIES_BATCH, points))
        metrics_record(job.id, [MetricPoint("loss", 1.0 / (s + 1), s, at) for s in steps])
    record_s = time.perf_counter() - started

    def read() -> float:
        started = time.perf_counter()
        found = series_read(job, "loss", buckets=SERIES_BUCKETS)
        elapsed = time.perf_counter() - started
        if found is None or found.points != points or not found.buckets:
            raise RuntimeError(f"series_read gave {found!r}, not the {points} points recorded")
        if len(found.buckets) > SERIES_BUCKETS:
            raise RuntimeError(f"series_read gave {len(found.buckets)} buckets")
        return elapsed

    first_ms = read() * 1000
    reads = [read() * 1000 for _ in range(max(reps, 7))]
    path = f"/api/v1/projects/{account.username}/{project.name}/jobs/{job.number}/metrics/series"
    return {
        "points": points,
        "buckets": SERIES_BUCKETS,
        "record_points_per_s": round(points / record_s),
        "series_read_ms": round(statistics.median(reads), 2),
        "reps_series_read_ms": [round(r, 2) for r in reads],
        "first_read_ms": round(first_ms, 2),
        "goal_series_read_ms": GOAL_SERIES_READ_MS,
        "goal_met": statistics.median(reads) <= GOAL_SERIES_READ_MS,
        "http": series_over_http(f"{url}{path}", account.token, max(reps, 7)),
    }


def series_over_http(url: str, token: str, reps: int) -> dict[str, Any]:
    import requests

    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        query = {"key": "loss", "buckets": str(SERIES_BUCKETS)}
        first = session.get(url, params=query, timeout=60)
        if first.status_code != 200:
            return {"request": f"GET {first.url}", "status": first.status_code,
                    "error": first.text[:1000]}  # fmt: skip
        buckets = len(first.json()["buckets"])
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            session.get(url, params=query, timeout=60).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return {
        "request": f"GET {first.url}",
        "ms": round(statistics.median(times), 2),
        "reps_ms": [round(t, 2) for t in times],
        "buckets_returned": buckets,
        "bytes": len(first.content),
    }


# --- the run ------------------------------------------------------------------------------------


def measure(work: Path, sizes: Sizes) -> dict[str, Any]:
    with ExitStack() as stack:
        progress("PostgreSQL, Redis and Ferry's schema")
        env = ferry_env(stack, work)
        account = account_create(env)
        sides = [
            mlflow_side(work, "mlflow_default", None),
            mlflow_side(work, "mlflow_workers_1", 1),
            ferry_side("ferry", env, account.token, None),
            ferry_side("ferry_workers_2", env, account.token, 2),
        ]
        mlflow_default, mlflow_workers_1, ferry, ferry_workers_2 = sides
        progress("the four servers")
        servers_start(stack, work, [mlflow_workers_1, ferry], [mlflow_default, ferry_workers_2])
        search_setup(mlflow_workers_1, sizes.runs, sharing=mlflow_default)
        search_setup(ferry, sizes.runs, sharing=ferry_workers_2)
        # Round by round, each side in turn, the order turning: the load of this machine
        # drifts, and a side measured all at once would catch one moment of it.
        for number in range(sizes.reps):
            for side in sides[number % len(sides) :] + sides[: number % len(sides)]:
                progress(f"round {number + 1}/{sizes.reps}: {side.label}")
                client_round(side, sizes)
        progress(f"ferry: {sizes.series_points:,} points recorded, then read downsampled")
        series = series_figures(account, ferry.base_url, sizes.series_points, sizes.reps)
        from django.db import connection

        connection.close()  # before the cluster stops
    return report(sizes, sides, series)


STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def ratio(mlflow: float | None, ferry: float | None, is_time: bool) -> float | None:
    if not mlflow or not ferry:
        return None
    return round(mlflow / ferry if is_time else ferry / mlflow, 2)


def ratios(figures: dict[str, dict[str, float | None]], ferry: str) -> dict[str, Any]:
    """Ferry's side ``ferry`` against each MLflow configuration, and the goals held against the
    better MLflow figure of the two."""
    against: dict[str, dict[str, float | None]] = {}
    for mlflow in ("mlflow_default", "mlflow_workers_1"):
        against[f"vs_{mlflow}"] = {
            name: ratio(figures[mlflow][name], figures[ferry][name], is_time)
            for name, (_, is_time) in FIGURES.items()
        }
    best: dict[str, float | None] = {}
    met: dict[str, bool | None] = {}
    for name, (goal, _) in FIGURES.items():
        found = [r[name] for r in against.values()]
        known = [r for r in found if r is not None]
        lowest = min(known) if len(known) == len(found) else None
        best[name] = lowest
        met[name] = None if lowest is None else lowest >= goal
    return against | {"vs_best_mlflow": best, "goals_met": met}


WHAT = {
    "create_run_ms": "client.create_run(experiment): request, the server's write, the Run object "
    "built from the answer",
    "log_metric_ms": "client.log_metric(run, key, value, step=...), one at a time, each committed",
    "log_batch_metrics_per_s": "client.log_batch of 1,000 prepared Metric objects per call: the "
    "client's validation and JSON, the request, the server's write",
    "get_metric_history_s": "client.get_metric_history, whole: 25,000-point pages and a Metric "
    "object per point (the client's part, ~1 s per 100,000 points, is paid on both sides; "
    "details.<side>.get_metric_history_http_only_s is the same pages as plain GETs)",
    "search_runs_s": "client.search_runs([experiment], max_results=1000): one page of 1,000 runs "
    "with their params, metrics and tags, and the client's Run objects",
    "series_read_ms": "tracking.selectors.series_read(job, 'loss', buckets=1000) in-process, on "
    "the same PostgreSQL; http: the same read as a keep-alive GET of Ferry's API, JSON included",
}


def report(sizes: Sizes, sides: list[Side], series: dict[str, Any]) -> dict[str, Any]:
    figures = {side.label: side_figures(side) for side in sides}
    errors = [
        error | {"side": side.label, "round": number}
        for side in sides
        for number, figures_of_round in enumerate(side.rounds, 1)
        for error in figures_of_round.get("errors", [])
    ] + [
        error | {"side": side.label, "round": "setup"}
        for side in sides
        for error in side.search_setup.get("errors", [])
    ]
    return {
        "sizes": asdict(sizes),
        "cpus": os.cpu_count(),
        "figures": figures,
        "ratios_ferry": ratios(figures, "ferry"),
        "ratios_ferry_workers_2": ratios(figures, "ferry_workers_2"),
        "goals_ratio": {name: goal for name, (goal, _) in FIGURES.items()},
        "ferry_series_read": series,
        "errors": errors,
        "what_each_figure_includes": WHAT,
        "details": {side.label: side_details(side) for side in sides},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--reps", type=int, help="rounds: repetitions of each figure (default 3)")
    options = parser.parse_args()
    # A plain kill stops the servers too: the ExitStacks unwind on SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = QUICK if options.quick else FULL
    if options.reps:
        sizes = Sizes(**asdict(sizes) | {"reps": options.reps})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-tracking-") as work:
        result = measure(Path(work), sizes)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
