"""Push messages to websocket groups once the transaction that caused them has committed.

Live updates are a convenience on top of the database, which stays the truth: if the channel
layer is down the change still stands and clients catch up on their next read, so a failed send
is logged rather than raised.

Sending is off the caller's path. Each process has one sender thread with one event loop that
sends every update, in the order they were made. A send from sync code through
``async_to_sync`` would run a fresh event loop each time, and channels_redis keeps its
connections per loop, so each message would pay for a new connection (about 7 ms here) while
the job's agent or the request waited. One long-lived loop keeps its connections, and nobody
waits for it.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

Update = tuple[str, dict[str, Any]]


class _Sender:
    """The process's sender thread, started on first use (and again in a forked child, which
    does not inherit threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Update] | None = None
        self._pending = 0  # put but not yet sent
        self._sent = threading.Condition()

    def put(self, batch: Sequence[Update]) -> None:
        """Queue ``batch`` in its order. One wake-up of the loop for the whole batch: each one
        is a write to the loop's pipe and a switch of threads, which a pass that announces
        thousands of changes would otherwise pay per message."""
        if not batch:
            return
        loop, updates = self._started()
        with self._sent:
            self._pending += len(batch)
        loop.call_soon_threadsafe(_put_all, updates, list(batch))

    def drain(self, timeout: float) -> bool:
        """Wait until every update put so far was sent; False if that took over ``timeout``."""
        with self._sent:
            return self._sent.wait_for(lambda: self._pending == 0, timeout)

    def _started(self) -> tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Update]"]:
        with self._lock:
            if self._pid != os.getpid() or self._loop is None or self._queue is None:
                self._pending = 0  # a forked child's copy counts its parent's updates
                ready = threading.Event()
                threading.Thread(
                    target=self._run, args=(ready,), name="ferry-live-updates", daemon=True
                ).start()
                ready.wait()
                self._pid = os.getpid()
            assert self._loop is not None
            assert self._queue is not None
            return self._loop, self._queue

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop, self._queue = loop, asyncio.Queue()
        ready.set()
        loop.run_until_complete(self._send_forever(self._queue))

    async def _send_forever(self, updates: "asyncio.Queue[Update]") -> None:
        while True:
            group, message = await updates.get()
            await _send(group, message)
            with self._sent:
                self._pending -= 1
                self._sent.notify_all()


def _put_all(updates: "asyncio.Queue[Update]", batch: list[Update]) -> None:
    for update in batch:
        updates.put_nowait(update)


async def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()  # looked up each time: tests point it elsewhere
    if layer is None:
        return
    try:
        await layer.group_send(group, message)
    except Exception:
        logger.warning("Could not send a live update to %s", group, exc_info=True)


_sender = _Sender()


def group_send_soon(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` from the sender thread; returns at once."""
    _sender.put([(group, message)])


def group_send_many_soon(updates: Sequence[Update]) -> None:
    """Send each ``(group, message)`` of ``updates``, in order, from the sender thread."""
    _sender.put(updates)


def group_send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: group_send_soon(group, message))


def group_send_many_on_commit(updates: Sequence[Update]) -> None:
    """``group_send_on_commit`` for many messages: one callback for all, not one each."""
    batch = list(updates)  # the caller's list may change before the commit
    transaction.on_commit(lambda: group_send_many_soon(batch))


def live_updates_drain(timeout: float = 5.0) -> bool:
    """Wait until the updates this process made were sent (a command about to exit)."""
    return _sender.drain(timeout)
