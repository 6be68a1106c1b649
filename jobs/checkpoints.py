"""A running job's output, kept while it runs: on ``ferry.checkpoint()`` and every few minutes.

Each checkpoint stores ``/ferry/output`` as it is and makes it the job's output
(``jobs.services.job_checkpoint_record``), so a job that crashes, is lost with its host, or is
stopped keeps what it had written by its last checkpoint; the job's end replaces it with the
final output. A periodic checkpoint is skipped while nothing in the output changed.

The job asks through its control directory (``$FERRY_CONTROL``, see ``ferry.checkpoint`` for
the two files); the agent looks once a beat and stores in a thread of its own, so heartbeats and
stop requests are never held up by a large upload. Everything the job wrote there is read as
untrusted: links are not followed, size is capped, junk is ignored.
"""

import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.db import close_old_connections
from ferry.checkpoint import ANSWER, REQUEST, read_json, write_whole

from blobs.models import Tree
from blobs.services import tree_store_directory
from jobs.services import job_checkpoint_record

logger = logging.getLogger(__name__)

#: The waits between attempts to store an output: a storage or database hiccup is retried,
#: three attempts in all, before the job is told its output could not be kept.
RETRY_DELAYS_S = (1.0, 4.0)
EMPTY = hashlib.sha256().hexdigest()  # the fingerprint of a directory with no files


def output_store(directory: Path, owner_id: int) -> Tree:
    """Store ``directory`` as a tree, trying again after a failure. The tree is recorded only
    once every byte is stored, so a failed attempt leaves no partial output behind."""
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None), start=1):
        try:
            return tree_store_directory(directory, owner_id=owner_id)
        except Exception as exc:
            if delay is None:
                raise
            logger.warning("storing %s failed (attempt %d): %s; retrying", directory, attempt, exc)
            close_old_connections()  # a broken connection is not reused for the retry
            time.sleep(delay)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def output_fingerprint(directory: Path) -> str:
    """Changes whenever a regular file under ``directory`` is added, removed, or rewritten."""
    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # removed while we looked: the next look sees it gone
            if stat.S_ISREG(info.st_mode):
                relative = path.relative_to(directory).as_posix()
                digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class Checkpoints:
    """The checkpoints of one running job; ``tick`` once a beat, ``close`` before its end."""

    def __init__(
        self,
        *,
        job_id: int,
        owner_id: int,
        output_dir: Path,
        control_dir: Path,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id, self.owner_id = job_id, owner_id
        self.output_dir, self.control_dir = output_dir, control_dir
        self.interval_s, self.clock = interval_s, clock
        self.last_at = clock()
        self.kept = EMPTY  # an empty output needs no checkpoint
        self.answered = 0  # the token of the last request answered
        self.thread: threading.Thread | None = None

    def tick(self) -> None:
        """Start a checkpoint if one was asked for, or is due, and none is under way."""
        if self.thread is not None and self.thread.is_alive():
            return
        token = self._requested()
        if not token and self.clock() - self.last_at < self.interval_s:
            return
        self.last_at = self.clock()
        self.thread = threading.Thread(
            target=self._keep, args=(token,), name=f"checkpoint-{self.job_id}", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        """Wait for a checkpoint under way, so it cannot land after the job's final output."""
        if self.thread is not None:
            self.thread.join()

    def _requested(self) -> int:
        request = read_json(self.control_dir / REQUEST)
        token = request.get("token") if request is not None else None
        if isinstance(token, int) and not isinstance(token, bool) and token > self.answered:
            return token
        return 0

    def _keep(self, token: int) -> None:
        try:
            fingerprint = output_fingerprint(self.output_dir)
            # Taken before storing: a file changed meanwhile makes the next look store again.
            if fingerprint != self.kept:
                job_checkpoint_record(self.job_id, output_store(self.output_dir, self.owner_id))
                self.kept = fingerprint
            self._answer(token, ok=True, error="")
        except Exception as exc:
            logger.exception("a checkpoint of job %s failed", self.job_id)
            self._answer(token, ok=False, error=str(exc) or type(exc).__name__)
        finally:
            close_old_connections()

    def _answer(self, token: int, *, ok: bool, error: str) -> None:
        if not token:
            return  # a periodic checkpoint: nobody waits for it
        try:
            write_whole(self.control_dir / ANSWER, {"token": token, "ok": ok, "error": error})
        except OSError:
            logger.warning("job %s's checkpoint answer could not be written", self.job_id)
        self.answered = token
