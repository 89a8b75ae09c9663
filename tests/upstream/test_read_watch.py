"""ReadWatch: a read that waits ``timeout`` seconds fails; time not spent waiting never counts.

Timing here is bounded from below only (a read never fails before its timeout); how soon it fails
is counted in the watch's checks (one each quarter timeout), which a loaded machine delays but
cannot multiply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from codexgate.upstream.read_watch import CHECKS_PER_TIMEOUT, ReadWatch

DEADLINE = 10.0  # how long a failing test waits for a condition; never a bound on a passing one


class Reader:
    """The stream reader the watch fails; it counts the watch's checks (each asks ``at_eof``)."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.failed_at: float | None = None
        self.eof = False
        self.checks = 0

    def set_exception(self, exc: BaseException) -> None:
        self.failures.append(exc)
        self.failed_at = time.monotonic()

    def exception(self) -> BaseException | None:
        return self.failures[-1] if self.failures else None

    def at_eof(self) -> bool:
        self.checks += 1
        return self.eof


async def until(condition: Callable[[], object], deadline: float = DEADLINE) -> bool:
    """Await until ``condition()`` is truthy; False after ``deadline`` seconds."""
    ends = time.monotonic() + deadline
    while not condition():
        if time.monotonic() >= ends:
            return False
        await asyncio.sleep(0.005)
    return True


async def test_a_read_waiting_longer_than_the_timeout_fails() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.2)
    watch.start()
    started = watch.waiting_since = time.monotonic()
    assert await until(lambda: reader.failures)
    watch.stop()
    assert watch.expired
    assert reader.failed_at is not None and reader.failed_at - started >= 0.2
    assert len(reader.failures) == 1 and isinstance(reader.failures[0], TimeoutError)
    assert "0.2 s" in str(reader.failures[0])


async def test_time_outside_a_wait_does_not_count() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.5)
    watch.start()
    started = time.monotonic()
    # the consumer is busy elsewhere (its own client is slow) for more than a timeout's worth of checks
    assert await until(lambda: reader.checks > CHECKS_PER_TIMEOUT + 1 and time.monotonic() - started > 0.5)
    for _ in range(6):  # then waits that end at once
        watch.waiting_since = time.monotonic()
        await asyncio.sleep(0)
        watch.waiting_since = 0.0
    checked = reader.checks
    assert await until(lambda: reader.checks >= checked + 2)  # the watch looked again after the waits
    watch.stop()
    assert not watch.expired and reader.failures == []


async def test_stop_cancels_the_timer() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.1)
    watch.start()
    watch.waiting_since = time.monotonic()
    watch.stop()
    await asyncio.sleep(0.3)  # three timeouts: a timer still running would have failed the reader
    assert reader.failures == [] and reader.checks == 0


@pytest.mark.parametrize("timeout", [0.1, 0.3])
async def test_a_stall_fails_at_the_first_check_past_its_deadline(timeout: float) -> None:
    reader = Reader()
    watch = ReadWatch(reader, timeout)
    watch.start()
    started = watch.waiting_since = time.monotonic()
    assert await until(lambda: reader.failures)
    watch.stop()
    assert reader.failed_at is not None and reader.failed_at - started >= timeout
    # checks every quarter timeout: the deadline passes by the fourth, the fifth at the latest sees it
    assert reader.checks <= CHECKS_PER_TIMEOUT + 1, reader.checks


async def test_the_timer_ends_with_the_stream_even_without_stop() -> None:
    reader = Reader()
    watch = ReadWatch(reader, 0.1)
    watch.start()
    reader.eof = True  # read to its end, and nobody called stop()
    assert await until(lambda: reader.checks >= 1)  # the watch saw the end ...
    checked = reader.checks
    watch.waiting_since = time.monotonic()
    await asyncio.sleep(0.3)  # three timeouts, a dozen check periods
    assert reader.checks == checked  # ... and stopped looking
    assert reader.failures == []
