"""The client side of bench/tracking.py: one script, the unmodified ``mlflow`` client, run
against whatever server ``MLFLOW_TRACKING_URI`` names (with ``MLFLOW_TRACKING_TOKEN`` where the
server wants one), as a user's training script would be. It prints one JSON object of figures.

Every figure is through ``MlflowClient`` as a user calls it, on one kept-alive connection (the
client's own requests session), after a warm-up of each call on a run of its own:

  create_run   ms per call: --reps repetitions of --calls create_run, one after the other
  log_metric   ms per call: --reps repetitions of --metric-calls log_metric on one run
  log_batch    metrics/s: --reps repetitions of --metrics points of one key, each to a new
               run, in log_batch calls of --batch (the Metric objects are made beforehand)
  history      seconds: get_metric_history of the first log_batch run's series, whole (the
               client follows its pages); and apart, the same pages as plain HTTP GETs with
               json.loads, without the client's objects, to show what the server costs
  search       seconds: search_runs over --search-experiment, which --setup-search made
               beforehand: --runs runs, each with 3 params, 3 metrics and 3 tags, made through
               the client (create_run, then one log_batch), --setup-threads at a time; one page
               of up to 1,000 runs per call

A call that fails is reported under "errors" (the request as the client says it, and the
answer), and the figures that need it are left out; the others are still measured.

Usage: MLFLOW_TRACKING_URI=http://... .venv/bin/python bench/tracking_client.py
       [--calls 50] [--metric-calls 300] [--metrics 100000] [--batch 1000] [--reps 3]
       [--search-experiment ID --runs 1000]
       MLFLOW_TRACKING_URI=http://... .venv/bin/python bench/tracking_client.py
       --setup-search 1000 [--setup-threads 4]     (prints the experiment's id)
"""

import argparse
import json
import os
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

Figures = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


def _rounded(value: float, digits: int = 3) -> float:
    return round(value, digits)


def per_call(client: MlflowClient, call: Callable[[int], object], calls: int, reps: int) -> Figures:
    """ms per call of ``call(i)``: the median over ``reps`` repetitions of ``calls`` calls."""
    means: list[float] = []
    each: list[float] = []
    for _ in range(reps):
        started = time.perf_counter()
        for index in range(calls):
            before = time.perf_counter()
            call(index)
            each.append(time.perf_counter() - before)
        means.append((time.perf_counter() - started) / calls)
    ordered = sorted(each)
    return {
        "ms_per_call": _rounded(statistics.median(means) * 1000),
        "reps_ms_per_call": [_rounded(m * 1000) for m in means],
        "calls_per_rep": calls,
        "p50_call_ms": _rounded(statistics.median(ordered) * 1000),
        "p90_call_ms": _rounded(ordered[int(0.9 * (len(ordered) - 1))] * 1000),
    }


def create_run_figures(client: MlflowClient, experiment: str, calls: int, reps: int) -> Figures:
    return per_call(client, lambda _: client.create_run(experiment), calls, reps)


def log_metric_figures(client: MlflowClient, experiment: str, calls: int, reps: int) -> Figures:
    run_id = client.create_run(experiment).info.run_id
    step = iter(range(calls * reps))

    def log(index: int) -> None:
        client.log_metric(run_id, "loss", 1.0 / (index + 1), timestamp=now_ms(), step=next(step))

    return per_call(client, log, calls, reps)


def batches(points: int, size: int) -> list[list[Metric]]:
    at = now_ms()
    metrics = [Metric("loss", 1.0 / (step + 1), at + step, step) for step in range(points)]
    return [metrics[i : i + size] for i in range(0, points, size)]


def log_batch_figures(
    client: MlflowClient, experiment: str, points: int, size: int, reps: int
) -> tuple[Figures, str]:
    """metrics/s of log_batch; also the id of the first run, whose series history reads."""
    prepared = batches(points, size)
    rates: list[float] = []
    run_ids: list[str] = []
    for _ in range(reps):
        run_id = client.create_run(experiment).info.run_id
        run_ids.append(run_id)
        started = time.perf_counter()
        for batch in prepared:
            client.log_batch(run_id, metrics=batch)
        rates.append(points / (time.perf_counter() - started))
    figures = {
        "metrics_per_s": round(statistics.median(rates)),
        "reps_metrics_per_s": [round(r) for r in rates],
        "metrics": points,
        "batch": size,
        "batches": len(prepared),
    }
    return figures, run_ids[0]


def history_figures(client: MlflowClient, run_id: str, points: int, reps: int) -> Figures:
    seconds: list[float] = []
    for _ in range(reps):
        started = time.perf_counter()
        history = client.get_metric_history(run_id, "loss")
        seconds.append(time.perf_counter() - started)
        if len(history) != points:
            raise AssertionError(f"get_metric_history gave {len(history)} points, not {points}")
        del history
    http_seconds, pages, size = [], 0, 0
    for _ in range(reps):
        started = time.perf_counter()
        pages, size = history_over_http(run_id, points)
        http_seconds.append(time.perf_counter() - started)
    return {
        "s": _rounded(statistics.median(seconds)),
        "reps_s": [_rounded(s) for s in seconds],
        "points": points,
        "http_only_s": _rounded(statistics.median(http_seconds)),
        "http_pages": pages,
        "http_mb": round(size / 1e6, 1),
    }


def history_over_http(run_id: str, points: int) -> tuple[int, int]:
    """The pages get_metric_history asks for, as plain GETs parsed with json.loads: (pages,
    bytes). What the server and the wire cost, without the client's protobuf and objects."""
    url = f"{os.environ['MLFLOW_TRACKING_URI'].rstrip('/')}/api/2.0/mlflow/metrics/get-history"
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query: dict[str, str | int] = {"run_id": run_id, "metric_key": "loss", "max_results": 25_000}
    pages, size, seen = 0, 0, 0
    with requests.Session() as session:
        while True:
            answer = session.get(url, params=query, headers=headers, timeout=300)
            answer.raise_for_status()
            body = json.loads(answer.content)
            pages, size, seen = pages + 1, size + len(answer.content), seen + len(body["metrics"])
            if not body.get("next_page_token"):
                break
            query["page_token"] = body["next_page_token"]
    if seen != points:
        raise AssertionError(f"get-history pages gave {seen} points, not {points}")
    return pages, size


def search_setup(client: MlflowClient, runs: int, threads: int) -> Figures:
    """An experiment of ``runs`` runs for search_runs to search, made through the client."""
    experiment = client.create_experiment(f"bench-search-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda index: _search_run_create(client, experiment, index), range(runs)))
    return {
        "experiment_id": experiment,
        "runs": runs,
        "setup_s": round(time.perf_counter() - started, 1),
    }


def search_figures(client: MlflowClient, experiment: str, runs: int, reps: int) -> Figures:
    seconds: list[float] = []
    found = 0
    for _ in range(reps):
        started = time.perf_counter()
        found = len(client.search_runs([experiment], max_results=min(runs, 1000)))
        seconds.append(time.perf_counter() - started)
    if found != min(runs, 1000):
        raise AssertionError(f"search_runs found {found} runs of {runs}")
    return {
        "s": _rounded(statistics.median(seconds)),
        "reps_s": [_rounded(s) for s in seconds],
        "runs": runs,
    }


def _search_run_create(client: MlflowClient, experiment: str, index: int) -> None:
    run_id = client.create_run(experiment, run_name=f"trial-{index}").info.run_id
    at = now_ms()
    client.log_batch(
        run_id,
        metrics=[
            Metric("loss", 1.0 / (index + 1), at, 10),
            Metric("accuracy", index / 1000, at, 10),
            Metric("epoch", 10.0, at, 10),
        ],
        params=[Param("lr", str(10 ** -(index % 5))), Param("layers", str(index % 7)),
                Param("optimizer", ("adam", "sgd")[index % 2])],
        tags=[RunTag("stage", "sweep"), RunTag("seed", str(index)), RunTag("owner", "bench")],
    )  # fmt: skip


def warm_up(client: MlflowClient, experiment: str) -> None:
    """Each call once, untimed: the connection, the server's lazy imports and caches."""
    run_id = client.create_run(experiment).info.run_id
    client.log_metric(run_id, "loss", 1.0, step=0)
    client.log_batch(run_id, metrics=batches(100, 100)[0])
    client.get_metric_history(run_id, "loss")
    client.search_runs([experiment], max_results=10)


class Errors:
    """The failed calls, each with its phase, the client's message and where it was raised."""

    def __init__(self) -> None:
        self.found: list[dict[str, str]] = []

    def attempt(self, phase: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as failed:
            where = traceback.extract_tb(failed.__traceback__)[-1]
            self.found.append(
                {"phase": phase, "error": f"{type(failed).__name__}: {failed}"[:2000],
                 "raised_at": f"{where.filename}:{where.lineno}"}
            )  # fmt: skip
            return None


def measure(options: argparse.Namespace) -> Figures:
    client = MlflowClient()
    errors = Errors()
    figures: Figures = {"tracking_uri": os.environ["MLFLOW_TRACKING_URI"]}
    if options.setup_search:
        figures["search_setup"] = errors.attempt(
            "search_setup",
            lambda: search_setup(client, options.setup_search, options.setup_threads),
        )
        return figures | {"errors": errors.found}
    experiment = client.create_experiment(f"bench-tracking-{uuid.uuid4().hex[:8]}")
    errors.attempt("warm_up", lambda: warm_up(client, experiment))
    reps = options.reps
    figures["create_run"] = errors.attempt(
        "create_run", lambda: create_run_figures(client, experiment, options.calls, reps)
    )
    figures["log_metric"] = errors.attempt(
        "log_metric", lambda: log_metric_figures(client, experiment, options.metric_calls, reps)
    )
    logged = errors.attempt(
        "log_batch",
        lambda: log_batch_figures(client, experiment, options.metrics, options.batch, reps),
    )
    figures["log_batch"] = logged[0] if logged else None
    if logged:
        figures["get_metric_history"] = errors.attempt(
            "get_metric_history", lambda: history_figures(client, logged[1], options.metrics, reps)
        )
    if options.search_experiment:
        figures["search_runs"] = errors.attempt(
            "search_runs",
            lambda: search_figures(client, options.search_experiment, options.runs, reps),
        )
    return figures | {"errors": errors.found}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="create_run calls per repetition")
    parser.add_argument("--metric-calls", type=int, default=300, help="log_metric calls per rep")
    parser.add_argument("--metrics", type=int, default=100_000, help="points log_batch sends")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000, help="runs search_runs finds")
    parser.add_argument("--search-experiment", help="search_runs over this experiment's runs")
    parser.add_argument(
        "--setup-search", type=int, metavar="RUNS", help="only make an experiment of RUNS runs"
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--setup-threads", type=int, default=4)
    return parser.parse_args(argv)


def main() -> None:
    print(json.dumps(measure(parse(sys.argv[1:]))))


if __name__ == "__main__":
    main()
