"""What the benchmarks share: a free port, a prepared Ferry (migrated, bootstrapped), and
waiting for it to answer. Each benchmark starts the processes it measures itself."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_env(work: Path, **settings: str) -> dict[str, str]:
    """This process's environment for a Ferry of its own under ``work``: embedded database and
    broker, whatever this shell points at notwithstanding."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return env | {"FERRY_VAR_DIR": str(work / "var")} | settings


def prepare(env: dict[str, str], url: str) -> str:
    """Migrate and bootstrap the Ferry of ``env``; returns the admin's API token."""
    manage = [str(BIN / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO, env=env, check=True)
    boot = subprocess.run(
        [*manage, "ferry_bootstrap", "--url", url], cwd=REPO, env=env, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    match = re.search(r"API token:\s+(fry_\S+)", boot.stdout)
    assert match, boot.stdout
    return match.group(1)


def wait_until_up(url: str, path: str = "/healthz", timeout_s: float = 120) -> None:
    """Until ``path`` answers 200: /healthz where the broker must answer too."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Ferry did not start at {url}")
