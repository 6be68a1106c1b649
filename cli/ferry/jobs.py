"""Projects and their jobs: submit, read, follow the log, stop."""

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ferry.client import FerryClient
from ferry.errors import FerryError, NotFound
from ferry.trees_remote import TreeFiles

FINISHED = frozenset({"succeeded", "failed", "stopped", "lost"})
# How long one log request may wait on the server for new bytes (its maximum is 30 s).
FOLLOW_WAIT_S = 20


@dataclass(frozen=True)
class ProjectRef:
    owner: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> "ProjectRef":
        parts = text.strip("/").split("/")
        if len(parts) == 3 and parts[1] == "projects" and all(parts):
            return cls(parts[0], parts[2])
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1])
        if len(parts) == 1 and parts[0]:
            return cls(None, parts[0])
        raise FerryError(f"Give a project as NAME or OWNER/NAME, not {text!r}")


@dataclass(frozen=True)
class JobRef:
    project: ProjectRef | None  # None: the project this directory is linked to
    number: int

    @classmethod
    def parse(cls, text: str) -> "JobRef":
        """``N``, ``NAME/N``, ``OWNER/NAME/N`` or ``OWNER/projects/NAME/N``."""
        head, _, last = text.strip("/").rpartition("/")
        if not last.isdigit():
            raise FerryError(
                f"Give a job as N, OWNER/NAME/N or OWNER/projects/NAME/N, not {text!r}"
            )
        return cls(ProjectRef.parse(head) if head else None, int(last))


@dataclass(frozen=True)
class LogPiece:
    data: bytes
    next_offset: int
    finished: bool
    status: str


class Jobs:
    def __init__(self, client: FerryClient, username: Callable[[], str]) -> None:
        self.client = client
        self._username = username

    def project_path(self, project: ProjectRef) -> str:
        return f"/projects/{project.owner or self._username()}/{project.name}"

    def job_path(self, project: ProjectRef, number: int) -> str:
        return f"{self.project_path(project)}/jobs/{number}"

    # --- projects -------------------------------------------------------------------------------

    def project_get_or_create(self, project: ProjectRef) -> tuple[dict[str, Any], bool]:
        try:
            found: dict[str, Any] = self.client.get(self.project_path(project))
            return found, False
        except NotFound:
            body: dict[str, Any] = {"name": project.name}
            # Only a team is named as owner: one's own name is the default, and may be one the
            # server keeps from new namespaces (the embedded setup's "admin").
            if project.owner is not None and project.owner.lower() != self._username().lower():
                body["owner"] = project.owner
            created: dict[str, Any] = self.client.post("/projects", body)
            return created, True

    # --- jobs -----------------------------------------------------------------------------------

    def submit(self, project: ProjectRef, body: dict[str, Any]) -> dict[str, Any]:
        # One key per submit: if the answer is lost and httpx retries, the server makes one job.
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        job: dict[str, Any] = self.client.post(
            f"{self.project_path(project)}/jobs", body, headers=headers
        )
        return job

    def get(self, project: ProjectRef, number: int) -> dict[str, Any]:
        job: dict[str, Any] = self.client.get(self.job_path(project, number))
        return job

    def recent(self, project: ProjectRef, limit: int = 20) -> list[dict[str, Any]]:
        page = self.client.get(f"{self.project_path(project)}/jobs", {"page_size": limit})
        rows: list[dict[str, Any]] = page["results"]
        return rows

    def hosts(self) -> list[dict[str, Any]]:
        page = self.client.get("/hosts", {"page_size": 1000})
        rows: list[dict[str, Any]] = page["results"]
        return rows

    def output(self, project: ProjectRef, number: int) -> TreeFiles:
        """The files of the job's output, to list and download."""
        return TreeFiles(self.client, f"{self.job_path(project, number)}/output")

    def code(self, project: ProjectRef, number: int) -> TreeFiles:
        """The files of the code the job ran."""
        return TreeFiles(self.client, f"{self.job_path(project, number)}/code")

    def restart(self, project: ProjectRef, number: int, changes: dict[str, Any]) -> dict[str, Any]:
        job: dict[str, Any] = self.client.post(f"{self.job_path(project, number)}/restart", changes)
        return job

    def stop(self, project: ProjectRef, number: int) -> dict[str, Any]:
        job: dict[str, Any] = self.client.post(f"{self.job_path(project, number)}/stop", None)
        return job

    def log(self, project: ProjectRef, number: int, offset: int = 0, wait: float = 0) -> LogPiece:
        response = self.client.get_bytes(
            f"{self.job_path(project, number)}/logs",
            {"offset": offset, "wait": wait},
            timeout=wait + 30,
        )
        return LogPiece(
            response.content,
            int(response.headers["X-Ferry-Log-Offset"]),
            response.headers["X-Ferry-Log-Finished"] == "true",
            response.headers["X-Ferry-Job-Status"],
        )

    def follow(self, project: ProjectRef, number: int, offset: int = 0) -> Iterator[LogPiece]:
        """The log as it grows, until the job has ended and every byte has been read."""
        while True:
            piece = self.log(project, number, offset, wait=FOLLOW_WAIT_S)
            yield piece
            if piece.finished:
                return
            if not piece.data:
                time.sleep(0.05)  # the server already waited; this only bounds a busy loop
            offset = piece.next_offset
