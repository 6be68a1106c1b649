"""The HTTP client: JSON in and out, bearer auth, and the server's errors as typed exceptions."""

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ferry.errors import ApiError, FerryError, NotFound, NotLoggedIn, Refused, TransferError

API = "/api/v1"
PAGE_SIZE = 200  # the server's maximum
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class FerryClient:
    """One server, one token. Thread-safe: the upload and clone pools share it."""

    def __init__(
        self, host: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.host = host.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.host, headers=headers, timeout=TIMEOUT, transport=transport
        )
        # Transfers go to presigned URLs (S3, or Ferry's own upload receiver); the URL is the
        # authority, and S3 refuses a request that carries a second one, so no token here.
        self._transfer = httpx.Client(timeout=TIMEOUT, transport=transport)

    def __enter__(self) -> "FerryClient":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._transfer.close()

    # --- JSON API -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """``path`` is under /api/v1 (or a full URL, as pagination's ``next`` is)."""
        response = self._send(method, path, json=json, params=params, headers=headers)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise FerryError(f"{self.host} sent something not JSON for {method} {path}") from exc

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        url = path if "://" in path else f"{API}{path}"
        wait = httpx.Timeout(timeout, connect=10.0) if timeout is not None else TIMEOUT
        try:
            response = self._http.request(
                method, url, json=json, params=params, headers=headers, timeout=wait
            )
        except httpx.HTTPError as exc:
            raise FerryError(f"Could not reach {self.host}: {exc}") from exc
        raise_for_error(response)
        return response

    def get_bytes(
        self, path: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> httpx.Response:
        """A GET whose answer is bytes, not JSON (a job's log): the response, checked."""
        return self._send("GET", path, params=params, timeout=timeout)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, json=json, headers=headers)

    def put(self, path: str, json: Any) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """Every row of a paginated list, following ``next``."""
        page = self.get(path, {**(params or {}), "page_size": PAGE_SIZE})
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.get(page["next"])

    # --- bytes ----------------------------------------------------------------------------------

    def put_bytes(self, url: str, headers: dict[str, str], data: bytes) -> None:
        """PUT to a target from the upload plan: absolute (S3) or a path on this server."""
        target = url if "://" in url else f"{self.host}{url}"
        try:
            response = self._transfer.put(target, content=data, headers=headers)
        except httpx.HTTPError as exc:
            raise TransferError(f"Upload failed: {exc}") from exc
        if response.status_code >= 300:
            raise TransferError(f"Upload refused by the storage ({response.status_code})")

    @contextmanager
    def download(self, path: str) -> Iterator[httpx.Response]:
        """Stream a file; the server answers with the bytes or a redirect to presigned S3."""
        url = f"{API}{path}"
        try:
            with self._http.stream("GET", url, follow_redirects=False) as response:
                if response.status_code not in (301, 302, 303, 307, 308):
                    if response.status_code >= 400:
                        response.read()
                        raise_for_error(response)
                    yield response
                    return
                location = response.headers["location"]
            with self._transfer.stream("GET", location) as response:
                if response.status_code >= 400:
                    raise TransferError(f"The storage refused a download ({response.status_code})")
                yield response
        except httpx.HTTPError as exc:
            raise TransferError(f"Download failed: {exc}") from exc

    @contextmanager
    def stream_url(
        self, url: str, byte_range: tuple[int, int] | None = None
    ) -> Iterator[httpx.Response]:
        """Stream a GET of an absolute, presigned URL; ``byte_range`` is (first, last) byte.

        Any status is yielded: the caller tells a 206 from a 200 (storage that ignores Range)
        and a 403 (an expired signature) from other refusals.
        """
        headers = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        try:
            with self._transfer.stream("GET", url, headers=headers) as response:
                yield response
        except httpx.HTTPError as exc:
            raise TransferError(f"Download failed: {exc}") from exc


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    code, message = "error", response.reason_phrase or "error"
    fields: dict[str, Any] = {}
    try:
        body = response.json()["error"]
        code, message, fields = body["code"], body["message"], body.get("fields") or {}
    except (ValueError, KeyError, TypeError):
        pass  # not Ferry's error body (a proxy's page, say): the status line says enough
    status = response.status_code
    if status == 401:
        raise NotLoggedIn(f"Not logged in: {message} (run `ferry login`)")
    if status == 404:
        raise NotFound(message, status=status, code=code, fields=fields)
    if status < 500:
        raise Refused(_with_fields(message, fields), status=status, code=code, fields=fields)
    raise ApiError(f"Server error ({status}): {message}", status=status, code=code, fields=fields)


def _with_fields(message: str, fields: dict[str, Any]) -> str:
    if not fields:
        return message
    details = "; ".join(f"{name}: {_flat(problem)}" for name, problem in fields.items())
    return f"{message} ({details})"


def _flat(problem: Any) -> str:
    if isinstance(problem, list):
        return " ".join(str(p) for p in problem)
    return str(problem)


def quoted(path: str) -> str:
    """A dataset file path made safe for a URL, keeping its slashes."""
    return quote(path, safe="/")
