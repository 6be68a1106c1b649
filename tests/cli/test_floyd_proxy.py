"""`ferry floyd-proxy` against a stand-in server: what it forwards, how it streams, how it
rewrites a new upload's Location, and what it says when it cannot work. (The real floyd-local
through the proxy against Ferry is in tests/e2e/floyd/test_floyd_data.py.)"""

import hashlib
import http.client
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ferry.cli.context import Context
from ferry.cli.floyd_proxy import FloydProxy
from ferry.cli.main import main
from ferry.errors import FerryError


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body_sha256: str
    body_length: int


@dataclass
class StandIn:
    """A server that records each request and answers as the test says."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    location: str = ""
    body: bytes = b"{}"
    chunked: bool = False


@pytest.fixture
def upstream() -> Iterator[StandIn]:
    state = StandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.seen.append(
                Seen(self.command, self.path, dict(self.headers.items()),
                     hashlib.sha256(body).hexdigest(), len(body))
            )  # fmt: skip
            self.send_response(201 if state.location else 200)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Upload-Offset", str(length))
            self.send_header("Keep-Alive", "timeout=5")  # one hop only: must not pass
            if state.chunked:
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(state.body)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(state.body)

        do_GET = do_POST = do_PATCH = do_HEAD = do_DELETE = handle_one  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/base"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: StandIn) -> Iterator[FloydProxy]:
    running = FloydProxy(upstream.url, api_port=0, upload_port=0)
    running.start()
    yield running
    running.stop()


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_api_requests_reach_the_compat_api_with_their_bodies_whole(
    proxy: FloydProxy, upstream: StandIn
) -> None:
    body = secrets.token_bytes(6 * 1024 * 1024 + 17)
    upstream.body = b'{"id": "upload-1"}'

    response, data = request(
        proxy.api.server_port, "POST", "/api/v1/modules/?x=1", body,
        {"Authorization": "apikey k", "Content-Type": "application/json"},
    )  # fmt: skip

    assert (response.status, data) == (200, b'{"id": "upload-1"}')
    assert response.getheader("Keep-Alive") is None
    seen = upstream.seen[-1]
    assert (seen.method, seen.path) == ("POST", "/base/compat/floyd/api/v1/modules/?x=1")
    assert (seen.body_length, seen.body_sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert seen.headers["Authorization"] == "apikey k"
    assert seen.headers["Host"] == upstream.url.split("/")[2]


def test_a_new_uploads_location_points_back_through_the_proxy(
    proxy: FloydProxy, upstream: StandIn
) -> None:
    netloc = upstream.url.split("/")[2]
    upstream.location = f"https://{netloc}/base/compat/floyd/upload/upload-7"

    response, _ = request(proxy.upload.server_port, "POST", "/", b"", {"Upload-Length": "10"})

    assert response.status == 201
    assert response.getheader("Location") == f"http://127.0.0.1:{proxy.upload.server_port}/upload-7"
    assert upstream.seen[-1].path == "/base/compat/floyd/upload/"


def test_a_location_elsewhere_is_left_alone(proxy: FloydProxy, upstream: StandIn) -> None:
    upstream.location = "https://s3.example/bucket/blob?signature=abc"

    response, _ = request(proxy.api.server_port, "GET", "/api/v1/resources/data-1/f?content=true")

    assert response.getheader("Location") == "https://s3.example/bucket/blob?signature=abc"


def test_head_and_patch_to_an_upload_go_to_the_tus_endpoint(
    proxy: FloydProxy, upstream: StandIn
) -> None:
    head, _ = request(proxy.upload.server_port, "HEAD", "/upload-7")
    patch, _ = request(
        proxy.upload.server_port, "PATCH", "/upload-7", b"12345",
        {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip

    assert [(s.method, s.path) for s in upstream.seen] == [
        ("HEAD", "/base/compat/floyd/upload/upload-7"),
        ("PATCH", "/base/compat/floyd/upload/upload-7"),
    ]
    assert head.status == 200
    assert patch.getheader("Upload-Offset") == "5"


def test_a_body_of_unknown_length_is_relayed_to_its_end(
    proxy: FloydProxy, upstream: StandIn
) -> None:
    upstream.chunked = True
    upstream.body = secrets.token_bytes(3 * 1024 * 1024)

    response, data = request(proxy.api.server_port, "GET", "/api/v1/resources/data-1?download=true")

    assert response.status == 200
    assert data == upstream.body


def test_an_unreachable_server_is_a_502_that_says_which(upstream: StandIn) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening
        running = FloydProxy(dead, api_port=0, upload_port=0)
        running.start()
        try:
            response, data = request(running.api.server_port, "GET", "/api/v1/cli_version")
        finally:
            running.stop()

    assert response.status == 502
    assert dead.removeprefix("http://") in json.loads(data)["message"]


def test_a_taken_port_is_refused_with_what_to_do(upstream: StandIn) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FerryError, match=f"Cannot listen on 127.0.0.1:{port}.*stop whatever"):
            FloydProxy(upstream.url, api_port=0, upload_port=port)


def test_a_host_that_is_no_url_is_refused() -> None:
    with pytest.raises(FerryError, match="is not a server URL"):
        FloydProxy("ftp://ferry.example", api_port=0, upload_port=0)


def test_the_command_is_part_of_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["floyd-proxy", "--help"], Context(env={}))

    assert code == 0
    assert "floyd-local" in capsys.readouterr().out  # click prints help itself
