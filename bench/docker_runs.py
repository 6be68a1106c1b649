"""What Ferry adds to a short job on the Docker executor, next to plain `docker run`.

Starts the embedded platform as `make up` does, its agent on the docker executor, then, side by
side in this one run:

  submit -> succeeded of `ferry run "true"` in the python-3.11 environment, seen by a client,
  against `docker run --rm ferry/python:3.11 true` from the docker CLI; the median difference
  (goal <= 150 ms)

Needs a Docker engine and the environment's image: `make images IMAGES=python-3.11`.
Usage: .venv/bin/python bench/docker_runs.py [--runs 20]
"""

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "cli"))

from ferry.client import FerryClient  # noqa: E402
from ferry.jobs import Jobs, ProjectRef  # noqa: E402

from bench.job_runs import platform, run_and_follow  # noqa: E402

IMAGE = "ferry/python:3.11"  # the python-3.11 environment's image, as seeded


def plain_docker(runs: int) -> list[float]:
    """`docker run --rm IMAGE true`, start to exit, as a user would time it."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", IMAGE, "true"], check=True)
        times.append(time.perf_counter() - started)
    return times


def ferry_runs(work: Path, runs: int) -> tuple[list[float], str]:
    with platform(work, executor="docker") as (url, token), FerryClient(url, token) as client:
        jobs = Jobs(client, lambda: "admin")
        project = ProjectRef(None, "bench")
        jobs.project_get_or_create(project)
        _, log, status = run_and_follow(jobs, project, "true")  # warm: the agent's pool
        if status != "succeeded":
            raise SystemExit(f"A job on the docker executor ended {status}: {log.decode()}")
        return [run_and_follow(jobs, project, "true")[0] for _ in range(runs)], status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        raise SystemExit(f"No {IMAGE} here: build it with `make images IMAGES=python-3.11`.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-docker-"))
    try:
        docker = plain_docker(options.runs)
        ferry, _ = ferry_runs(work, options.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ferry_s, docker_s = statistics.median(ferry), statistics.median(docker)
    report = {
        "submit_to_succeeded_on_docker": {
            "docker_run_median_ms": round(docker_s * 1000, 1),
            "ferry_median_ms": round(ferry_s * 1000, 1),
            "ferry_adds_median_ms": round((ferry_s - docker_s) * 1000, 1),
            "ratio_ferry_over_docker_run": round(ferry_s / docker_s, 2),
            "goal_added_ms": 150,
        }
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
