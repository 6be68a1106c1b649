"""Run the `ferry` CLI in-process against a live Ferry server, on each storage backend."""

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ferry.cli.context import Context
from ferry.cli.main import main
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from accounts.services import api_token_create
from tests.factories import UserFactory


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


Ferry = Callable[..., Outcome]


@pytest.fixture
def alice(transactional_db: None) -> User:
    user: User = UserFactory.create(username="alice")
    return user


@pytest.fixture
def token(alice: User) -> str:
    return api_token_create(user=alice, name="cli test").secret


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


def cli_runner(url: str, workdir: Path, config_dir: Path, **base_env: str) -> Ferry:
    """``run(*argv, cwd=..., stdin=..., env=...)``: the real CLI in-process against ``url``,
    with its config in ``config_dir``."""

    def run(
        *argv: str, cwd: Path | None = None, stdin: str = "", env: dict[str, str] | None = None
    ) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        context = Context(
            stdout=out,
            stderr=err,
            stdin=io.StringIO(stdin),
            env={"FERRY_HOST": url, **base_env, **(env or {})},
            cwd=cwd or workdir,
            config_dir=config_dir,
        )
        code = main(list(argv), context)
        return Outcome(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def ferry(
    live_server: LiveServer, configured_storage: str, workdir: Path, config_dir: Path
) -> Ferry:
    """``ferry(*argv, cwd=..., stdin=..., env=...)`` runs the CLI in-process; logged out."""
    return cli_runner(live_server.url, workdir, config_dir)


@pytest.fixture
def logged_in(ferry: Ferry, token: str) -> Ferry:
    result = ferry("login", "--token", token)
    assert result.code == 0, result
    return ferry
