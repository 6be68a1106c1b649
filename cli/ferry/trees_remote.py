"""The files of a tree on the server: a dataset version's, or a job's output.

Both answer at ``<base>/manifest`` (a paged, flat list with signed download URLs) and
``<base>/files/<path>`` (one file); the download code needs nothing else.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ferry.client import FerryClient, quoted

MANIFEST_PAGE_SIZE = 1000  # the server's maximum for a manifest page


@dataclass(frozen=True)
class TreeFiles:
    client: FerryClient
    base: str  # e.g. /datasets/alice/mnist/versions/1 or /projects/alice/mnist/jobs/3/output

    def manifest_page(self, path: str = "", page_size: int = MANIFEST_PAGE_SIZE) -> dict[str, Any]:
        """The first page of the files at or under ``path`` (a file or a directory).

        Rows {path, name, kind, size, digest, mode, url}, by path; ``url`` is a signed storage
        URL, or None where the file comes from ``file_url``.
        """
        page: dict[str, Any] = self.client.get(
            f"{self.base}/manifest", {"path": path.strip("/"), "page_size": page_size}
        )
        return page

    def manifest_pages(self, path: str = "") -> Iterator[list[dict[str, Any]]]:
        """Every page of the manifest, fetched as the caller asks for the next."""
        page = self.manifest_page(path)
        while True:
            yield page["results"]
            if not page.get("next"):
                return
            page = self.client.get(page["next"])

    def file_url(self, path: str) -> str:
        return f"{self.base}/files/{quoted(path.strip('/'))}"
