"""Following a log file that a job is still writing, in bounded memory."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 256 * 1024


def follow(
    path: Path,
    finished: Callable[[], bool],
    chunk: int = CHUNK,
    poll_s: float = 0.02,
    idle_s: float = 0.5,
) -> Iterator[bytes]:
    """The bytes of ``path`` from its start, as they are written, in chunks of at most
    ``chunk``; ends at the end of the file once ``finished()`` says no more will come. While
    nothing is written it yields an empty chunk every ``idle_s``, so that a reader can act on
    time (flush what it holds) without a thread of its own."""
    with path.open("rb", buffering=0) as stream:
        yielded_at = time.monotonic()
        while True:
            if data := stream.read(chunk):
                yield data
                yielded_at = time.monotonic()
            elif finished():
                # What was written after the read above but before the end.
                while data := stream.read(chunk):
                    yield data
                return
            elif time.monotonic() - yielded_at >= idle_s:
                yield b""
                yielded_at = time.monotonic()
            else:
                time.sleep(poll_s)
