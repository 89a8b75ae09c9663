"""Every SharedState method, on the in-process state and on a real Redis (the ``state`` fixture runs both)."""

from __future__ import annotations

import asyncio

import pytest

from codexgate.state import LocalState, RedisState, SharedState, StateUnavailable, open_state
from tests.services import RedisServer


async def test_both_implementations_satisfy_the_protocol(state: SharedState) -> None:
    assert isinstance(state, SharedState)
    assert await state.health() is True


async def test_map_put_get_delete(state: SharedState) -> None:
    assert await state.get("accounts", "a1") is None
    await state.put("accounts", "a1", b'{"status":"ok"}')
    assert await state.get("accounts", "a1") == b'{"status":"ok"}'
    await state.put("accounts", "a1", b"second")
    assert await state.get("accounts", "a1") == b"second"
    assert await state.get("other", "a1") is None  # namespaces are separate
    assert await state.delete("accounts", "a1") is True
    assert await state.get("accounts", "a1") is None
    assert await state.delete("accounts", "a1") is False


async def test_map_entries_expire_one_by_one(state: SharedState) -> None:
    await state.put("cooling", "short", b"1", ttl=0.2)
    await state.put("cooling", "long", b"2", ttl=30)
    await state.put("cooling", "forever", b"3")
    value, ttl = await state.get_with_ttl("cooling", "long")
    assert value == b"2" and ttl is not None and 25 < ttl <= 30
    assert await state.get_with_ttl("cooling", "forever") == (b"3", None)
    await asyncio.sleep(0.35)
    assert await state.get("cooling", "short") is None
    assert await state.get_with_ttl("cooling", "short") == (None, None)
    assert await state.scan("cooling") == {"long": b"2", "forever": b"3"}


async def test_scan_sees_only_its_namespace_and_keeps_odd_keys_whole(state: SharedState) -> None:
    odd = {"sess:1": b"a", "glob*[x]?": b"b", "back\\slash": b"c", "ünï": bytes(range(256))}
    for key, value in odd.items():
        await state.put("sticky", key, value)
    await state.put("stickyness", "x", b"not mine")
    await state.put("other", "y", b"not mine either")
    assert await state.scan("sticky") == odd
    assert await state.scan("empty") == {}


async def test_namespace_with_a_colon_is_refused(state: SharedState) -> None:
    with pytest.raises(ValueError):
        await state.put("a:b", "k", b"v")
    with pytest.raises(ValueError):
        await state.scan("")


async def test_put_if_newer_never_replaces_a_newer_entry(state: SharedState) -> None:
    assert await state.put_if_newer("creds", "a", b"v10", 10) is True
    assert await state.put_if_newer("creds", "a", b"v5", 5) is False
    assert await state.get("creds", "a") == b"v10"
    assert await state.put_if_newer("creds", "a", b"v10-again", 10) is True  # the same version may rewrite
    assert await state.put_if_newer("creds", "a", b"v11", 11) is True
    assert await state.get("creds", "a") == b"v11"
    assert await state.delete("creds", "a") is True
    assert await state.put_if_newer("creds", "a", b"v1", 1) is True  # after a delete, any version starts over
    await state.put("creds", "a", b"plain")  # a plain put forgets the version
    assert await state.put_if_newer("creds", "a", b"v0", 0) is True


async def test_counters_count_and_their_window_starts_at_creation(state: SharedState) -> None:
    assert await state.get_counter("budget:k1") == 0
    assert await state.incr("budget:k1") == 1
    assert await state.incr("budget:k1", 41) == 42
    assert await state.get_counter("budget:k1") == 42
    assert await state.incr("window", 1, ttl=0.3) == 1
    await asyncio.sleep(0.15)
    assert await state.incr("window", 1, ttl=0.3) == 2  # a later incr does not push the window out
    await asyncio.sleep(0.25)
    assert await state.get_counter("window") == 0
    assert await state.incr("window", 5, ttl=0.3) == 5


async def test_concurrent_increments_are_all_counted(state: SharedState) -> None:
    await asyncio.gather(*(state.incr("hits", 2) for _ in range(100)))
    assert await state.get_counter("hits") == 200


async def test_publish_reaches_every_subscriber_in_order(state: SharedState) -> None:
    first = await state.subscribe("changes")
    second = await state.subscribe("changes")
    other = await state.subscribe("elsewhere")
    try:
        assert await state.publish("changes", b"one") == 2
        assert await state.publish("changes", b"two") == 2
        for subscription in (first, second):
            received = [await asyncio.wait_for(anext(subscription), 2) for _ in range(2)]
            assert received == [b"one", b"two"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(other), 0.2)
    finally:
        await first.close()
        await second.close()
        await other.close()
    assert await state.publish("changes", b"three") == 0
    with pytest.raises(StopAsyncIteration):
        await anext(first)


async def test_open_state_picks_the_implementation(redis_server: RedisServer) -> None:
    assert isinstance(open_state(None), LocalState)
    remote = open_state(redis_server.url, prefix="open-state-test:")
    try:
        assert isinstance(remote, RedisState)
        assert await remote.health()
    finally:
        await remote.close()
    with pytest.raises(ValueError):
        open_state("http://127.0.0.1:1")


async def test_a_wrong_password_is_unavailable_not_a_crash(redis_server: RedisServer) -> None:
    wrong = RedisState.from_url(f"redis://:not-{redis_server.password}@127.0.0.1:{redis_server.port}/0")
    try:
        assert await wrong.health() is False
        with pytest.raises(StateUnavailable) as raised:
            await wrong.get("ns", "k")
        assert raised.value.status_code == 503 and raised.value.code == "state_unavailable"
        assert raised.value.headers["Retry-After"] == "1"
        assert redis_server.password not in str(raised.value)
    finally:
        await wrong.close()


async def test_keys_live_under_the_prefix(redis_state: RedisState) -> None:
    await redis_state.put("ns", "k", b"v", ttl=5)
    await redis_state.incr("c")
    keys = {key.decode() async for key in redis_state.client.scan_iter(match=redis_state.prefix + "*")}
    assert keys == {f"{redis_state.prefix}map:ns:k", f"{redis_state.prefix}ctr:c"}
