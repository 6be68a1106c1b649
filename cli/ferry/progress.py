"""A small byte-counting progress bar for stderr: bytes done, total and rate.

Drawn only on a terminal, so logs and tests are not filled with carriage returns.
"""

import threading
import time
from types import TracebackType
from typing import TextIO

REDRAW_SECONDS = 0.1


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Thread-safe: the transfer pool's workers all call ``advance``."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn = 0.0
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.enabled and not self._closed:
            self._closed = True
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if self.enabled and now - self._drawn >= REDRAW_SECONDS:
                self._drawn = now
                self._draw()

    def _draw(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        share = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(share * width)
        line = (
            f"\r{self.label} [{bar:<{width}}] {human(self.done)} / {human(self.total)}"
            f"  {human(self.done / elapsed)}/s"
        )
        self.stream.write(line)
        self.stream.flush()
