"""``ferry.checkpoint()`` from the job's side of the control directory; the agent's side is
played here by a thread that answers as ``jobs.checkpoints`` does."""

import os
import threading
import time
from pathlib import Path

import pytest
from ferry import checkpoint
from ferry.checkpoint import ANSWER, REQUEST, read_json, write_whole


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FERRY_CONTROL", str(tmp_path))
    return tmp_path


def answer_when_asked(control: Path, *, ok: bool, error: str = "") -> threading.Thread:
    def agent() -> None:
        deadline = time.monotonic() + 10
        while (request := read_json(control / REQUEST)) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert request is not None
        write_whole(control / ANSWER, {"token": request["token"], "ok": ok, "error": error})

    thread = threading.Thread(target=agent)
    thread.start()
    return thread


def test_outside_a_job_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRY_CONTROL", raising=False)

    assert checkpoint() is False


def test_it_returns_once_the_agent_kept_the_output(control: Path) -> None:
    agent = answer_when_asked(control, ok=True)

    assert checkpoint(timeout=10) is True
    agent.join()


def test_a_failed_checkpoint_is_reported_and_the_job_goes_on(
    control: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = answer_when_asked(control, ok=False, error="the store is down")

    assert checkpoint(timeout=10) is False
    agent.join()
    assert "the checkpoint was not kept: the store is down" in capsys.readouterr().err


def test_an_answer_to_an_earlier_request_does_not_count(
    control: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_whole(control / ANSWER, {"token": 1, "ok": True})

    assert checkpoint(timeout=0.3) is False
    assert "no answer to the checkpoint within 0.3 s" in capsys.readouterr().err


def test_without_waiting_it_only_asks(control: Path) -> None:
    assert checkpoint(wait=False) is True

    request = read_json(control / REQUEST)
    assert request is not None
    assert isinstance(request["token"], int)
    assert request["token"] > 0
    assert [p.name for p in control.iterdir()] == [REQUEST]  # nothing left aside


def test_junk_and_links_read_as_nothing(
    control: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (control / "junk").write_bytes(b"\xff not json")
    (control / "list").write_text("[1, 2]")
    (control / "big").write_text('{"token": 1, "pad": "' + "x" * 5000 + '"}')
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.json"
    secret.write_text('{"token": 5}')
    (control / "link").symlink_to(secret)
    os.mkfifo(control / "fifo")

    for name in ("junk", "list", "big", "link", "fifo", "missing"):
        assert read_json(control / name) is None, name


def test_a_link_left_in_the_way_is_replaced_not_followed(
    control: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    victim = tmp_path_factory.mktemp("elsewhere") / "victim"
    victim.write_text("untouched")
    (control / ANSWER).symlink_to(victim)

    write_whole(control / ANSWER, {"token": 2, "ok": True})

    assert victim.read_text() == "untouched"
    assert read_json(control / ANSWER) == {"token": 2, "ok": True}
