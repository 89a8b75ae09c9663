"""Budgets spent across instances: counters in a real redis-server, the check still in memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from codexgate.state.redis_state import RedisState
from codexgate.storage.api_keys import KeyInfo
from codexgate.storage.key_limits import KeyLimits
from codexgate.storage.shared_budgets import RPM_BUCKET_SECONDS, SharedBudgetTracker, shared_usage
from tests.services import RedisServer, own_redis, redis_prefix, redis_server

__all__ = ["own_redis", "redis_prefix", "redis_server"]

KEY = KeyInfo(id="key_abc", name="team", created_at=0.0, limits=KeyLimits(tokens_per_day=1000))
RPM_KEY = KeyInfo(id="key_rpm", name="burst", created_at=0.0, limits=KeyLimits(requests_per_minute=10))


class Trackers:
    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.opened: list[tuple[SharedBudgetTracker, RedisState]] = []

    async def start(self, **options: float) -> SharedBudgetTracker:
        state = RedisState.from_url(self.url, prefix=self.prefix)
        tracker = SharedBudgetTracker(state, budgeted_keys=lambda: [KEY, RPM_KEY], **options)
        await tracker.start()
        self.opened.append((tracker, state))
        return tracker

    async def close(self) -> None:
        for tracker, state in self.opened:
            await tracker.stop()
            await state.close()


@pytest.fixture
async def trackers(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[Trackers]:
    group = Trackers(redis_server.url, redis_prefix)
    try:
        yield group
    finally:
        await group.close()


async def eventually(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within} s")
        await asyncio.sleep(0.02)


def day_used(tracker: SharedBudgetTracker) -> int:
    return tracker.usage(KEY.id, time.time()).tokens["day"]


async def test_tokens_spent_on_two_instances_add_up_and_the_budget_holds_on_both(trackers: Trackers) -> None:
    first = await trackers.start()
    second = await trackers.start()
    now = time.time()
    first.record(KEY, 300, now)
    assert day_used(first) == 300  # counted locally at once
    second.record(KEY, 400, now)
    await eventually(lambda: day_used(first) == 700 and day_used(second) == 700, within=3.0)
    assert first.check(KEY, None, time.time()) is None
    first.record(KEY, 300, time.time())
    refused = None

    def second_refuses() -> bool:
        nonlocal refused
        refused = second.check(KEY, None, time.time())
        return refused is not None

    await eventually(second_refuses, within=3.0)
    assert refused is not None
    assert (refused.status_code, refused.code) == (429, "budget_exceeded")
    assert shared_usage(trackers.url, trackers.prefix, [KEY.id], time.time())[KEY.id].tokens["day"] == 1000


async def test_increments_land_in_redis_within_half_a_second_in_batches(trackers: Trackers) -> None:
    tracker = await trackers.start(refresh_interval=60.0)
    started = time.monotonic()
    for _ in range(50):
        tracker.record(KEY, 2, time.time())
    await eventually(
        lambda: shared_usage(trackers.url, trackers.prefix, [KEY.id], time.time())[KEY.id].tokens["month"] == 100,
        within=1.0,
    )
    assert time.monotonic() - started < 1.0


async def test_a_new_instance_reads_what_the_others_spent(trackers: Trackers) -> None:
    first = await trackers.start()
    first.record(KEY, 999, time.time())
    await first.push()
    late = await trackers.start(flush_interval=0.05)
    await eventually(lambda: day_used(late) == 999, within=1.0)


async def test_redis_down_counts_locally_and_sends_on_return(own_redis: RedisServer, tmp_path: Path) -> None:
    group = Trackers(own_redis.url, "budgets:")
    try:
        first = await group.start(refresh_interval=0.5)
        second = await group.start(refresh_interval=0.5)
        first.record(KEY, 100, time.time())
        await eventually(lambda: day_used(second) == 100, within=3.0)
        own_redis.stop()
        first.record(KEY, 50, time.time())
        second.record(KEY, 20, time.time())
        await asyncio.sleep(1.0)
        assert day_used(first) == 150  # local counting goes on
        assert day_used(second) == 120
        own_redis.start()  # comes back empty (no persistence): what waited is sent, totals meet again
        await eventually(lambda: day_used(first) == day_used(second) == 70, within=5.0)
    finally:
        await group.close()


def admitted(tracker: SharedBudgetTracker, count: int, now: float) -> int:
    """How many of ``count`` requests at ``now`` the tracker's check lets through."""
    return sum(tracker.check(RPM_KEY, None, now) is None for _ in range(count))


async def test_requests_per_minute_are_counted_across_instances(trackers: Trackers) -> None:
    # the background passes held off: each step below is one flush or one read of the totals
    first = await trackers.start(flush_interval=60.0, refresh_interval=60.0)
    second = await trackers.start(flush_interval=60.0, refresh_interval=60.0)
    now = time.time()
    assert admitted(first, 6, now) == 6
    await first.push()
    await second.refresh()  # reads the last minute's buckets of the keys with an RPM limit
    assert admitted(second, 10, now) == 4  # 6 elsewhere + 4 here = the key's 10
    refused = second.check(RPM_KEY, None, now)
    assert refused is not None and (refused.status_code, refused.code) == (429, "budget_exceeded")
    assert "10 of 10" in refused.message
    # the others' requests are known by bucket: the earliest they can leave the minute is the answer
    assert 60 - RPM_BUCKET_SECONDS <= int(refused.headers["Retry-After"]) <= 60
    await second.push()  # the answer to its increment is the cluster's total
    assert second.usage(RPM_KEY.id, now).requests_last_minute == 10
    assert shared_usage(trackers.url, trackers.prefix, [RPM_KEY.id], now)[RPM_KEY.id].requests_last_minute == 10
    await first.refresh()
    assert admitted(first, 3, now) == 0
    assert first.usage(RPM_KEY.id, now).requests_last_minute == 10


async def test_the_other_instances_requests_leave_the_minute_bucket_by_bucket(trackers: Trackers) -> None:
    first = await trackers.start(flush_interval=60.0, refresh_interval=60.0)
    second = await trackers.start(flush_interval=60.0, refresh_interval=60.0)
    start = time.time() // RPM_BUCKET_SECONDS * RPM_BUCKET_SECONDS  # a bucket's start: one bucket holds them
    assert admitted(first, 10, start + 1) == 10
    await first.push()
    await second.refresh()
    assert admitted(second, 1, start + 2) == 0
    # half that bucket lies in the minute before start + 65: half its requests still count
    assert admitted(second, 10, start + 65) == 5
    assert admitted(second, 10, start + 71) == 5  # its own five still count, the bucket no more
