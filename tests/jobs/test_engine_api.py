"""The watchdog's client of the Docker Engine's API (``engine_api``), against the real engine with
the test image, and what the watchdog's process imports."""

import contextlib
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from jobs.executors.docker import _WATCHDOG_MAIN
from jobs.executors.engine_api import (
    Engine,
    EngineError,
    SdkEngine,
    UnsupportedEngine,
    demultiplex,
    engine,
)
from tests.jobs.test_executor_contract import docker_executor

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sdk() -> Iterator[docker.APIClient]:
    client = docker.from_env()
    try:
        yield client.api
    finally:
        client.close()


@pytest.fixture
def make_container(sdk: docker.APIClient) -> Iterator[Callable[[str], str]]:
    """Creates containers (not started) of the test image running ``sh -c SCRIPT``: their ids;
    removed at the end."""
    image = docker_executor().default_image  # skips without an engine
    made: list[str] = []

    def make(script: str) -> str:
        host_config = sdk.create_host_config(init=True, network_mode="none")
        created = sdk.create_container(
            image, ["/bin/sh", "-c", script], host_config=host_config, labels={"ferry.test": "1"}
        )
        made.append(created["Id"])
        return str(created["Id"])

    yield make
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            sdk.remove_container(container, force=True)


def test_start_wait_inspect_and_logs(make_container: Callable[[str], str]) -> None:
    container = make_container("echo out; echo err >&2; printf 'no newline'; exit 3")
    client = Engine()
    client.start(container)
    assert client.wait(container) == 3
    state = client.inspect(container)["State"]
    assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 3, False)
    logs = client.logs(container)
    assert b"\x00" not in logs  # the frames' headers are gone
    assert sorted(logs.splitlines()) == [b"err", b"no newline", b"out"]


def test_kill_with_a_signal(make_container: Callable[[str], str]) -> None:
    container = make_container("trap 'echo terminated; exit 7' TERM; while :; do sleep 0.1; done")
    client = Engine()
    client.start(container)
    client.start(container)  # 304: running already; not an error
    client.kill(container, signal.SIGTERM)  # docker-init passes it on to the shell
    assert client.wait(container) == 7
    assert client.logs(container) == b"terminated\n"
    client.kill(container, signal.SIGKILL)  # 409: not running; ignored


def test_a_removed_container(sdk: docker.APIClient, make_container: Callable[[str], str]) -> None:
    container = make_container("true")
    sdk.remove_container(container, force=True)
    client = Engine()
    assert client.wait(container) is None  # 404: removed
    client.kill(container, signal.SIGTERM)  # 404: ignored
    with pytest.raises(EngineError) as refused:
        client.start(container)
    assert refused.value.status == 404
    assert "No such container" in refused.value.message
    with pytest.raises(EngineError) as refused:
        client.inspect(container)
    assert refused.value.status == 404


def test_the_sdk_fallback_behaves_alike(make_container: Callable[[str], str]) -> None:
    container = make_container("echo out; exit 5")
    client = SdkEngine()
    client.start(container)
    assert client.wait(container) == 5
    assert client.inspect(container)["State"]["ExitCode"] == 5
    assert client.logs(container) == b"out\n"
    client.kill(container, signal.SIGTERM)  # 409: ignored
    with pytest.raises(EngineError) as refused:
        client.start("ferry-test-no-such-container")
    assert refused.value.status == 404


def test_an_engine_that_does_not_answer(tmp_path: Path) -> None:
    client = Engine(f"unix://{tmp_path}/no.sock")
    with pytest.raises(EngineError) as refused:
        client.start("any")
    assert refused.value.status is None
    assert "did not answer" in str(refused.value)


def test_base_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "http://localhost"):
        Engine(url)
    for url in ("https://docker.example:2376", "ssh://me@docker.example", "npipe:////./pipe/x"):
        with pytest.raises(UnsupportedEngine):
            Engine(url)
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker.example:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(UnsupportedEngine):
        Engine()
    assert isinstance(engine("unix:///var/run/docker.sock"), Engine)


def test_demultiplex() -> None:
    def frame(stream: int, payload: bytes) -> bytes:
        return struct.pack(">BxxxI", stream, len(payload)) + payload

    assert demultiplex(frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"")) == b"out\nerr\n"
    assert demultiplex(b"") == b""
    assert demultiplex(b"a TTY's raw stream\n") == b"a TTY's raw stream\n"


def test_the_watchdog_imports_no_sdk() -> None:
    """The launcher waits for the watchdog's answer: it must not pay for the SDK's import."""
    imports = _WATCHDOG_MAIN.rsplit(";", 1)[0]  # all but the call
    check = "; assert not {'docker', 'requests'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-I", "-c", imports + check], check=True, timeout=30)
