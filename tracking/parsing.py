"""Metric lines in a job's output, FloydHub's way.

A job reports a metric by printing a line that is exactly one JSON object::

    {"metric": "accuracy", "value": 0.98}
    {"metric": "accuracy", "value": 0.98, "step": 3}
    {"metric": "accuracy", "value": 0.98, "epoch": 3}     # FloydHub's older form: epoch = step

Anything else is ordinary output and is ignored: parsing never fails on what a job prints.
"""

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TypeGuard

MAX_KEY_CHARS = 250  # Metric.key's max_length
MAX_STEP = 2**63 - 1  # Metric.step is a 64-bit integer
# A metric line is a few dozen bytes; a longer "line" is output (a dump, a progress bar with
# no newline) and is dropped unparsed, so a job printing without newlines cannot grow memory.
MAX_LINE_BYTES = 64 * 1024

_REQUIRED = frozenset({"metric", "value"})
_ALLOWED_KEYS = (_REQUIRED, _REQUIRED | {"step"}, _REQUIRED | {"epoch"})


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int | None  # None: the next step of its key, assigned when recorded
    timestamp: datetime | None = None  # None: when it is recorded


def parse_metric_line(line: bytes) -> MetricPoint | None:
    """The metric ``line`` reports, or None if it is not a metric line."""
    text = line.strip()
    # Most output is not JSON at all; skip the decoder for it.
    if len(text) > MAX_LINE_BYTES or not (text.startswith(b"{") and text.endswith(b"}")):
        return None
    try:
        found = json.loads(text)
    # ValueError covers bad JSON, bad UTF-8 and integers too long to convert; RecursionError,
    # deeply nested arrays.
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, dict) or set(found) not in _ALLOWED_KEYS:
        return None
    return _point(found)


def _point(found: dict[str, object]) -> MetricPoint | None:
    key, number = found["metric"], _finite_number(found["value"])
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS or number is None:
        return None
    named = "step" if "step" in found else "epoch" if "epoch" in found else None
    if named is None:
        return MetricPoint(key, number, None)
    step = found[named]
    return MetricPoint(key, number, step) if _is_step(step) else None


def _finite_number(value: object) -> float | None:
    # bool is an int in Python, but `true` is not a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        return None
    return number if math.isfinite(number) else None


def _is_step(step: object) -> TypeGuard[int]:
    return isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= MAX_STEP


class MetricLineParser:
    """Finds metric lines in output that arrives in chunks of any size.

    A line split across chunks is put back together; at most ``max_line`` bytes of an unfinished
    line are kept, and a line that grows beyond that is dropped up to its end.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._pending = bytearray()
        self._overlong = False  # inside a line already too long: drop up to its end

    def feed(self, data: bytes) -> list[MetricPoint]:
        """The points in the lines ``data`` completes."""
        # A carriage return ends a line too: progress bars redraw with it and never print a
        # newline, and a metric printed after one must not be glued to the bar.
        lines = data.replace(b"\r", b"\n").split(b"\n")
        unfinished = lines.pop()
        points = [p for p in map(self._complete, lines) if p is not None]
        self._keep(unfinished)
        return points

    def close(self) -> list[MetricPoint]:
        """The point on the last line, if the output ended without a newline."""
        point = self._complete(b"")
        return [point] if point is not None else []

    def _complete(self, end: bytes) -> MetricPoint | None:
        if self._overlong:
            self._overlong = False
            return None
        line = bytes(self._pending) + end if self._pending else end
        self._pending.clear()
        return parse_metric_line(line) if len(line) <= self.max_line else None

    def _keep(self, start: bytes) -> None:
        if self._overlong:
            return
        if len(self._pending) + len(start) > self.max_line:
            self._pending.clear()
            self._overlong = True
        else:
            self._pending += start


def json_number(value: float) -> float | str:
    """``value`` as JSON can carry it: a number, or "NaN", "Infinity", "-Infinity" (the
    strings protobuf's JSON uses, which MLflow's client, Ferry's API and float8 all read)."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def number_of(value: object) -> float | None:
    """The metric value a JSON value gives: a number (not true/false), or one of the strings
    ``json_number`` writes; None if it is neither."""
    # type(), not isinstance: true and false are ints to Python but not measurements.
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # an integer beyond float's range
            return None
    return _NON_FINITE.get(value) if type(value) is str else None
