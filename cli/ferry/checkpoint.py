"""``ferry.checkpoint()``: keep the job's output now, so a crash later loses nothing before it.

Called inside a job, it asks the job's agent to store ``/ferry/output`` as it is and waits until
that is done, so the files written before the call are in the checkpoint whole. Outside a Ferry
job it does nothing and returns False, so the same script runs on a laptop unchanged.

The agent also keeps the output every few minutes on its own; an explicit checkpoint is for the
moment a file is complete (after ``torch.save``), which only the job knows.

The protocol is two small files in the directory ``$FERRY_CONTROL``, so any language can speak
it: the job writes ``{"token": N}`` to ``checkpoint.request`` (N larger than any earlier token:
nanoseconds since the epoch), and the agent answers in ``checkpoint.answer`` with
``{"token": N, "ok": true}`` once the output it stored covers that request, or
``"ok": false`` and an ``"error"``. Both files are replaced whole (written aside, renamed), so
neither side ever reads half of one.

Standard library only: jobs import this without Ferry's other dependencies.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

REQUEST = "checkpoint.request"
ANSWER = "checkpoint.answer"
_POLL_S = 0.05


def checkpoint(*, wait: bool = True, timeout: float = 600.0) -> bool:
    """Keep ``/ferry/output`` as the job's output now.

    With ``wait`` (the default) it returns once the agent has stored it: True then, False if the
    agent could not (the reason goes to stderr; the job goes on, and the next checkpoint or the
    job's end tries again) or did not answer within ``timeout`` seconds. Without ``wait`` it
    returns True once asked. Outside a Ferry job: False, at once.
    """
    control = os.environ.get("FERRY_CONTROL")
    if not control:
        return False
    token = time.time_ns()
    write_whole(Path(control) / REQUEST, {"token": token})
    if not wait:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = read_json(Path(control) / ANSWER)
        if answer is not None and _token(answer) >= token:
            if answer.get("ok") is True:
                return True
            _warn(f"the checkpoint was not kept: {answer.get('error') or 'no reason given'}")
            return False
        time.sleep(_POLL_S)
    _warn(f"no answer to the checkpoint within {timeout:g} s; the job goes on")
    return False


def write_whole(path: Path, document: dict[str, object]) -> None:
    """Replace ``path`` with ``document`` at once. The file is written aside under a name no
    one else uses and renamed; O_EXCL and O_NOFOLLOW so that a link someone left under that
    name is never followed."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{time.time_ns()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(aside, flags, 0o644)
    try:
        with os.fdopen(fd, "w") as stream:
            json.dump(document, stream)
        os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise


def read_json(path: Path, limit: int = 4096) -> dict[str, object] | None:
    """The JSON object in ``path``, or None where there is none (missing, a link, too big, not
    an object): the other side may be mid-way or misbehaving, never trusted."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(limit + 1)
        document = json.loads(data) if len(data) <= limit else None
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _token(document: dict[str, object]) -> int:
    token = document.get("token")
    return token if isinstance(token, int) and not isinstance(token, bool) else -1


def _warn(message: str) -> None:
    print(f"ferry: {message}", file=sys.stderr, flush=True)
