"""The read-through cache: hits stay local, pub/sub invalidations reach every instance within a second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from codexgate.state import CachedState, LocalState, RedisState
from tests.services import RedisServer


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> float:
    """Poll ``check`` until true; the seconds it took (fails past ``within``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > within:
            pytest.fail(f"not true within {within} s")
        await asyncio.sleep(0.01)
    return loop.time() - started


@pytest.fixture
async def two_instances(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[tuple[CachedState, CachedState]]:
    """Two gateway instances: each its own Redis client and its own cache, one shared prefix."""
    states = [RedisState.from_url(redis_server.url, prefix=redis_prefix) for _ in range(2)]
    caches = [CachedState(state) for state in states]
    for cache in caches:
        assert await cache.start()
    try:
        yield caches[0], caches[1]
    finally:
        for cache in caches:
            await cache.close()
        for state in states:
            await state.close()


async def test_a_hit_is_answered_without_the_store(two_instances: tuple[CachedState, CachedState]) -> None:
    first, _ = two_instances
    await first.state.put("keys", "k1", b"active")
    assert await first.get("keys", "k1") == b"active"
    # change the entry behind the cache's back (no invalidation): a hit still answers what it read
    await first.state.put("keys", "k1", b"changed silently")
    assert await first.get("keys", "k1") == b"active"
    assert (first.hits, first.misses) == (1, 1)
    await first.invalidate("keys", "k1")
    assert await first.get("keys", "k1") == b"changed silently"


async def test_a_write_on_one_instance_reaches_the_other_within_a_second(
    two_instances: tuple[CachedState, CachedState],
) -> None:
    first, second = two_instances
    await first.put("accounts", "a1", b"ok")
    assert await second.get("accounts", "a1") == b"ok"
    assert await second.get("revoked", "key-9") is None  # absence is cached too
    await first.put("accounts", "a1", b"cooling")
    await first.put("revoked", "key-9", b"1")

    async def second_sees_both() -> bool:
        return await second.get("accounts", "a1") == b"cooling" and await second.get("revoked", "key-9") == b"1"

    assert await eventually(second_sees_both, within=1.0) < 1.0
    await first.delete("revoked", "key-9")
    await eventually(lambda: _is_none(second.get("revoked", "key-9")), within=1.0)


async def _is_none(value: Awaitable[bytes | None]) -> bool:
    return await value is None


async def test_put_if_newer_through_the_cache(two_instances: tuple[CachedState, CachedState]) -> None:
    first, second = two_instances
    assert await first.put_if_newer("creds", "a", b"v2", 2)
    assert await second.get("creds", "a") == b"v2"
    assert not await second.put_if_newer("creds", "a", b"v1", 1)
    assert await first.put_if_newer("creds", "a", b"v3", 3)
    await eventually(lambda: _equals(second.get("creds", "a"), b"v3"), within=1.0)


async def _equals(value: Awaitable[bytes | None], expected: bytes) -> bool:
    return await value == expected


async def test_cached_entries_expire_with_the_stored_entry(two_instances: tuple[CachedState, CachedState]) -> None:
    first, _ = two_instances
    await first.put("cooldowns", "a1", b"until-reset", ttl=0.3)
    assert await first.get("cooldowns", "a1") == b"until-reset"
    assert await first.get("cooldowns", "a1") == b"until-reset"
    assert first.hits == 1
    await asyncio.sleep(0.4)
    assert await first.get("cooldowns", "a1") is None


class SlowReads(LocalState):
    """A local state whose reads wait for a signal, to line an invalidation up inside a read."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def get_with_ttl(self, namespace: str, key: str) -> tuple[bytes | None, float | None]:
        answer = await super().get_with_ttl(namespace, key)
        self.reading.set()
        await self.gate.wait()
        return answer


async def test_a_read_racing_an_invalidation_does_not_cache_the_old_value() -> None:
    store = SlowReads()
    cache = CachedState(store)
    assert await cache.start()
    try:
        await store.put("ns", "k", b"old")
        reader = asyncio.create_task(cache.get("ns", "k"))
        await store.reading.wait()  # the read has its answer ("old") but has not stored it yet
        await store.put("ns", "k", b"new")
        await store.publish(cache.channel, b"another-instance ns:k")
        await asyncio.sleep(0.05)  # the listener handles the invalidation
        store.gate.set()
        assert await reader == b"old"  # that read began before the write: it may answer the old value ...
        assert await cache.get("ns", "k") == b"new"  # ... but never leaves it in the cache
    finally:
        await cache.close()


async def test_nothing_is_cached_before_the_listener_subscribed() -> None:
    store = LocalState()
    cache = CachedState(store)  # not started: no invalidations would arrive
    await store.put("ns", "k", b"one")
    assert await cache.get("ns", "k") == b"one"
    await store.put("ns", "k", b"two")
    assert await cache.get("ns", "k") == b"two"
    assert cache.hits == 0
