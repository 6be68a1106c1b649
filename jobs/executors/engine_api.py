"""The docker executor's watchdog, and the little of the Docker Engine's API it speaks, in the
standard library only.

The watchdog is started for every job, and the launcher waits for its answer: importing the
``docker`` SDK (and ``requests``) would cost it a fifth of a second before it could start the
container. So it speaks the engine's HTTP API itself (``Engine``): over the engine's Unix
socket (``unix://``) or plain TCP (``tcp://``, ``http://``). Anything else (TLS, SSH, a named
pipe) falls back to the SDK (``SdkEngine``), imported only then. The launcher's side
(``jobs.executors.docker``) keeps the SDK.

The paths are unversioned: the engine serves them as its newest API version, and these few
calls have not changed in years.
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any, Protocol, TypedDict
from urllib.parse import quote, urlsplit

from jobs.executors.common import (
    ExitRecord,
    StateDir,
    answer,
    hold_lock,
    lease_expired,
    say,
    unwatched,
    write_exit,
)

ENGINE_TIMEOUT_S = 60.0  # for one request to the engine (a wait has none)
ENGINE_RETRY_S = 1.0  # between the watchdog's tries while the engine does not answer
DEFAULT_SOCKET = "/var/run/docker.sock"
_MAX_LOGS = 1 << 20  # what the watchdog reads of the engine's own log at most


class EngineError(Exception):
    """The engine refused a request (``status``: its HTTP status), or did not answer (None)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})" if status is not None else message)
        self.status = status
        self.message = message


class UnsupportedEngine(Exception):
    """A base URL (or environment) ``Engine`` does not speak: TLS, SSH, a named pipe."""


class EngineLike(Protocol):
    """What the watchdog asks of the engine: ``Engine``'s methods."""

    def start(self, container: str) -> None: ...
    def wait(self, container: str) -> int | None: ...
    def inspect(self, container: str) -> dict[str, Any]: ...
    def logs(self, container: str) -> bytes: ...
    def kill(self, container: str, signum: int) -> None: ...


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """A client of the Docker Engine's API: the calls the watchdog needs, one connection each
    (a Unix socket's is cheap, and threads may call at once)."""

    def __init__(self, base_url: str | None = None, timeout: float = ENGINE_TIMEOUT_S) -> None:
        """``base_url`` as the SDK takes it; by default DOCKER_HOST's, else the local socket.
        Raises ``UnsupportedEngine`` where it needs more than plain HTTP."""
        if base_url is None:
            # As the SDK's ``from_env``: either variable asks for TLS.
            if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
                raise UnsupportedEngine("the environment asks for TLS")
            base_url = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
        scheme, _, rest = base_url.partition("://")
        self._timeout = timeout
        self._socket: str | None = None
        if scheme in ("unix", "http+unix"):
            self._socket = rest or DEFAULT_SOCKET
        elif scheme in ("tcp", "http") and (parts := urlsplit(f"http://{rest}")).hostname:
            self._host, self._port = parts.hostname, parts.port or 2375
        else:
            raise UnsupportedEngine(f"{base_url} needs more than plain HTTP")

    def start(self, container: str) -> None:
        self._call("POST", f"/containers/{quote(container)}/start", ok=(204, 304))

    def wait(self, container: str) -> int | None:
        """Block until the container has ended: its exit status; None if it was removed."""
        try:
            reply = self._call("POST", f"/containers/{quote(container)}/wait", blocking=True)
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        status: int = json.loads(reply)["StatusCode"]
        return status

    def inspect(self, container: str) -> dict[str, Any]:
        details: dict[str, Any] = json.loads(
            self._call("GET", f"/containers/{quote(container)}/json")
        )
        return details

    def logs(self, container: str) -> bytes:
        """What the engine kept of the container's stdout and stderr, interleaved."""
        path = f"/containers/{quote(container)}/logs?stdout=1&stderr=1"
        return demultiplex(self._call("GET", path))

    def kill(self, container: str, signum: int) -> None:
        """Send ``signum``; nothing if the container is gone (404) or not running (409)."""
        name = signal.Signals(signum).name
        path = f"/containers/{quote(container)}/kill?signal={name}"
        self._call("POST", path, ok=(204,), ignore=(404, 409))

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._socket is not None:
            return _UnixConnection(self._socket, timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _call(
        self,
        method: str,
        path: str,
        ok: tuple[int, ...] = (200,),
        ignore: tuple[int, ...] = (),
        blocking: bool = False,
    ) -> bytes:
        """``blocking``: the request may take any time (a wait), else ``timeout`` at most."""
        connection = self._connection(None if blocking else self._timeout)
        try:
            connection.request(method, path, headers={"Content-Length": "0"})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            problem = f"The Docker engine did not answer {method} {path}: {exc}"
            raise EngineError(None, problem) from exc
        finally:
            connection.close()
        if response.status in ok or response.status in ignore:
            return body
        raise EngineError(response.status, _message(body) or response.reason)


def _message(body: bytes) -> str:
    """The engine's error message: ``{"message": ...}``, or the body as it is."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        return str(json.loads(body)["message"])
    return body.decode(errors="replace").strip()


def demultiplex(stream: bytes) -> bytes:
    """The payloads of a multiplexed stream (the logs of a container without a TTY): frames of
    an 8-byte header (stream type, 3 zero bytes, the payload's size, big-endian) and payload.
    Data that is not so framed (a TTY's raw stream) is returned as it is."""
    chunks: list[bytes] = []
    at = 0
    while at < len(stream):
        header = stream[at : at + 8]
        if len(header) < 8 or header[0] not in (0, 1, 2) or header[1:4] != b"\0\0\0":
            return stream if at == 0 else b"".join(chunks) + stream[at:]
        (size,) = struct.unpack(">I", header[4:])
        chunks.append(stream[at + 8 : at + 8 + size])
        at += 8 + size
    return b"".join(chunks)


class SdkEngine:
    """``Engine``'s calls through the ``docker`` SDK, for the engines only it can reach."""

    def __init__(self, base_url: str | None = None, timeout: float = ENGINE_TIMEOUT_S) -> None:
        import docker  # only here: it costs a fifth of a second

        try:
            if base_url is None:
                self._client = docker.from_env(timeout=round(timeout)).api
            else:
                self._client = docker.APIClient(base_url=base_url, timeout=round(timeout))
        except Exception as exc:
            raise _sdk_error(exc) from exc

    def start(self, container: str) -> None:
        self._sdk(self._client.start, container)

    def wait(self, container: str) -> int | None:
        try:
            status: int = self._sdk(self._client.wait, container, timeout=None)["StatusCode"]
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return status

    def inspect(self, container: str) -> dict[str, Any]:
        details: dict[str, Any] = self._sdk(self._client.inspect_container, container)
        return details

    def logs(self, container: str) -> bytes:
        stream: bytes = self._sdk(self._client.logs, container, stdout=True, stderr=True)
        return stream

    def kill(self, container: str, signum: int) -> None:
        try:
            self._sdk(self._client.kill, container, signal=int(signum))
        except EngineError as exc:
            if exc.status not in (404, 409):
                raise

    @staticmethod
    def _sdk(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # the SDK's and requests' errors, which do not share a base
            raise _sdk_error(exc) from exc


def _sdk_error(exc: Exception) -> EngineError:
    status = getattr(exc, "status_code", None)
    return EngineError(status if isinstance(status, int) else None, str(exc))


def engine(base_url: str | None = None, timeout: float = ENGINE_TIMEOUT_S) -> EngineLike:
    """A client of the engine at ``base_url``: ``Engine``, else the SDK's where it must."""
    try:
        return Engine(base_url, timeout)
    except UnsupportedEngine:
        return SdkEngine(base_url, timeout)


# --- the watchdog -----------------------------------------------------------------------------


class Plan(TypedDict):
    """What the watchdog needs; sent on its stdin."""

    container: str
    base_url: str | None
    max_runtime_s: int | None
    keepalive_s: float | None
    grace_s: float


def watch() -> None:
    """The watchdog process: start the container, answer the launcher, enforce the max runtime
    and the lease, record the end. Its argv: the state directory and the fd to answer on."""
    paths, reply_fd = StateDir(Path(sys.argv[1])), int(sys.argv[2])
    hold_lock(paths.lock)
    sent = sys.stdin.buffer.read()
    if not sent:
        return  # abandoned: its launcher could not create the container
    plan: Plan = json.loads(sent)
    try:
        client = engine(plan["base_url"])
        client.start(plan["container"])
    except EngineError as exc:
        answer(reply_fd, {"error": str(exc)})
        raise SystemExit(1) from None
    answer(reply_fd, {"started": True})
    ended = threading.Event()
    stop = _Stopper(plan["base_url"], plan["container"], plan["grace_s"], ended)
    if plan["max_runtime_s"] is not None:
        limits = (paths, plan["max_runtime_s"], stop, ended)
        threading.Thread(target=_enforce_max_runtime, args=limits, daemon=True).start()
    if plan["keepalive_s"] is not None:
        lease = (paths, plan["keepalive_s"], stop, ended)
        threading.Thread(target=_enforce_keepalive, args=lease, daemon=True).start()
    code = _wait_for_end(client, plan["container"])
    ended.set()
    write_exit(paths.exit, _end_of(client, plan["container"], code, paths))


def _wait_for_end(client: EngineLike, container: str) -> int | None:
    """The container's exit status once it has ended; None if it was removed meanwhile."""
    while True:
        try:
            return client.wait(container)
        except EngineError:
            # The engine restarting: its containers end with it, and it says so once back.
            threading.Event().wait(ENGINE_RETRY_S)


def _end_of(client: EngineLike, container: str, code: int | None, paths: StateDir) -> ExitRecord:
    oom_killed = False
    # Only a failure asks more of the engine: a job that exited 0 succeeded, OOM kill or not
    # (of one of its processes), and its end is recorded the sooner.
    if code != 0:
        with contextlib.suppress(EngineError):
            oom_killed = bool(client.inspect(container)["State"]["OOMKilled"])
            # What the container printed outside the job's log: why the redirect failed, say.
            if stray := client.logs(container)[-_MAX_LOGS:]:
                with paths.log.open("ab") as log:
                    log.write(stray)
    return {
        "code": code,
        "signal": None,  # a container reports a death by signal N as 128 + N
        "timed_out": paths.timed_out.exists(),
        "stopped": paths.stopped.exists(),
        "oom_killed": oom_killed,
    }


class _Stopper:
    """Stops the container as ``stop()`` does: SIGTERM, the grace, SIGKILL."""

    def __init__(
        self, base_url: str | None, container: str, grace_s: float, ended: threading.Event
    ) -> None:
        self._base_url, self._container = base_url, container
        self._grace_s, self._ended = grace_s, ended

    def __call__(self) -> None:
        client = engine(self._base_url)  # its own: the SDK's may be busy with the wait
        client.kill(self._container, signal.SIGTERM)
        if not self._ended.wait(self._grace_s):
            client.kill(self._container, signal.SIGKILL)


def _enforce_max_runtime(
    paths: StateDir, max_runtime_s: int, stop: _Stopper, ended: threading.Event
) -> None:
    if ended.wait(max_runtime_s):
        return
    paths.timed_out.touch()
    stop()


def _enforce_keepalive(
    paths: StateDir, keepalive_s: float, stop: _Stopper, ended: threading.Event
) -> None:
    """Stop the job, as ``stop()`` would, once its lease has not changed for ``keepalive_s``."""
    if lease_expired(paths.keepalive, keepalive_s, ended):
        paths.stopped.touch()
        say(paths.log, unwatched(keepalive_s))
        stop()
