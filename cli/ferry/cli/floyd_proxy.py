"""`ferry floyd-proxy`: the unmodified floyd-cli's ``floyd-local`` against a Ferry server.

floyd-cli sends data uploads (tus) to an address written into it: FloydHub's own for
``floyd``, http://127.0.0.1:1080 for the ``floyd-local`` it also installs, whose API is at
http://127.0.0.1:8080. This proxy listens on both and forwards to the server's FloydHub API
(``<host>/compat/floyd/``) and its tus endpoint (``<host>/compat/floyd/upload/``), streaming
bodies both ways and pointing the ``Location`` of a new upload back through itself.

Standard library only: it is a few hundred bytes of HTTP each way plus streamed bodies.
"""

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from urllib.parse import urlsplit

import click

from ferry.cli.context import Context
from ferry.config import normalise_host
from ferry.errors import FerryError

LISTEN = "127.0.0.1"
API_PORT, UPLOAD_PORT = 8080, 1080  # what floyd-local has written into it
API_PATH, UPLOAD_PATH = "/compat/floyd", "/compat/floyd/upload"
BUFFER = 1024 * 1024
UPSTREAM_TIMEOUT_S = 600  # a tar of a large dataset takes a while to start flowing
# Meaningful for one connection only (RFC 9110 7.6.1), never forwarded; Host is set anew.
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Upstream:
    """Where one listening port forwards to: ``scheme://netloc`` and a path prefix."""

    scheme: str
    netloc: str
    path: str

    def connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return kind(self.netloc, timeout=UPSTREAM_TIMEOUT_S)


@dataclass(frozen=True)
class Rewrite:
    """A server address (netloc and path prefix, any scheme) and the local one it stands for."""

    netloc: str
    path: str
    local: str

    def apply(self, location: str) -> str | None:
        parts = urlsplit(location)
        if parts.netloc != self.netloc or not _under(parts.path, self.path):
            return None
        rest = parts.path[len(self.path) :] or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.local}{rest}{query}"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class FloydProxy:
    """Both listeners; ``start`` serves them on threads, ``stop`` closes them. Port 0 picks
    a free port (for tests: floyd-local itself needs the defaults)."""

    def __init__(self, host: str, *, api_port: int = API_PORT, upload_port: int = UPLOAD_PORT):
        server = urlsplit(normalise_host(host))
        if server.scheme not in ("http", "https") or not server.netloc:
            raise FerryError(f"{host!r} is not a server URL: give one like https://ferry.example")
        base = server.path.rstrip("/")
        api = Upstream(server.scheme, server.netloc, base + API_PATH)
        upload = Upstream(server.scheme, server.netloc, base + UPLOAD_PATH)
        self.api = _listen(api_port, api)
        try:
            self.upload = _listen(upload_port, upload)
        except FerryError:
            self.api.server_close()
            raise
        # The longer prefix first: the upload path lies inside the API's.
        rewrites = (
            Rewrite(server.netloc, upload.path, f"http://{LISTEN}:{self.upload.server_port}"),
            Rewrite(server.netloc, api.path, f"http://{LISTEN}:{self.api.server_port}"),
        )
        for listener in self.servers:
            listener.rewrites = rewrites
        self.threads: list[threading.Thread] = []

    @property
    def servers(self) -> list["ProxyServer"]:
        return [self.api, self.upload]

    def start(self) -> None:
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join()


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream
    rewrites: tuple[Rewrite, ...] = ()


def _listen(port: int, upstream: Upstream) -> ProxyServer:
    try:
        server = ProxyServer((LISTEN, port), ForwardingHandler)
    except OSError as exc:
        raise FerryError(
            f"Cannot listen on {LISTEN}:{port} ({exc.strerror or exc}); floyd-local needs "
            "exactly that port: stop whatever holds it."
        ) from exc
    server.upstream = upstream
    return server


class ForwardingHandler(BaseHTTPRequestHandler):
    server: ProxyServer
    protocol_version = "HTTP/1.1"

    @property
    def upstream(self) -> Upstream:
        return self.server.upstream

    # http.server finds a method's handler by this name.
    def do_GET(self) -> None:
        self.forward()

    def do_HEAD(self) -> None:
        self.forward()

    def do_POST(self) -> None:
        self.forward()

    def do_PUT(self) -> None:
        self.forward()

    def do_PATCH(self) -> None:
        self.forward()

    def do_DELETE(self) -> None:
        self.forward()

    def do_OPTIONS(self) -> None:
        self.forward()

    def forward(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.fail(411, "Send a Content-Length: this proxy forwards no chunked bodies.")
            return
        connection = self.upstream.connection()
        try:
            try:
                response = self.send_upstream(connection)
            except (OSError, http.client.HTTPException) as exc:
                self.fail(502, f"ferry floyd-proxy could not reach {self.upstream.netloc}: {exc}")
                return
            try:
                self.relay(response)
            except (OSError, http.client.HTTPException):
                # Cut off mid-body: the client must see a broken response, not a short one.
                self.close_connection = True
        finally:
            connection.close()

    def send_upstream(self, connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
        connection.putrequest(
            self.command, self.upstream.path + self.path, skip_host=True, skip_accept_encoding=True
        )
        connection.putheader("Host", self.upstream.netloc)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                connection.putheader(name, value)
        connection.endheaders()
        for piece in _body(self.rfile, int(self.headers.get("Content-Length") or 0)):
            connection.send(piece)
        return connection.getresponse()

    def relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        for name, value in response.getheaders():
            if name.lower() in HOP_BY_HOP:
                continue
            if name.lower() == "location":
                value = self.local_location(value)
            self.send_header(name, value)
        if length is None and self.command != "HEAD" and response.status not in (204, 304):
            # No length to pass on: the end of the body is the end of the connection.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        while piece := response.read(BUFFER):
            self.wfile.write(piece)
        self.wfile.flush()

    def local_location(self, location: str) -> str:
        for rewrite in self.server.rewrites:
            local = rewrite.apply(location)
            if local is not None:
                return local
        return location  # elsewhere: a signed storage URL, say

    def fail(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # floyd-cli's output is what the user watches; keep the terminal for it


def _body(stream: BufferedIOBase, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        piece = stream.read(min(BUFFER, left))
        if not piece:
            raise ConnectionError(f"the client sent {length - left} of {length} bytes")
        left -= len(piece)
        yield piece


@click.command("floyd-proxy")
@click.option("--host", help="The Ferry server's URL; the one you logged in to if left out.")
@click.pass_obj
def floyd_proxy(ctx: Context, host: str | None) -> None:
    """Serve Ferry where floyd-local looks (127.0.0.1:8080 and :1080), until Ctrl-C."""
    server = host or ctx.config().host
    proxy = FloydProxy(server)
    proxy.start()
    ctx.out(f"Forwarding http://{LISTEN}:{API_PORT} to {server}{API_PATH}/")
    ctx.out(f"Forwarding http://{LISTEN}:{UPLOAD_PORT} to {server}{UPLOAD_PATH}/")
    ctx.out("Now use floyd-local as floyd: floyd-local login -k <Ferry token>, then")
    ctx.out("floyd-local data init NAME and floyd-local data upload. Ctrl-C stops.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        ctx.out("Stopped")
    finally:
        proxy.stop()
