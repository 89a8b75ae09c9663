"""The shared key store on a real redis-server: several stores (= instances) see one set of keys."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from codexgate.state.interface import StateUnavailable
from codexgate.state.redis_state import RedisState
from codexgate.storage.api_keys import KeyStore, KeyStoreError
from codexgate.storage.shared_keys import SharedKeyStore
from tests.services import RedisServer, own_redis, redis_prefix, redis_server

__all__ = ["own_redis", "redis_prefix", "redis_server"]


class Instances:
    """Started stores (each with its own RedisState for the change channel), closed at the end."""

    def __init__(self, url: str, prefix: str, tmp_path: Path) -> None:
        self.url, self.prefix, self.tmp_path = url, prefix, tmp_path
        self.opened: list[tuple[SharedKeyStore, RedisState]] = []

    async def start(self, keys_file: Path | None = None, reload_interval: float = 2.0) -> SharedKeyStore:
        store = SharedKeyStore(self.url, prefix=self.prefix, path=keys_file, reload_interval=reload_interval)
        state = RedisState.from_url(self.url, prefix=self.prefix)
        await store.start(state)
        self.opened.append((store, state))
        return store

    def cli(self, keys_file: Path | None = None) -> SharedKeyStore:
        """A store as the CLI uses it: no start, every call reads Redis."""
        return SharedKeyStore(self.url, prefix=self.prefix, path=keys_file)

    async def close(self) -> None:
        for store, state in self.opened:
            await store.close()
            await state.close()


@pytest.fixture
async def instances(redis_server: RedisServer, redis_prefix: str, tmp_path: Path) -> AsyncIterator[Instances]:
    group = Instances(redis_server.url, redis_prefix, tmp_path)
    try:
        yield group
    finally:
        await group.close()


async def eventually(condition: Callable[[], bool], within: float) -> float:
    """Seconds until ``condition()`` held; fails after ``within``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"not true within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_key_created_and_revoked_elsewhere_is_seen_by_every_instance_within_one_second(
    instances: Instances,
) -> None:
    servers = [await instances.start() for _ in range(3)]
    assert not any(server.has_keys() for server in servers)
    cli = instances.cli()
    key = await asyncio.to_thread(cli.create, "laptop")
    for server in servers:
        await eventually(lambda s=server: s.verify(key) is not None, within=1.0)  # type: ignore[misc]
    assert await asyncio.to_thread(instances.cli().revoke, "laptop")
    for server in servers:
        await eventually(lambda s=server: s.verify(key) is None, within=1.0)  # type: ignore[misc]
    # hashes only: the key itself is nowhere in Redis
    client = servers[0]._client
    values = [client.get(name) for name in client.keys(instances.prefix + "*")]
    stored = b"".join(value if isinstance(value, bytes) else str(value or "").encode() for value in values)
    assert key.encode() not in stored


async def test_a_revocation_through_one_instance_reaches_the_others_without_the_periodic_reload(
    instances: Instances,
) -> None:
    first = await instances.start(reload_interval=60.0)
    second = await instances.start(reload_interval=60.0)
    key = await asyncio.to_thread(
        first.create,
        "ci",
    )
    await eventually(lambda: second.verify(key) is not None, within=1.0)
    assert await asyncio.to_thread(first.revoke, key_id := first.list()[0].id)
    assert first.verify(key) is None  # the writer's own mirror at once
    await eventually(lambda: second.verify(key) is None, within=1.0)
    assert second.get(key_id) is None


async def test_limits_updated_in_redis_reach_the_mirror(instances: Instances) -> None:
    from codexgate.storage.key_limits import KeyLimits

    server = await instances.start()
    key = await asyncio.to_thread(instances.cli().create, "bot")
    await eventually(lambda: server.verify(key) is not None, within=1.0)
    await asyncio.to_thread(instances.cli().update, "bot", KeyLimits(tokens_per_day=500))
    await eventually(lambda: (info := server.verify(key)) is not None and info.limits.tokens_per_day == 500, within=1.0)


def test_concurrent_writers_lose_no_change(redis_server: RedisServer, redis_prefix: str) -> None:
    stores = [SharedKeyStore(redis_server.url, prefix=redis_prefix) for _ in range(3)]
    errors: list[BaseException] = []

    def create(store: SharedKeyStore, start: int) -> None:
        try:
            for number in range(start, start + 8):
                store.create(f"key-{number}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(store, 100 * i)) for i, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    names = {info.name for info in SharedKeyStore(redis_server.url, prefix=redis_prefix).list()}
    assert names == {f"key-{100 * i + n}" for i in range(3) for n in range(8)}
    with pytest.raises(KeyStoreError, match="already exists"):
        stores[0].create("key-0")


async def test_the_local_keys_file_is_imported_once_and_never_over_existing_keys(
    instances: Instances, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    local = KeyStore(keys_file)
    old_key = local.create("from-file")
    first = await instances.start(keys_file)
    second = await instances.start(keys_file)
    assert first.verify(old_key) is not None
    assert second.verify(old_key) is not None
    assert await asyncio.to_thread(first.revoke, "from-file")
    await eventually(lambda: second.verify(old_key) is None, within=1.0)
    third = await instances.start(keys_file)  # Redis has a (now empty) document: nothing imported again
    assert not third.has_keys()
    assert third.verify(old_key) is None
    other_file = tmp_path / "other.json"
    KeyStore(other_file).create("elsewhere")
    assert [info.name for info in await asyncio.to_thread(instances.cli(other_file).list)] == []


async def test_redis_down_keeps_the_mirror_and_a_new_instance_fails_closed(own_redis: RedisServer) -> None:
    group = Instances(own_redis.url, "outage:", Path("."))
    try:
        first = await group.start(reload_interval=0.3)
        second = await group.start(reload_interval=0.3)
        revoked = await asyncio.to_thread(first.create, "revoked")
        valid = await asyncio.to_thread(first.create, "valid")
        assert await asyncio.to_thread(first.revoke, "revoked")
        await eventually(lambda: second.verify(revoked) is None and second.verify(valid) is not None, within=1.0)

        own_redis.stop()
        await asyncio.sleep(0.8)  # reloads fail meanwhile
        for server in (first, second):
            assert server.verify(revoked) is None
            assert server.verify(valid) is not None
            assert server.verify("cg-unknown") is None
        newcomer = await group.start(reload_interval=0.3)
        assert newcomer.has_keys()  # fail closed: never "no keys, everyone in"
        with pytest.raises(StateUnavailable) as refused:
            newcomer.verify(valid)
        assert (refused.value.status_code, refused.value.code) == (503, "state_unavailable")
        with pytest.raises(KeyStoreError, match="unreachable"):
            await asyncio.to_thread(group.cli().create, "during-outage")

        own_redis.start()  # no persistence: Redis comes back empty, an instance writes its mirror back
        # consistent within 5 s: the newcomer may first read the empty store, then the mirror written back
        await eventually(lambda: newcomer.loaded and newcomer.verify(valid) is not None, within=5.0)
        assert newcomer.verify(revoked) is None
        later = await asyncio.to_thread(group.cli().create, "after")
        for server in (first, second, newcomer):
            await eventually(lambda s=server: s.verify(later) is not None, within=1.0)  # type: ignore[misc]
            assert server.verify(valid) is not None
    finally:
        await group.close()
