"""Datasets and their versions: one resource class over the client, plus name parsing."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ferry.client import FerryClient
from ferry.errors import FerryError, NotFound
from ferry.trees_remote import TreeFiles


@dataclass(frozen=True)
class DatasetRef:
    """``name``, ``owner/name``, ``name/N`` or ``owner/name/N``; owner defaults to the user."""

    owner: str | None
    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> "DatasetRef":
        parts = text.strip("/").split("/")
        version: int | None = None
        # A trailing all-digit part is a version number: `mnist/2` is mnist's version 2.
        if len(parts) >= 2 and parts[-1].isdigit():
            version = int(parts.pop())
        if len(parts) == 1 and parts[0]:
            return cls(None, parts[0], version)
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1], version)
        raise FerryError(f"Give a dataset as NAME, OWNER/NAME or OWNER/NAME/VERSION, not {text!r}")


class Datasets:
    def __init__(self, client: FerryClient) -> None:
        self.client = client
        self._username: str | None = None

    def me(self) -> dict[str, Any]:
        user: dict[str, Any] = self.client.get("/user")
        self._username = user["username"]
        return user

    def owner_of(self, ref: DatasetRef) -> str:
        if ref.owner is not None:
            return ref.owner
        if self._username is None:
            self.me()
        assert self._username is not None
        return self._username

    def _base(self, ref: DatasetRef) -> str:
        return f"/datasets/{self.owner_of(ref)}/{ref.name}"

    # --- datasets -------------------------------------------------------------------------------

    def all(self, owner: str | None = None) -> list[dict[str, Any]]:
        return list(self.client.paginate("/datasets", {"owner": owner} if owner else None))

    def get(self, ref: DatasetRef) -> dict[str, Any]:
        dataset: dict[str, Any] = self.client.get(self._base(ref))
        return dataset

    def create(self, ref: DatasetRef, description: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"name": ref.name, "description": description}
        # Only a team is named as owner (see Jobs.project_get_or_create).
        if (
            ref.owner is not None
            and ref.owner.lower() != self.owner_of(DatasetRef(None, ref.name)).lower()
        ):
            body["owner"] = ref.owner
        dataset: dict[str, Any] = self.client.post("/datasets", body)
        return dataset

    def get_or_create(self, ref: DatasetRef) -> tuple[dict[str, Any], bool]:
        try:
            return self.get(ref), False
        except NotFound:
            return self.create(ref), True

    def delete(self, ref: DatasetRef) -> None:
        self.client.delete(self._base(ref))

    # --- versions -------------------------------------------------------------------------------

    def versions(self, ref: DatasetRef) -> list[dict[str, Any]]:
        """Newest first."""
        return list(self.client.paginate(f"{self._base(ref)}/versions"))

    def resolve_version(self, ref: DatasetRef) -> int:
        """The version ``ref`` names, or the dataset's latest."""
        if ref.version is not None:
            return ref.version
        latest = self.get(ref).get("latest_version")
        if latest is None:
            raise NotFound(
                f"{self.owner_of(ref)}/{ref.name} has no versions yet", status=404, code="empty"
            )
        return int(latest)

    def latest_version(self, ref: DatasetRef) -> dict[str, Any] | None:
        """The newest version's row, or None for a dataset with no versions; one request."""
        page = self.client.get(f"{self._base(ref)}/versions", {"page_size": 1})
        results: list[dict[str, Any]] = page["results"]
        return results[0] if results else None

    def version(self, ref: DatasetRef, number: int) -> dict[str, Any]:
        version: dict[str, Any] = self.client.get(f"{self._base(ref)}/versions/{number}")
        return version

    def commit_version(self, ref: DatasetRef, tree: str, message: str = "") -> dict[str, Any]:
        body = {"tree": tree, "message": message}
        version: dict[str, Any] = self.client.post(f"{self._base(ref)}/versions", body)
        return version

    def delete_version(self, ref: DatasetRef, number: int) -> None:
        self.client.delete(f"{self._base(ref)}/versions/{number}")

    # --- files ----------------------------------------------------------------------------------

    def listing(self, ref: DatasetRef, number: int, path: str = "") -> list[dict[str, Any]]:
        """One directory of a version: rows {path, name, kind, size, digest, mode}."""
        url = f"{self._base(ref)}/versions/{number}/files"
        return list(self.client.paginate(url, {"path": path.strip("/")}))

    def files(self, ref: DatasetRef, number: int) -> TreeFiles:
        """Version ``number``'s files, to list and download."""
        return TreeFiles(self.client, f"{self._base(ref)}/versions/{number}")

    def walk(self, ref: DatasetRef, number: int, path: str = "") -> Iterator[dict[str, Any]]:
        """Every file of a version under ``path``, ordered by path."""
        for page in self.files(ref, number).manifest_pages(path):
            yield from page
