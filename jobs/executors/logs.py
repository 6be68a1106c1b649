"""Following a log file that a job is still writing, in bounded memory."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 256 * 1024


def follow(
    path: Path, finished: Callable[[], bool], chunk: int = CHUNK, poll_s: float = 0.02
) -> Iterator[bytes]:
    """The bytes of ``path`` from its start, as they are written, in chunks of at most
    ``chunk``; ends at the end of the file once ``finished()`` says no more will come."""
    with path.open("rb", buffering=0) as stream:
        while True:
            if data := stream.read(chunk):
                yield data
            elif finished():
                # What was written after the read above but before the end.
                while data := stream.read(chunk):
                    yield data
                return
            else:
                time.sleep(poll_s)
