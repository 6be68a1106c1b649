"""Moving a dataset: `ferry data upload` / `clone` against a plain boto3 loop, side by side.

Both talk to the same SeaweedFS S3 server, started here; Ferry runs as a real server (uvicorn)
with FERRY_STORAGE=s3, and the CLI runs as a user runs it. Prints each timing and the ratios:

  (a) first upload of the dataset: boto3 time / ferry time     (goal >= 1.0)
  (b) re-upload of the unchanged dataset: ferry time / (a)      (goal <= 5%)
  (c) one small file changed: bytes ferry sent                  (goal: that file's size)
  (d) clone: boto3 download time / ferry clone time             (goal >= 1.0)

Usage: .venv/bin/python bench/data_transfer.py [--big-mb 1024] [--small-files 10000]
       [--small-kb 100]   (the defaults make the 2 GB dataset: 1 GB + 10,000 x 100 KB)
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.platform_setup import bench_env, free_port, prepare, wait_until_up  # noqa: E402
from tests.support.seaweed import S3Server, s3_client, start_seaweed  # noqa: E402

BIN = Path(sys.executable).parent


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def make_dataset(root: Path, big_mb: int, small_files: int, small_kb: int) -> None:
    root.mkdir(parents=True)
    with (root / "big.bin").open("wb") as big:
        for _ in range(big_mb):
            big.write(os.urandom(1024 * 1024))
    for index in range(small_files):
        folder = root / "small" / f"{index // 1000:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:05d}.bin").write_bytes(os.urandom(small_kb * 1024))


@contextmanager
def ferry_server(work: Path, s3: S3Server) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A Ferry server on S3; yields its URL, an API token and the environment it runs with."""
    port = free_port()
    env = bench_env(
        work,
        FERRY_STORAGE="s3",
        FERRY_S3_ENDPOINT_URL=s3.endpoint_url,
        FERRY_S3_BUCKET=s3.bucket,
        FERRY_S3_ACCESS_KEY=s3.access_key,
        FERRY_S3_SECRET_KEY=s3.secret_key,
        FERRY_S3_PREFIX="ferry/",
    )
    url = f"http://127.0.0.1:{port}"
    token = prepare(env, url)
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "config.asgi:application", "--port", str(port), "--log-level",
         "warning"],
        cwd=REPO, env=env,
    )  # fmt: skip
    try:
        wait_until_up(url, "/api/schema/")  # no broker runs here: /healthz would say so
        yield url, token, env
    finally:
        server.terminate()
        server.wait(timeout=30)


def ferry(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "ferry"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"ferry {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def sent_bytes(output: str) -> int:
    match = re.search(r"sent (\d+) bytes", output)
    assert match, output
    return int(match.group(1))


def boto3_upload(s3: S3Server, root: Path, prefix: str) -> None:
    client = s3_client(s3)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        client.upload_file(str(path), s3.bucket, f"{prefix}/{path.relative_to(root)}")


def boto3_download(s3: S3Server, prefix: str, target: Path) -> None:
    client = s3_client(s3)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=s3.bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            local = target / item["Key"][len(prefix) + 1 :]
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(s3.bucket, item["Key"], str(local))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=10_000)
    parser.add_argument("--small-kb", type=int, default=100)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    try:
        run(work, options.big_mb, options.small_files, options.small_kb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, big_mb: int, small_files: int, small_kb: int) -> None:
    data = work / "dataset"
    make_dataset(data, big_mb, small_files, small_kb)
    total = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    print(f"dataset: {total / 2**30:.2f} GiB in {small_files + 1} files ({big_mb} MB + "
          f"{small_files} x {small_kb} KB)", flush=True)  # fmt: skip
    with start_seaweed(work / "s3") as s3, ferry_server(work, s3) as (url, token, env):
        cli_env = dict(env, FERRY_HOST=url, FERRY_TOKEN=token, XDG_CONFIG_HOME=str(work / "xdg"))
        ferry(["data", "init", "bench"], data, cli_env)

        boto3_first = timed(lambda: boto3_upload(s3, data, "plain"))
        ferry_first = timed(lambda: ferry(["data", "upload", "-m", "v1"], data, cli_env))
        ferry_again = timed(lambda: ferry(["data", "upload", "-m", "v2"], data, cli_env))
        changed = data / "small" / "00" / "00000.bin"
        changed.write_bytes(os.urandom(small_kb * 1024))
        one_file = ferry(["data", "upload", "-m", "v3"], data, cli_env)
        boto3_get = timed(lambda: boto3_download(s3, "plain", work / "plain-copy"))
        ferry_get = timed(
            lambda: ferry(["data", "clone", "bench/1", "-p", str(work / "clone")], work, cli_env)
        )

    report = {
        "a_first_upload": {
            "boto3_s": round(boto3_first, 2),
            "ferry_s": round(ferry_first, 2),
            "ratio_boto3_over_ferry": round(boto3_first / ferry_first, 2),
        },
        "b_unchanged_reupload": {
            "ferry_s": round(ferry_again, 2),
            "fraction_of_first": round(ferry_again / ferry_first, 4),
        },
        "c_one_small_file_changed": {
            "bytes_sent": sent_bytes(one_file),
            "file_size": small_kb * 1024,
        },
        "d_download": {
            "boto3_s": round(boto3_get, 2),
            "ferry_clone_s": round(ferry_get, 2),
            "ratio_boto3_over_ferry": round(boto3_get / ferry_get, 2),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
