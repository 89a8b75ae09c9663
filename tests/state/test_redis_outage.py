"""Redis stopped or stalled under a running client: clean errors quickly, working again within 5 s."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import pytest

from codexgate.state import CachedState, RedisState, StateUnavailable
from tests.services import RedisServer


@pytest.fixture
async def client(own_redis: RedisServer) -> AsyncIterator[RedisState]:
    state = RedisState.from_url(own_redis.url, prefix="outage:")
    try:
        yield state
    finally:
        await state.close()


async def timed(awaitable: asyncio.Future[object] | object) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StateUnavailable):
        await awaitable  # type: ignore[misc]
    return loop.time() - started


async def recovery_time(state: RedisState, within: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            await state.put("ns", "after", b"1")
            return loop.time() - started
        except StateUnavailable:
            if loop.time() - started > within:
                pytest.fail(f"Redis was back but the client did not recover within {within} s")
            await asyncio.sleep(0.05)


async def test_stopped_redis_fails_fast_then_recovers(
    own_redis: RedisServer, client: RedisState, caplog: pytest.LogCaptureFixture
) -> None:
    await client.put("ns", "before", b"1")  # the pool holds live connections now
    lock = client.lock("refresh:a", ttl=5)
    caplog.set_level(logging.WARNING, logger="codexgate.state")
    own_redis.stop()
    for operation in (
        client.get("ns", "before"),
        client.put("ns", "x", b"1"),
        client.incr("c"),
        client.scan("ns"),
        client.publish("ch", b"m"),
        lock.acquire(),
        client.subscribe("ch"),
    ):
        assert await timed(operation) < 1.5
    assert await client.health() is False
    assert not client.available
    down_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down_lines) == 1  # one log line per outage, not one per failed call
    assert own_redis.password not in caplog.text

    own_redis.start()
    assert await recovery_time(client) < 5.0
    assert await client.health() is True
    assert await lock.acquire() is True
    assert await lock.extend() is True  # the Lua scripts are loaded again into the restarted server
    assert await client.incr("c", 3, ttl=10) == 3
    assert await lock.release() is True
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1


async def test_a_stalled_redis_times_out_instead_of_hanging(own_redis: RedisServer, client: RedisState) -> None:
    await client.put("ns", "k", b"1")
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    try:
        assert await timed(client.get("ns", "k")) < 3.0
        assert await client.health() is False
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    assert await recovery_time(client) < 5.0
    assert await client.get("ns", "k") == b"1"


async def test_a_subscription_ends_with_state_unavailable_when_redis_goes(
    own_redis: RedisServer, client: RedisState
) -> None:
    subscription = await client.subscribe("changes")
    own_redis.stop()
    with pytest.raises(StateUnavailable):
        await asyncio.wait_for(anext(subscription), 3)
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)


async def test_the_cache_serves_what_it_knows_and_catches_up_after_a_restart(own_redis: RedisServer) -> None:
    states = [RedisState.from_url(own_redis.url, prefix="outage:") for _ in range(2)]
    mine, theirs = CachedState(states[0]), CachedState(states[1])
    try:
        assert await mine.start() and await theirs.start()
        await theirs.put("accounts", "a1", b"active")
        while mine.hits == 0:  # until the entry is cached here (after the invalidation of that write)
            assert await mine.get("accounts", "a1") == b"active"
            await asyncio.sleep(0.01)
        own_redis.stop()
        assert await mine.get("accounts", "a1") == b"active"  # requests go on with what this instance knows
        with pytest.raises(StateUnavailable):
            await mine.get("accounts", "never-read")
        own_redis.start()  # an empty Redis (no persistence): every entry is gone

        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:  # the other instance writes as soon as it can, maybe before this one resubscribed
            try:
                await theirs.put("accounts", "a1", b"cooling")
                break
            except StateUnavailable:
                await asyncio.sleep(0.05)
        while await _read(mine) != b"cooling":
            assert loop.time() - started < 5.0, "the cache still answers the pre-outage value"
            await asyncio.sleep(0.05)
    finally:
        for cache in (mine, theirs):
            await cache.close()
        for state in states:
            await state.close()


async def _read(cache: CachedState) -> bytes | None:
    try:
        return await cache.get("accounts", "a1")
    except StateUnavailable:
        return None


async def test_a_held_lock_is_reported_lost_when_it_could_not_be_extended(
    own_redis: RedisServer, client: RedisState
) -> None:
    async with client.lock("refresh:b", ttl=0.6).hold(extend_every=0.1) as held:
        own_redis.stop()
        await asyncio.sleep(1.2)  # longer than the ttl: another instance may own it by now
        assert held.lost and not held.held
        own_redis.start()
