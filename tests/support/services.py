"""Real services for the test suite, started here when the machine has them.

``FERRY_TEST_REQUIRE`` names the services whose absence must fail the run instead of skipping
it: a comma list (``postgres,redis``) or ``all``. CI sets ``all``.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

KNOWN_SERVICES = frozenset({"postgres", "redis", "s3", "bwrap", "docker", "floyd-cli", "chromium"})


def required_services() -> frozenset[str]:
    raw = os.environ.get("FERRY_TEST_REQUIRE", "")
    names = {name.strip().lower() for name in raw.split(",") if name.strip()}
    return KNOWN_SERVICES if "all" in names else frozenset(names)


def is_required(service: str) -> bool:
    return service in required_services()


def unavailable(service: str, reason: str) -> NoReturn:
    """Skip the test that needs ``service``, or fail it if the service is required."""
    message = f"{service} is not available: {reason}"
    if is_required(service):
        pytest.fail(f"{message} (FERRY_TEST_REQUIRE names it)", pytrace=False)
    pytest.skip(message)


# --- PostgreSQL ---------------------------------------------------------------------------------


def find_postgres_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres of one installed PostgreSQL."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(versions):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl") and shutil.which("postgres"):
        return Path(initdb).parent
    return None


def _unprivileged_user() -> str | None:
    # PostgreSQL refuses to run as root, so as root the cluster runs as the postgres user.
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@dataclass
class PostgresCluster:
    """A throw-away PostgreSQL cluster on a unix socket, tuned for speed over durability."""

    bin_dir: Path
    root: Path
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            self.root.chmod(0o755)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "ferry",
            "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            pg_ctl = str(self.bin_dir / "pg_ctl")
            self._run(pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def database_settings(self) -> dict[str, object]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": "ferry",
            "PASSWORD": "",
            "HOST": str(self.socket_dir),
            "PORT": "",
        }


def start_postgres_cluster() -> PostgresCluster:
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("no initdb/pg_ctl found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="ferry-pg-"))
    cluster = PostgresCluster(bin_dir=bin_dir, root=root, run_as=_unprivileged_user())
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


# --- Docker -------------------------------------------------------------------------------------


def docker_engine_problem() -> str | None:
    """Why no Docker engine answers here (at DOCKER_HOST, else the local socket), or None.
    Nothing is started: an engine needs root, and CI's script starts one (.ci/run)."""
    from jobs.executors.docker import engine_problem  # the Docker SDK: only where asked for

    return engine_problem()
