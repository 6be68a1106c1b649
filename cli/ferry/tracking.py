"""Tracking from a job's code: ``ferry.log_metric("loss", 0.25)``, params, tags.

Inside a Ferry job the SDK finds its job in the environment the agent sets: ``FERRY_URL`` (the
server), ``FERRY_JOB_TOKEN`` (the job's own token, good for that job only) and ``FERRY_JOB``
(``owner/name/N``). Elsewhere ``ferry.init(project="owner/name")`` starts an external run with
the token ``ferry login`` saved, and ``ferry.finish()`` ends it; without ``init`` every call does
nothing (after one warning), so a script runs on a laptop unchanged.

A call only appends to a buffer in memory: a training loop never waits for the network. A daemon
thread sends what is there every second, or as soon as ``BATCH_POINTS`` points wait, as one
``POST .../tracking`` (metrics, params and tags together); at exit the rest is sent. A send that
fails is tried again a few times, then dropped with a warning on stderr: nothing here raises into
the loop, and nothing blocks it except ``flush()``.

Standard library only: jobs import this without Ferry's other dependencies.
"""

import atexit
import json
import math
import operator
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from types import TracebackType
from typing import Any
from urllib import error, request
from urllib.parse import quote

SEND_INTERVAL_S = 1.0
BATCH_POINTS = 1000  # a send starts as soon as this many points wait
MAX_REQUEST_POINTS = 10_000  # the server's limits per request
MAX_REQUEST_ENTRIES = 1000
# Points kept while the server cannot be reached; beyond this, new ones are dropped so that a
# long run with its server away does not grow without end (about 100 bytes each).
MAX_BUFFERED = 1_000_000
RETRY_DELAYS_S = (0.5, 2.0, 5.0)
# Not shortened at exit: a request cut short may still be stored, and its retry stored again.
REQUEST_TIMEOUT_S = 30.0
# At exit, how long the rest may go without a batch landing: a server that is down must not
# hold a finished script for long, but one that takes a long backlog batch by batch may finish.
EXIT_TIMEOUT_S = 5.0
MAX_KEY_CHARS = 250
ENDINGS = ("succeeded", "failed", "stopped")

Point = tuple[str, float, int | None, int]  # key, value, step (None: the key's next), ms


class TrackingError(Exception):
    """``init()`` could not start a run: the message says why and what to do."""


@dataclass(frozen=True)
class Run:
    """The job that tracking goes to: ``project`` is owner/name, ``url`` the server's."""

    project: str
    number: int
    url: str
    external: bool  # started by init() here, not run by Ferry

    def __str__(self) -> str:
        return f"{self.project}/{self.number}"

    def api(self, tail: str) -> str:
        owner, name = self.project.split("/")
        return f"{self.url}/api/v1/projects/{quote(owner)}/{quote(name)}/jobs/{self.number}/{tail}"


@dataclass(frozen=True)
class _Target:
    run: Run
    token: str


class _Answered(Exception):
    """The server answered with an error: retrying the same request will not help."""

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


class _Unreachable(Exception):
    """No answer, or one saying to try later (a 5xx, 408, 429)."""


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = True


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json_number(value: float) -> float | str:
    """JSON has no NaN or infinity; the server reads them as these strings."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


# Held by the exit handler once it is done: a daemon thread still writing to stderr while the
# interpreter shuts down aborts the process ("could not acquire lock ... at interpreter
# shutdown"); one waiting on this lock is harmless.
_stderr_lock = threading.Lock()


def _warn(message: str) -> None:
    with _stderr_lock:
        print(f"ferry: {message}", file=sys.stderr, flush=True)


class _NoRedirects(request.HTTPRedirectHandler):
    """urllib would follow a redirect of a POST as a GET, without its body: the points would be
    lost with a 200. Answered as a refusal instead (``_refusal``)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = request.build_opener(_NoRedirects)


def _post_json(url: str, token: str, body: object, timeout: float) -> Any:
    """POST ``body`` as JSON; the answer's JSON. Raises _Answered or _Unreachable."""
    data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    try:
        with _opener.open(
            request.Request(url, data=data, headers=headers, method="POST"), timeout=timeout
        ) as response:
            answer = response.read()
    except error.HTTPError as exc:
        status = exc.code
        if status >= 500 or status in (408, 429):
            raise _Unreachable(f"the server answered {status}") from exc
        raise _refusal(status, exc.read(), exc.headers.get("Location")) from exc
    except (OSError, HTTPException, ValueError) as exc:  # URLError and timeouts are OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise _Unreachable(str(reason)) from exc
    try:
        return json.loads(answer) if answer else None
    except ValueError as exc:
        # Taken, most likely, by something that is not Ferry: sending it again will not help.
        raise _Answered(200, "not_json", f"{url} answered with something not JSON", {}) from exc


def _refusal(status: int, answer: bytes, location: str | None) -> _Answered:
    if 300 <= status < 400:
        where = f"{location} " if location else "elsewhere "
        message = f"the server sends this to {where}({status}): give the address it redirects to"
        return _Answered(status, "redirect", message, {})
    try:
        detail = json.loads(answer)["error"]
        return _Answered(status, detail["code"], detail["message"], detail.get("fields") or {})
    except (ValueError, KeyError, TypeError):
        return _Answered(status, "error", f"the server answered {status}", {})


def _run_in_job(environ: Mapping[str, str]) -> Run | None:
    """The job the agent says this process runs in: FERRY_JOB is owner/name/N (or the long
    form owner/projects/name/N)."""
    parts = environ.get("FERRY_JOB", "").strip("/").split("/")
    if len(parts) == 4 and parts[1] == "projects":
        parts = [parts[0], parts[2], parts[3]]
    if len(parts) != 3 or not parts[2].isdigit() or not all(parts):
        return None
    url = environ.get("FERRY_URL", "").rstrip("/")
    return Run(f"{parts[0]}/{parts[1]}", int(parts[2]), url, external=False)


class Tracker:
    """The buffer, the sending thread, and where it sends to; one per process (``_tracker``)."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._environ = environ
        self._target: _Target | None = None
        self._owner_pid = os.getpid()
        self._crashed: type[BaseException] | None = None
        self._exit_hooked = False
        self._crash_hooked = False
        self._fresh()

    def _fresh(self) -> None:
        """Buffers, thread and state as a new process starts them."""
        self._on = False  # a target is known and the thread runs: the fast path's one check
        self._off = False  # no target here: calls do nothing
        self._points: deque[Point] = deque()
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._waiters: list[_Waiter] = []
        self._thread: threading.Thread | None = None
        self._deadline: float | None = None  # at exit: sends give up by then
        self._failing = False  # the last send was dropped: try once per batch till one lands
        self._dropped = 0
        self._landed = 0  # requests the server took
        self._in_flight = 0  # points of the request being sent
        self._warned: set[str] = set()

    # --- what the public functions call -------------------------------------------------------

    def metric(self, key: str, value: float, step: int | None, timestamp: int | None) -> None:
        if not self._on and not self._start():
            return
        try:
            point = (
                key,
                float(value),
                None if step is None else operator.index(step),
                _now_ms() if timestamp is None else operator.index(timestamp),
            )
        except (TypeError, ValueError, OverflowError) as exc:
            self._warn_once(f"metric {key!r} not logged: {exc}")
            return
        if type(key) is not str or not 0 < len(key) <= MAX_KEY_CHARS:
            self._warn_once(f"metric {key!r} not logged: a key is text of 1 to 250 characters")
            return
        points = self._points
        if len(points) >= BATCH_POINTS and not self._room(len(points)):
            return
        points.append(point)

    def metrics(self, values: Mapping[str, float], step: int | None) -> None:
        if not self._on and not self._start():
            return
        now = _now_ms()
        for key, value in values.items():
            self.metric(key, value, step, now)

    def entries(self, entries: Mapping[str, object], which: str) -> None:
        if not self._on and not self._start():
            return
        text = {str(key): str(value) for key, value in entries.items()}
        with self._lock:
            (self._params if which == "params" else self._tags).update(text)

    def flush(self, timeout: float | None) -> bool:
        """Send what is buffered now; True once it reached the server, False if some of it was
        dropped or ``timeout`` seconds passed first (it goes on being sent then)."""
        if not self._on and not self._start():
            return False
        waiter = self._flush_asked()
        return waiter.done.wait(timeout) and waiter.ok

    def _flush_asked(self) -> _Waiter:
        waiter = _Waiter()
        with self._lock:
            self._waiters.append(waiter)
        self._wake.set()
        return waiter

    def init(
        self, project: str, name: str, params: Mapping[str, object], tags: Mapping[str, object]
    ) -> Run:
        in_job = _run_in_job(self._environ)
        if in_job is not None:
            self._start()
            self.entries(params, "params")
            self.entries(tags, "tags")
            return in_job
        if self._target is not None and self._target.run.external:
            raise TrackingError(
                f"Run {self._target.run} is still going: call ferry.finish() before starting "
                "another with ferry.init()."
            )
        self._target = _Target(*self._external_run(project, name, params, tags))
        self._owner_pid = os.getpid()
        self._off = False
        self._start()
        self._hook_crashes()
        return self._target.run

    def finish(self, status: str) -> None:
        if status not in ENDINGS:
            raise ValueError(f"A run ends as {', '.join(ENDINGS)}; not {status!r}.")
        target = self._target
        if target is None or not target.run.external:
            if self._on:  # a job Ferry runs ends when its command exits
                self.flush(REQUEST_TIMEOUT_S)
            return
        if not self.flush(REQUEST_TIMEOUT_S):
            _warn(f"some of run {target.run}'s metrics, params or tags were not recorded")
        self._end(target, status)
        self._target = None
        self._on = False
        self._off = False

    # --- starting -----------------------------------------------------------------------------

    def _start(self) -> bool:
        """Find the target and start the thread; False (after one warning) if there is none."""
        if self._on:
            return True
        if self._off:
            return False
        if self._target is None:
            self._target = self._target_in_job()
        if self._target is None:
            self._off = True  # not looked for again, till init()
            return False
        self._hook_exit()
        if self._thread is None:  # one sender per process, whichever run it sends to
            self._thread = threading.Thread(
                target=self._send_loop, name="ferry-tracking", daemon=True
            )
            self._thread.start()
        self._on = True
        return True

    def _target_in_job(self) -> _Target | None:
        environ = self._environ
        run = _run_in_job(environ)
        token = environ.get("FERRY_JOB_TOKEN", "")
        if run is not None and run.url and token:
            return _Target(run, token)
        if run is None:
            _warn(
                "not in a Ferry job and ferry.init() was not called: metrics, params and tags "
                "are not recorded"
            )
        else:
            _warn(f"job {run} was not given FERRY_URL and FERRY_JOB_TOKEN: nothing is recorded")
        return None

    def _external_run(
        self, project: str, name: str, params: Mapping[str, object], tags: Mapping[str, object]
    ) -> tuple[Run, str]:
        from ferry.config import default_config_dir, load  # the standard library only, too
        from ferry.errors import FerryError

        owner, _, project_name = project.partition("/")
        if not owner or not project_name or "/" in project_name:
            raise TrackingError(
                f"Name the project as owner/name, e.g. alice/mnist; not {project!r}."
            )
        try:
            config = load(default_config_dir(self._environ), self._environ)
        except FerryError as exc:
            raise TrackingError(exc.message) from exc
        if not config.token:
            raise TrackingError("Not logged in: run `ferry login` (or set FERRY_TOKEN) first.")
        url = f"{config.host}/api/v1/projects/{quote(owner)}/{quote(project_name)}/runs"
        body = {
            "name": name,
            "params": {str(k): str(v) for k, v in params.items()},
            "tags": {str(k): str(v) for k, v in tags.items()},
        }
        try:
            job = _post_json(url, config.token, body, REQUEST_TIMEOUT_S)
        except _Answered as exc:
            raise TrackingError(f"{config.host} refused to start a run: {exc.message}") from exc
        except _Unreachable as exc:
            raise TrackingError(f"Could not reach {config.host}: {exc}") from exc
        return Run(job["project"], job["number"], config.host, external=True), config.token

    def _end(self, target: _Target, status: str) -> None:
        try:
            _post_json(target.run.api("end"), target.token, {"status": status}, REQUEST_TIMEOUT_S)
        except (_Answered, _Unreachable) as exc:
            _warn(f"could not end run {target.run} as {status}: {exc}")

    # --- process life -------------------------------------------------------------------------

    def _hook_exit(self) -> None:
        if not self._exit_hooked:
            self._exit_hooked = True
            atexit.register(self._at_exit)

    def _hook_crashes(self) -> None:
        if self._crash_hooked:
            return
        self._crash_hooked = True
        earlier: Callable[..., Any] = sys.excepthook

        def note(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            self._crashed = kind
            earlier(kind, exc, tb)

        sys.excepthook = note

    def _at_exit(self) -> None:
        """Send the rest; end a run init() started, as the script did (a crash: failed)."""
        if not self._on:
            return
        self._deadline = time.monotonic() + EXIT_TIMEOUT_S
        waiter = self._flush_asked()
        landed = self._landed
        # A little past the deadline: the sender drops what is left itself, and says so.
        while not waiter.done.wait(EXIT_TIMEOUT_S + 1.0):
            if self._landed == landed:
                left = len(self._points) + self._in_flight
                _warn(
                    f"gave up sending the last metrics: nothing landed for {EXIT_TIMEOUT_S:g} s; "
                    f"{left} points were not recorded"
                )
                break
            landed = self._landed
        target = self._target
        # A forked child (a data loader's worker) sends its own points, but the run is its
        # parent's to end.
        if target is not None and target.run.external and os.getpid() == self._owner_pid:
            crashed = self._crashed
            status = (
                "succeeded"
                if crashed is None
                else "stopped"
                if issubclass(crashed, KeyboardInterrupt)
                else "failed"
            )
            self._end(target, status)
        _stderr_lock.acquire()  # the sender says nothing more: see _stderr_lock

    def after_fork(self) -> None:
        """In a forked child: its own empty buffer and, once it logs, its own thread (the
        parent's did not come along). What the parent buffered is the parent's to send."""
        self._fresh()

    # --- the sending thread -------------------------------------------------------------------

    def _room(self, waiting: int) -> bool:
        if not self._wake.is_set():
            self._wake.set()
        if waiting < MAX_BUFFERED:
            return True
        self._warn_once(
            f"{MAX_BUFFERED} points are waiting to be sent; newer ones are dropped until the "
            "server takes them"
        )
        return False

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(SEND_INTERVAL_S)
            self._wake.clear()
            with self._lock:
                waiters, self._waiters = self._waiters, []
            try:
                ok = self._send_all()
            except Exception as exc:  # a bug here must not stop tracking, nor the job
                _warn(f"tracking failed to send a batch ({exc!r}); it is dropped")
                ok = False
            for waiter in waiters:
                waiter.ok = ok
                waiter.done.set()

    def _send_all(self) -> bool:
        """Send batches until the buffer is empty; False if any was dropped."""
        ok = True
        while (body := self._take()) is not None:
            self._in_flight = len(body["metrics"])
            ok = self._deliver(body) and ok
            self._in_flight = 0
        return ok

    def _take(self) -> dict[str, Any] | None:
        points = self._points
        metrics = []
        for _ in range(min(len(points), MAX_REQUEST_POINTS)):
            key, value, step, at = points.popleft()
            point: dict[str, object] = {"key": key, "value": _json_number(value), "timestamp": at}
            if step is not None:
                point["step"] = step
            metrics.append(point)
        with self._lock:
            params = _take_entries(self._params)
            tags = _take_entries(self._tags)
        if not metrics and not params and not tags:
            return None
        return {"metrics": metrics, "params": params, "tags": tags}

    def _deliver(self, body: dict[str, Any]) -> bool:
        target = self._target
        if target is None:  # finish() ended the run while this was buffered
            return False
        attempts = 1 if self._failing else len(RETRY_DELAYS_S) + 1
        reason = ""
        for attempt in range(attempts):
            if self._time_left(REQUEST_TIMEOUT_S) <= 0:
                break
            try:
                _post_json(target.run.api("tracking"), target.token, body, REQUEST_TIMEOUT_S)
            except _Answered as exc:
                if (body["params"] or body["tags"]) and _about_entries(exc):
                    # A param that may not change must not cost the points sent with it.
                    _warn(f"params or tags not recorded: {exc.message}")
                    body = {**body, "params": {}, "tags": {}}
                    return self._deliver(body) if body["metrics"] else False
                self._dropped += len(body["metrics"])
                self._warn_once(
                    f"the server refused what was logged, which is dropped: {exc.message}"
                )
                return False
            except _Unreachable as exc:
                reason = str(exc)
                if attempt < attempts - 1:
                    time.sleep(max(0.0, min(RETRY_DELAYS_S[attempt], self._time_left(60.0))))
                continue
            self._landed += 1
            if self._deadline is not None:  # exiting, and the server takes the rest: go on
                self._deadline = time.monotonic() + EXIT_TIMEOUT_S
            if self._failing:
                self._failing = False
                _warn(f"{target.run.url} answers again; {self._dropped} points were not recorded")
                self._dropped = 0
            return True
        self._dropped += len(body["metrics"])
        if not self._failing:
            self._failing = True
            why = reason or "no time left"
            _warn(
                f"could not send {_counted(body)} to {target.run.url} ({why}); they are "
                "dropped, and so is what follows until the server answers"
            )
        return False

    def _time_left(self, most: float) -> float:
        deadline = self._deadline
        return most if deadline is None else min(most, deadline - time.monotonic())

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            _warn(message)


def _take_entries(entries: dict[str, str]) -> dict[str, str]:
    """Up to a request's worth of ``entries``, removed from it."""
    if len(entries) <= MAX_REQUEST_ENTRIES:
        taken = dict(entries)
        entries.clear()
        return taken
    keys = list(entries)[:MAX_REQUEST_ENTRIES]
    return {key: entries.pop(key) for key in keys}


def _about_entries(exc: _Answered) -> bool:
    return exc.status == 400 and any(
        field.split(".")[0] in ("params", "tags") for field in exc.fields
    )


def _counted(body: Mapping[str, Any]) -> str:
    return (
        f"{len(body['metrics'])} metric points, {len(body['params'])} params and "
        f"{len(body['tags'])} tags"
    )


_tracker = Tracker()


def _after_fork() -> None:
    global _stderr_lock
    _stderr_lock = threading.Lock()  # the parent's sender may have held it at the fork
    _tracker.after_fork()


os.register_at_fork(after_in_child=_after_fork)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log ``value`` of metric ``key`` at ``step`` (None: the key's next step) and ``timestamp``
    (milliseconds since 1970; None: now). Returns at once: the point is sent in the background.
    """
    _tracker.metric(key, value, step, timestamp)


def log_metrics(values: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at one step and one time."""
    _tracker.metrics(values, step)


def log_params(params: Mapping[str, object]) -> None:
    """Log the run's params (values are sent as text). A param keeps its first value."""
    _tracker.entries(params, "params")


def set_tags(tags: Mapping[str, object]) -> None:
    """Set tags of the run (values are sent as text); a tag set again takes the new value."""
    _tracker.entries(tags, "tags")


def flush(timeout: float | None = 30.0) -> bool:
    """Wait until what was logged so far reached the server: True if all of it did; False if
    some was dropped, ``timeout`` seconds passed, or nothing is recorded here at all."""
    return _tracker.flush(timeout)


def init(
    project: str,
    name: str = "",
    *,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, object] | None = None,
) -> Run:
    """Track this script as a run of ``project`` ("owner/name"), with the token ``ferry login``
    saved; ``finish()`` ends it (at exit, it ends on its own: failed if the script crashed).
    Inside a Ferry job, the job itself is the run: this only logs ``params`` and ``tags``.

    Raises TrackingError if the run cannot be started (not logged in, no such project, no
    server).
    """
    return _tracker.init(project, name, params or {}, tags or {})


def finish(status: str = "succeeded") -> None:
    """Send what is buffered and end the run ``init()`` started: succeeded, failed or stopped.
    Inside a Ferry job it only flushes: the job ends when its command exits."""
    _tracker.finish(status)
