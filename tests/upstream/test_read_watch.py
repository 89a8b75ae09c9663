"""ReadWatch: a read that waits ``timeout`` seconds fails; time not spent waiting never counts."""

from __future__ import annotations

import asyncio
import time

import pytest

from codexgate.upstream.read_watch import ReadWatch


class Reader:
    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.eof = False

    def set_exception(self, exc: BaseException) -> None:
        self.failures.append(exc)

    def exception(self) -> BaseException | None:
        return self.failures[-1] if self.failures else None

    def at_eof(self) -> bool:
        return self.eof


async def test_a_read_waiting_longer_than_the_timeout_fails() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.2)
    watch.start()
    watch.waiting_since = time.monotonic()
    await asyncio.sleep(0.35)
    watch.stop()
    assert watch.expired
    assert len(reader.failures) == 1 and isinstance(reader.failures[0], TimeoutError)
    assert "0.2 s" in str(reader.failures[0])


async def test_time_outside_a_wait_does_not_count() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.2)
    watch.start()
    await asyncio.sleep(0.35)  # the consumer is busy elsewhere (its own client is slow)
    for _ in range(6):  # then short waits, each well under the timeout
        watch.waiting_since = time.monotonic()
        await asyncio.sleep(0.05)
        watch.waiting_since = 0.0
    watch.stop()
    assert not watch.expired and reader.failures == []


async def test_stop_cancels_the_timer() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.1)
    watch.start()
    watch.waiting_since = time.monotonic()
    watch.stop()
    await asyncio.sleep(0.2)
    assert reader.failures == []


@pytest.mark.parametrize("timeout", [0.1, 0.3])
async def test_a_stall_fails_within_a_quarter_timeout_of_its_deadline(timeout: float) -> None:
    reader = Reader()
    failed = asyncio.Event()
    reader.set_exception = lambda exc: failed.set()  # type: ignore[method-assign]
    watch = ReadWatch(reader, timeout)
    watch.start()
    started = watch.waiting_since = time.monotonic()
    await asyncio.wait_for(failed.wait(), timeout * 3)
    elapsed = time.monotonic() - started
    watch.stop()
    assert timeout <= elapsed < timeout * 1.25 + 0.1, elapsed


async def test_the_timer_ends_with_the_stream_even_without_stop() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.1)
    watch.start()
    reader.eof = True  # read to its end, and nobody called stop()
    await asyncio.sleep(0.1)
    assert watch._timer is None
    watch.waiting_since = time.monotonic()
    await asyncio.sleep(0.15)
    assert reader.failures == []
