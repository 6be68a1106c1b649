"""The real ``floyd`` executable (floyd-cli 0.11.17, unmodified) in a subprocess, against a
live Ferry server: ``floyd --host <live server>/compat/floyd ...``, with a home of its own (its
login is ~/.floydconfig) and a working directory per test."""

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.services import api_token_create
from tests.cli.conftest import alice, workdir
from tests.support.floyd_cli import FloydUnavailable, floyd_venv
from tests.support.own_storage import _own_storage
from tests.support.services import unavailable

TIMEOUT_S = 120
# Shared with the ferry CLI's tests: alice, and the working directory a command runs in; and
# blobs on a filesystem storage of each test's own (configured_storage may pick another).
__all__ = ["_own_storage", "alice", "workdir"]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """What the user saw: floyd-cli logs to stdout and stderr alike."""
        return self.out + self.err


Floyd = Callable[..., Ran]


@pytest.fixture(scope="session")
def floyd_bin() -> Path:
    try:
        return floyd_venv() / "bin"
    except FloydUnavailable as missing:
        unavailable("floyd-cli", str(missing))


@pytest.fixture
def api_key(alice: User) -> str:
    return api_token_create(user=alice, name="floyd-cli").secret


@pytest.fixture
def floyd_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def floyd(live_server: LiveServer, floyd_bin: Path, floyd_home: Path, workdir: Path) -> Floyd:
    """``floyd(*argv, cwd=..., stdin=...)`` runs ``floyd --host <server>/compat/floyd argv``;
    logged out."""

    def run(*argv: str, cwd: Path | None = None, stdin: str = "") -> Ran:
        command = [str(floyd_bin / "floyd"), "--host", f"{live_server.url}/compat/floyd", *argv]
        done = subprocess.run(
            command, cwd=cwd or workdir, input=stdin, capture_output=True, text=True,
            env={"HOME": str(floyd_home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            timeout=TIMEOUT_S,
        )  # fmt: skip
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def logged_in(floyd: Floyd, api_key: str) -> Floyd:
    ran = floyd("login", "-k", api_key)
    assert ran.code == 0, ran
    return floyd
