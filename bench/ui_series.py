"""What the browser's metric chart costs the server, in-process: the series requests it makes
for a 1,000,000-point metric, at its first load and at a zoom.

A job's ``loss`` of --points points is recorded with ``tracking.services.metrics_record`` (as
the agent and the API do) on a throw-away PostgreSQL cluster; then Django's test client, signed
in, makes the requests of ``frontend/src/components/charts`` (one bucket per pixel, rounded up
to a multiple of 100) and each is timed, the median of --reps:

  tracking     GET …/tracking: the job's summaries, one per key (the metrics tab's first call)
  load_900px   GET …/metrics/series?key=loss&buckets=900: a chart 900 px wide, whole series
  load_1900px  the same for a chart spread over a 1920 px screen
  zoom_20th    a drag over a twentieth of the x axis: buckets=900 over 50,000 steps
  zoom_deep    zoomed in to 600 steps: the raw points themselves (width 1)

Usage: .venv/bin/python bench/ui_series.py [--points 1000000] [--reps 7]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.tracking import SERIES_BATCH, ferry_env  # noqa: E402


def seed(points: int) -> tuple[Any, str]:
    """A user, and a job with ``points`` points of ``loss``; the user and the job's API path."""
    from accounts.services import user_create
    from jobs.services import external_run_create
    from projects.services import project_create
    from tracking.parsing import MetricPoint
    from tracking.services import metrics_record

    user = user_create(username="charts", email="charts@example.com", password=None)
    project = project_create(actor=user, name="ui-series")
    job = external_run_create(actor=user, project=project, name="series")
    at = datetime.now(UTC)
    for first in range(0, points, SERIES_BATCH):
        steps = range(first, min(first + SERIES_BATCH, points))
        metrics_record(job.id, [MetricPoint("loss", 1.0 / (1 + s / 1000), s, at) for s in steps])
    return user, f"/api/v1/projects/{user.username}/{project.name}/jobs/{job.number}"


def timed(client: Any, url: str, reps: int) -> dict[str, Any]:
    """The median time of GET ``url`` and what its answer holds."""
    times: list[float] = []
    for _ in range(reps):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            answer = response.content[:300]
            raise RuntimeError(f"GET {url} answered {response.status_code}: {answer!r}")
    body = response.json()
    return {
        "ms": round(statistics.median(times), 2),
        "bytes": len(response.content),
        "buckets": len(body["buckets"]) if "buckets" in body else None,
        "width": body.get("width"),
    }


def measure(points: int, reps: int) -> dict[str, Any]:
    from django.test import Client

    started = time.perf_counter()
    user, job = seed(points)
    seed_s = time.perf_counter() - started
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    middle = points // 2
    requests = {
        "tracking": f"{job}/tracking",
        "load_900px": f"{job}/metrics/series?key=loss&buckets=900",
        "load_1900px": f"{job}/metrics/series?key=loss&buckets=1900",
        "zoom_20th": f"{job}/metrics/series?key=loss&buckets=900"
        f"&first_step={middle}&last_step={middle + points // 20 - 1}",
        "zoom_deep": f"{job}/metrics/series?key=loss&buckets=900"
        f"&first_step={middle}&last_step={middle + 599}",
    }
    client.get(requests["tracking"])  # the first request's own costs (imports, connection)
    figures = {name: timed(client, url, reps) for name, url in requests.items()}
    return {"points": points, "reps": reps, "seed_s": round(seed_s, 1), "requests": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-ui-series-") as work, ExitStack() as stack:
        os.environ.update(ferry_env(stack, Path(work)))
        import django

        django.setup()
        result = measure(options.points, options.reps)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
