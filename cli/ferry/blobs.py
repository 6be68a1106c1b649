"""The upload protocol's endpoints: missing, finish, trees."""

from typing import Any

from ferry.client import FerryClient

MAX_BLOBS_PER_REQUEST = 10_000
# Finishing makes the server check and move every blob in storage; smaller batches keep each
# request well inside the client's timeout for datasets of many files.
FINISH_BATCH = 1_000


def batches(items: list[Any], size: int = MAX_BLOBS_PER_REQUEST) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Blobs:
    def __init__(self, client: FerryClient) -> None:
        self.client = client

    def missing(self, blobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The upload plans of those blobs the user has not uploaded yet."""
        plans: list[dict[str, Any]] = []
        for batch in batches(blobs):
            plans.extend(self.client.post("/blobs/missing", {"blobs": batch})["missing"])
        return plans

    def finish(self, blobs: list[dict[str, Any]]) -> dict[str, str]:
        """Ask the server to check and keep what was sent; the failures, by digest."""
        failed: dict[str, str] = {}
        for batch in batches(blobs, FINISH_BATCH):
            failed.update(self.client.post("/blobs/finish", {"blobs": batch})["failed"])
        return failed

    def create_tree(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        tree: dict[str, Any] = self.client.post("/trees", {"entries": entries})
        return tree
