"""Live updates leave from one sender thread per process: in order, without the caller
waiting, over the real Redis channel layer."""

import asyncio
import threading
import time

import pytest
from channels.layers import get_channel_layer

from core.realtime import group_send_soon, live_updates_drain

ready = threading.Event()  # the listener has joined the group


@pytest.fixture(autouse=True)
def _needs_redis(redis_url: str) -> None:
    """The channel layer is the test Redis."""


async def listen(group: str, count: int) -> list[int]:
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    got: list[int] = []
    ready.set()
    while len(got) < count:
        message = await asyncio.wait_for(layer.receive(channel), timeout=10)
        got.append(message["n"])
    return got


def test_updates_from_several_threads_arrive_each_in_its_order_and_drain_waits() -> None:
    received: list[list[int]] = []
    listener = threading.Thread(target=lambda: received.append(asyncio.run(listen("rt", 200))))
    ready.clear()
    listener.start()
    assert ready.wait(10)

    def send(first: int) -> None:
        for n in range(first, first + 100):
            group_send_soon("rt", {"type": "test.n", "n": n})

    started = time.perf_counter()
    senders = [threading.Thread(target=send, args=(first,)) for first in (0, 1000)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    put_s = time.perf_counter() - started

    assert live_updates_drain(timeout=10)
    listener.join(15)
    got = received[0]
    assert sorted(got) == [*range(100), *range(1000, 1100)]
    assert [n for n in got if n < 1000] == list(range(100))  # each thread's order kept
    assert [n for n in got if n >= 1000] == list(range(1000, 1100))
    assert put_s < 1.0  # 200 puts: callers never wait for Redis
