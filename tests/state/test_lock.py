"""The lock with an owner token and an expiry, on both implementations."""

from __future__ import annotations

import asyncio

import pytest

from codexgate.state import LockLost, RedisState, SharedState, StateLock
from tests.services import RedisServer


async def test_of_many_contenders_exactly_one_owns_the_lock(state: SharedState) -> None:
    contenders = [state.lock("refresh:acct-1", ttl=5) for _ in range(20)]
    results = await asyncio.gather(*(lock.acquire() for lock in contenders))
    assert sum(results) == 1
    owner = contenders[results.index(True)]
    assert owner.held
    assert len({lock.token for lock in contenders}) == 20  # every lock object has its own owner token
    assert await owner.release() is True
    assert await contenders[0 if owner is not contenders[0] else 1].acquire() is True


async def test_a_crashed_holder_blocks_only_until_the_expiry(state: SharedState) -> None:
    crashed = state.lock("refresh:acct-2", ttl=0.3)
    assert await crashed.acquire()
    # the holder "crashes": it never releases nor extends
    waiting = state.lock("refresh:acct-2", ttl=5)
    assert await waiting.acquire() is False
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await waiting.acquire(wait=3) is True
    assert loop.time() - started < 2.0
    assert await crashed.release() is False  # the expired holder cannot release the new owner's lock
    assert await waiting.extend() is True


async def test_only_the_owner_releases_or_extends(state: SharedState) -> None:
    owner = state.lock("refresh:acct-3", ttl=5)
    intruder = state.lock("refresh:acct-3", ttl=5)
    assert await owner.acquire()
    assert await intruder.release() is False
    assert await intruder.extend() is False
    assert intruder.lost
    assert await intruder.acquire() is False  # still held by the owner
    assert await owner.release() is True
    assert await owner.release() is False  # already released


async def test_the_background_extender_keeps_a_slow_holders_lock(state: SharedState) -> None:
    contender = state.lock("refresh:acct-4", ttl=1.0)
    async with state.lock("refresh:acct-4", ttl=1.0).hold() as slow:
        for _ in range(10):  # 3 s of work, three times the ttl (extended every third of it)
            await asyncio.sleep(0.3)
            assert await contender.acquire() is False
        assert slow.held and not slow.lost
        slow.check()
    assert await contender.acquire() is True  # released on leaving the block


async def test_hold_waits_for_a_free_lock_or_times_out(state: SharedState) -> None:
    first = state.lock("refresh:acct-5", ttl=5)
    assert await first.acquire()
    with pytest.raises(TimeoutError):
        async with state.lock("refresh:acct-5", ttl=5).hold(wait=0.2):
            pytest.fail("entered a lock someone else holds")

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await first.release()

    releaser = asyncio.create_task(release_soon())
    async with state.lock("refresh:acct-5", ttl=5).hold(wait=3) as second:
        assert second.held
    await releaser


async def test_a_lock_that_expired_under_its_holder_is_reported_lost(state: SharedState) -> None:
    lock = state.lock("refresh:acct-6", ttl=0.2)
    # extend far less often than the ttl: the lock expires and another owner takes it
    async with lock.hold(extend_every=0.6) as held:
        await asyncio.sleep(0.3)
        thief = state.lock("refresh:acct-6", ttl=5)
        assert await thief.acquire()
        await asyncio.sleep(0.45)
        assert held.lost
        with pytest.raises(LockLost):
            held.check()  # what a refresh calls before spending its single-use token
    assert await thief.extend() is True  # leaving the block did not delete the new owner's lock


def test_a_lock_needs_a_positive_ttl() -> None:
    from codexgate.state import LocalState

    with pytest.raises(ValueError):
        StateLock(LocalState(), "x", 0)


async def test_two_instances_contending_for_one_refresh_lock(redis_server: RedisServer, redis_prefix: str) -> None:
    instances = [RedisState.from_url(redis_server.url, prefix=redis_prefix) for _ in range(3)]
    refreshes: list[int] = []

    async def refresh_once(instance_number: int) -> None:
        lock = instances[instance_number].lock("refresh:acct-7", ttl=2)
        if await lock.acquire():
            refreshes.append(instance_number)
            await asyncio.sleep(0.2)  # the refresh; everyone else arrives meanwhile and finds the lock taken
            await lock.release()

    try:
        await asyncio.gather(*(refresh_once(n % 3) for n in range(30)))
        assert len(refreshes) == 1
    finally:
        for instance in instances:
            await instance.close()
