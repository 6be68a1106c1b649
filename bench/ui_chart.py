"""A 1,000,000-point metric charted in the browser: Ferry's job page against MLflow's run page,
in headless Chromium (Debian's), side by side in one run (issue 9).

Both servers hold the same series, ``loss`` at steps 0..N-1 of one run:

  ferry   ``uvicorn config.asgi:application`` as the Procfile deploys it, on a throw-away
          PostgreSQL cluster and Redis; the points recorded with ``tracking.services.
          metrics_record`` in this process (which keeps the bucket summaries the chart reads)
  mlflow  ``mlflow server`` on SQLite as a user starts it; the run made and its first 1,000
          points logged through ``MlflowClient``, the rest written straight into its SQLite
          ``metrics`` table (logging them through the client takes minutes; the rows are what
          ``log_batch`` writes, and ``latest_metrics`` is set to the last point)

For each side, in turns (the order changing every round), a fresh browser context (cold cache,
as a first visit; Ferry's signed in through its login API beforehand) opens the page that
charts the series and the clock stops when the line is drawn:

  ferry   /<owner>/projects/<project>/<n>?tab=metrics, until the chart of ``loss`` says
          data-state="ready" (its buckets fetched and drawn)
  mlflow  /#/experiments/<id>/runs/<run>/model-metrics, until the answer of
          get-history-bulk-interval for ``loss`` has come and Plotly has drawn its line

``load_s`` is that time; ``series_request_ms`` the series requests' own time as Chromium saw
them (request sent to response body read). ``zoom_s``: a drag over a twentieth of the x axis,
until the finer data is fetched and drawn (Ferry asks for buckets of that range; MLflow asks
for its 320 sampled points of that range, if its chart refetches on zoom: else null).

A ratio is MLflow's time over Ferry's: above 1, Ferry is faster.

Usage: .venv/bin/python bench/ui_chart.py [--points 1000000] [--reps 3]
       (about 4 minutes with the defaults; --points 100000 for a smoke run)
"""

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.tracking import (  # noqa: E402
    SERIES_BATCH,
    ferry_env,
    ferry_side,
    mlflow_side,
    servers_start,
)

CHROMIUM = os.environ.get("FERRY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "chart-bench-password"
LOAD_TIMEOUT_MS = 180_000
ZOOM_TIMEOUT_MS = 60_000
# How long MLflow's chart is given to ask for finer data after a zoom before it counts as not
# asking (it may only magnify the points it has).
MLFLOW_REFETCH_WAIT_MS = 15_000
MLFLOW_CLIENT_POINTS = 1000


@dataclass
class Page:
    """One side's chart page, and what was measured there."""

    label: str
    url: str
    loads: list[float] = field(default_factory=list)
    requests_ms: list[float] = field(default_factory=list)
    zooms: list[float | None] = field(default_factory=list)


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


STARTED = time.perf_counter()


# --- the series on each side --------------------------------------------------------------------


def ferry_series(env: dict[str, str], points: int) -> tuple[str, str]:
    """A user with a password, a run of ``points`` points; the user's name and the run's page."""
    os.environ.update(env)
    import django

    django.setup()
    from accounts.services import user_create
    from jobs.services import external_run_create
    from projects.services import project_create
    from tracking.parsing import MetricPoint
    from tracking.services import metrics_record

    user = user_create(username="chart", email="chart@example.com", password=PASSWORD)
    project = project_create(actor=user, name="chart-bench")
    job = external_run_create(actor=user, project=project, name="series")
    at = datetime.now(UTC)
    for first in range(0, points, SERIES_BATCH):
        steps = range(first, min(first + SERIES_BATCH, points))
        metrics_record(job.id, [MetricPoint("loss", loss_at(s), s, at) for s in steps])
    from django.db import connection

    connection.close()  # Django is done here: the cluster may stop later without it
    return user.username, f"/{user.username}/projects/{project.name}/{job.number}?tab=metrics"


def loss_at(step: int) -> float:
    """A falling curve with some noise-like wiggle, so that downsampling has work to show."""
    return 1.0 / (1 + step / 1000) + 0.05 * ((step * 7919) % 101) / 101


def mlflow_series(tracking_uri: str, store: Path, points: int) -> str:
    """The run on MLflow's server; its page's fragment."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("chart-bench")
    run = client.create_run(experiment).info.run_id
    stamp = int(time.time() * 1000)
    first = [Metric("loss", loss_at(s), stamp, s) for s in range(min(points, MLFLOW_CLIENT_POINTS))]
    client.log_batch(run, metrics=first)
    with sqlite3.connect(store) as db:
        rows = ((loss_at(s), stamp, run, s) for s in range(MLFLOW_CLIENT_POINTS, points))
        db.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES ('loss', ?, ?, ?, ?, 0)",
            rows,
        )
        db.execute(
            "UPDATE latest_metrics SET value = ?, step = ? WHERE run_uuid = ? AND key = 'loss'",
            (loss_at(points - 1), points - 1, run),
        )
    return f"/#/experiments/{experiment}/runs/{run}/model-metrics"


# --- the browser --------------------------------------------------------------------------------


def timed_requests(page: Any, marker: str) -> list[float]:
    """The durations (ms) of the requests whose URL holds ``marker``, as they finish."""
    found: list[float] = []

    def finished(request: Any) -> None:
        if marker in request.url:
            timing = request.timing
            found.append(timing["responseEnd"] - timing["requestStart"])

    page.on("requestfinished", finished)
    return found


FERRY_CHART = '[data-testid="metric-chart"][data-metric="loss"]'
MLFLOW_LINE_DRAWN = """() => {
  const line = document.querySelector('.js-plotly-plot .scatterlayer path.js-line');
  return !!line && (line.getAttribute('d') || '').length > 50;
}"""


def ferry_load(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(f'{FERRY_CHART}[data-state="ready"]', timeout=LOAD_TIMEOUT_MS)


def mlflow_load(page: Any, url: str) -> None:
    with page.expect_response(
        lambda r: "get-history-bulk-interval" in r.url and "loss" in r.url,
        timeout=LOAD_TIMEOUT_MS,
    ):
        page.goto(url)
    page.wait_for_function(MLFLOW_LINE_DRAWN, timeout=LOAD_TIMEOUT_MS)


def drag(page: Any, selector: str) -> None:
    """A drag over a twentieth of the element's width, at 40 % of it."""
    box = page.locator(selector).first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.42, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=5)
    page.mouse.up()


def ferry_zoom(page: Any) -> float | None:
    started = time.perf_counter()
    with page.expect_response(lambda r: "metrics/series" in r.url, timeout=ZOOM_TIMEOUT_MS):
        drag(page, f"{FERRY_CHART} .u-over")
    page.wait_for_selector(f'{FERRY_CHART}[data-state="ready"]', timeout=ZOOM_TIMEOUT_MS)
    return time.perf_counter() - started


def mlflow_zoom(page: Any) -> float | None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = time.perf_counter()
    try:
        with page.expect_response(
            lambda r: "get-history-bulk-interval" in r.url and "start_step" in r.url,
            timeout=MLFLOW_REFETCH_WAIT_MS,
        ):
            drag(page, ".js-plotly-plot .nsewdrag")
    except PlaywrightTimeout:
        return None  # the chart did not ask for finer data: it only magnified what it had
    page.wait_for_function(MLFLOW_LINE_DRAWN, timeout=ZOOM_TIMEOUT_MS)
    return time.perf_counter() - started


def visit(
    browser: Any,
    side: Page,
    base: str,
    load: Callable[[Any, str], None],
    zoom: Callable[[Any], float | None],
    marker: str,
    sign_in: dict[str, str] | None,
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        if sign_in:
            answer = context.request.post(f"{base}/api/v1/auth/login", data=sign_in)
            assert answer.ok, answer.text()
        page = context.new_page()
        requests = timed_requests(page, marker)
        started = time.perf_counter()
        try:
            load(page, base + side.url)
        except Exception:
            shot = Path(tempfile.gettempdir()) / f"ui-chart-{side.label}-failed.png"
            page.screenshot(path=str(shot))
            progress(f"{side.label}: the chart did not load; the page is in {shot}")
            raise
        side.loads.append(time.perf_counter() - started)
        side.requests_ms.extend(requests)
        side.zooms.append(zoom(page))
    finally:
        context.close()


# --- the run ------------------------------------------------------------------------------------


def measure(work: Path, points: int, reps: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with ExitStack() as stack:
        progress("PostgreSQL, Redis and Ferry's schema")
        env = ferry_env(stack, work)
        progress(f"ferry: {points:,} points")
        username, ferry_url = ferry_series(env, points)
        ferry = ferry_side("ferry", env, "", None)
        mlflow = mlflow_side(work, "mlflow", None)
        progress("the servers")
        servers_start(stack, work, [ferry, mlflow])
        progress(f"mlflow: {points:,} points")
        mlflow_url = mlflow_series(mlflow.tracking_uri, work / "mlflow.db", points)
        pages = [Page("ferry", ferry_url), Page("mlflow", mlflow_url)]
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        how = {
            "ferry": (ferry.base_url, ferry_load, ferry_zoom, "metrics/series",
                      {"username": username, "password": PASSWORD}),
            "mlflow": (mlflow.base_url, mlflow_load, mlflow_zoom, "get-history-bulk-interval",
                       None),
        }  # fmt: skip
        # A first visit each, not counted: the servers' own first-request costs (imports,
        # connection set-up) are not what a user meets on the hundredth page.
        for side in pages:
            progress(f"{side.label}: warm-up visit")
            visit(browser, Page(side.label, side.url), *how[side.label])
        for number in range(reps):
            for side in pages[number % 2 :] + pages[: number % 2]:
                progress(f"round {number + 1}/{reps}: {side.label}")
                visit(browser, side, *how[side.label])
    return report(points, pages)


def median(values: Sequence[float | None], scale: float = 1.0) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known) * scale, 3) if known else None


def report(points: int, pages: list[Page]) -> dict[str, Any]:
    medians = {
        side.label: {
            "load_s": median(side.loads),
            "series_request_ms": median(side.requests_ms),
            "zoom_s": median(side.zooms),
        }
        for side in pages
    }
    details = {
        side.label: {
            "reps_load_s": [round(v, 3) for v in side.loads],
            "reps_zoom_s": [None if v is None else round(v, 3) for v in side.zooms],
            "series_requests": len(side.requests_ms),
        }
        for side in pages
    }
    return {
        "points": points,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "figures": medians,
        "ratios_mlflow_over_ferry": {
            name: ratio(medians["mlflow"][name], medians["ferry"][name])
            for name in medians["ferry"]
        },
        "details": details,
    }


def ratio(mlflow: float | None, ferry: float | None) -> float | None:
    return round(mlflow / ferry, 2) if mlflow and ferry else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-ui-chart-") as work:
        result = measure(Path(work), args.points, args.reps)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
