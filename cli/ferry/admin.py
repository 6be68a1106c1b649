"""What site admins run: hosts and what they hold, draining, the queue, quotas."""

from typing import Any, Literal
from urllib.parse import quote

from ferry.client import FerryClient

QuotaKind = Literal["user", "team"]


class Admin:
    """The server's /admin API; every call is refused for anyone but a site admin."""

    def __init__(self, client: FerryClient) -> None:
        self.client = client

    def hosts(self) -> list[dict[str, Any]]:
        return list(self.client.paginate("/admin/hosts"))

    def drain(self, host: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.post(f"/admin/hosts/{quote(host, safe='')}/drain", None)
        return found

    def undrain(self, host: str) -> dict[str, Any]:
        path = f"/admin/hosts/{quote(host, safe='')}/undrain"
        found: dict[str, Any] = self.client.post(path, None)
        return found

    def queue(self) -> list[dict[str, Any]]:
        return list(self.client.paginate("/admin/queue"))

    def quotas(self) -> list[dict[str, Any]]:
        return list(self.client.paginate("/admin/quotas"))

    def quota(self, kind: QuotaKind, name: str) -> dict[str, Any]:
        """The quota in force: no limits (and share 1) where none is set."""
        found: dict[str, Any] = self.client.get(_quota_path(kind, name))
        return found

    def quota_set(self, kind: QuotaKind, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the whole quota: a limit left out of ``body`` is no limit."""
        found: dict[str, Any] = self.client.put(_quota_path(kind, name), body)
        return found

    def quota_clear(self, kind: QuotaKind, name: str) -> None:
        self.client.delete(_quota_path(kind, name))


def _quota_path(kind: QuotaKind, name: str) -> str:
    return f"/admin/quotas/{kind}s/{quote(name, safe='')}"
