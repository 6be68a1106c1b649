"""Running jobs: what Ferry adds to a job's own time, laying out a cached input, following logs.

Starts the embedded platform as `make up` does (honcho with the Procfile, in a throw-away var
directory: SQLite, the embedded Redis, a Celery worker, beat and an agent), then measures, side
by side in this one run:

  (a) submit -> succeeded of a job running `true`, seen by a client, against launching `true`
      through the same local executor directly; the median difference  (goal <= 150 ms)
  (b) laying out a cached input of 10,000 files (1 GB) from the agent's blob cache (goal <= 1 s)
  (c) a job printing 1,000,000 lines, followed by a client: lines/s, and none lost
      (goal >= 100,000 lines/s)

Usage: .venv/bin/python bench/job_runs.py [--runs 20] [--files 10000] [--file-kb 100]
       [--lines 1000000]
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "cli"))

from ferry.client import FerryClient  # noqa: E402
from ferry.jobs import Jobs, ProjectRef  # noqa: E402

from bench.platform_setup import bench_env, free_port, prepare, wait_until_up  # noqa: E402

BIN = Path(sys.executable).parent


@contextmanager
def platform(work: Path, executor: str = "local") -> Iterator[tuple[str, str]]:
    """The embedded platform on a free port, its agent running jobs with ``executor``; yields
    its URL and an API token."""
    port = free_port()
    env = bench_env(work, FERRY_PORT=str(port), FERRY_AGENT_NAME="bench", FERRY_EXECUTOR=executor)
    url = f"http://127.0.0.1:{port}"
    token = prepare(env, url)
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "-f", "Procfile"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(url)
        yield url, token
    finally:
        os.killpg(honcho.pid, signal.SIGINT)
        honcho.wait(timeout=60)


def run_and_follow(jobs: Jobs, project: ProjectRef, command: str) -> tuple[float, bytes, str]:
    """Seconds from submit to the client seeing the end, the whole log, and the final status."""
    started = time.perf_counter()
    job = jobs.submit(project, {"command": command})
    log = bytearray()
    status = ""
    for piece in jobs.follow(project, int(job["number"])):
        log += piece.data
        status = piece.status
    return time.perf_counter() - started, bytes(log), status


def direct_true(work: Path, runs: int) -> list[float]:
    """`true` through the local executor itself, launch to exit, as the agent runs it."""
    from jobs.executors import JobSpec, LocalExecutor, Mount, Resources

    executor = LocalExecutor()
    times = []
    for index in range(runs):
        workdir = work / "direct" / str(index)
        (workdir / "code").mkdir(parents=True)
        (workdir / "output").mkdir()
        spec = JobSpec(
            job_id=f"direct-{index}", image=None, command="true", workdir=workdir,
            mounts=[Mount.output(workdir / "output")], env={},
            resources=Resources(1, 512, ()), max_runtime_s=None,
        )  # fmt: skip
        started = time.perf_counter()
        handle = executor.launch(spec)
        while executor.wait(handle, timeout=0.01) is None:
            pass
        times.append(time.perf_counter() - started)
        executor.cleanup(handle)
    return times


def layout_cached(work: Path, files: int, file_kb: int) -> float:
    """Lay out a tree whose blobs are all in the cache already (as a second job using it)."""
    from blobs.cache import BlobCache, CachedFile

    cache = BlobCache(work / "cache")
    entries = []
    for index in range(files):
        data = os.urandom(file_kb * 1024)
        digest = hashlib.sha256(data).hexdigest()
        target = cache.path_of(digest)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
        entries.append(
            CachedFile(f"part-{index // 1000}/{index:05d}.bin", digest, len(data), 0o644)
        )
    started = time.perf_counter()
    result = cache.layout(entries, work / "job-input", link=True)
    elapsed = time.perf_counter() - started
    assert result.fetched == 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--file-kb", type=int, default=100)
    parser.add_argument("--lines", type=int, default=1_000_000)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the report
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-jobs-"))
    try:
        report = measure(work, options)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


def measure(work: Path, options: argparse.Namespace) -> dict[str, object]:
    direct = direct_true(work, options.runs)
    layout_s = layout_cached(work, options.files, options.file_kb)
    with platform(work) as (url, token), FerryClient(url, token) as client:
        jobs = Jobs(client, lambda: "admin")
        project = ProjectRef(None, "bench")
        jobs.project_get_or_create(project)
        run_and_follow(jobs, project, "true")  # warm: the first job starts the agent's pool
        ferry = [run_and_follow(jobs, project, "true")[0] for _ in range(options.runs)]
        lines_s, log, status = run_and_follow(jobs, project, f"seq {options.lines}")
    expected = "".join(f"{n}\n" for n in range(1, options.lines + 1)).encode()
    added_ms = (statistics.median(ferry) - statistics.median(direct)) * 1000
    return {
        "a_submit_to_succeeded": {
            "direct_executor_median_ms": round(statistics.median(direct) * 1000, 1),
            "ferry_median_ms": round(statistics.median(ferry) * 1000, 1),
            "ferry_adds_median_ms": round(added_ms, 1),
            "goal_ms": 150,
        },
        "b_cached_input_layout": {
            "files": options.files,
            "bytes": options.files * options.file_kb * 1024,
            "seconds": round(layout_s, 3),
            "goal_s": 1.0,
        },
        "c_followed_log": {
            "lines": options.lines,
            "status": status,
            "complete_and_in_order": log == expected,
            "lines_per_s": round(options.lines / lines_s),
            "goal_lines_per_s": 100_000,
        },
    }


if __name__ == "__main__":
    main()
