"""Shared pool credentials across a Redis restart: a refresh whose store failed is kept and stored later,
and a Redis that comes back empty (no persistence) holds every account again, with the newest tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from codexgate.pool.accounts import account_key
from codexgate.state.secrets_box import version_of
from tests.fake_issuer import FakeIssuer
from tests.pool.test_shared_tokens import KEY, auth_document, eventually, instances, issuer, write_document
from tests.services import RedisServer, own_redis, redis_prefix, redis_server

__all__ = ["issuer", "own_redis", "redis_prefix", "redis_server"]


async def test_tokens_refreshed_while_redis_went_away_are_kept_and_stored_when_it_returns(
    own_redis: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    document = auth_document(expires_in=-60)
    issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    issuer.refresh_delay = 0.6
    write_document(tmp_path / "a" / "auth.json", document)
    async with instances(own_redis, "c1r:", [tmp_path / "a"], issuer.base_url) as (a,):
        request = asyncio.ensure_future(a.registry.credentials(KEY))
        await eventually(lambda: issuer.refresh_calls == 1, 3.0)  # the refresh token is being spent now
        own_redis.stop()
        refreshed = await request
        new_token = issuer.issued[-1]["access_token"]
        assert refreshed.access_token == new_token  # the spent token's successor is not lost
        manager = a.registry._manager(KEY)
        assert not getattr(manager, "saved", True)
        assert (await a.registry.credentials(KEY)).access_token == new_token  # served from memory meanwhile

        own_redis.start()

        async def stored() -> bool:
            loaded = await a.cluster.credentials.load_credentials(KEY)
            return loaded is not None and loaded["tokens"]["access_token"] == new_token

        assert await eventually(stored, 5.0) < 5.0
        assert getattr(manager, "saved", False)
        assert issuer.refresh_calls == 1


async def test_a_redis_back_empty_gets_every_account_again_with_the_newest_tokens(
    own_redis: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    document = auth_document(expires_in=3600, last_refresh="2026-11-30T12:00:00Z")
    issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    other = auth_document(account_id="acct_other", user_id="user_9", email="other@example.com")
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    write_document(home_a / "auth.json", document)
    write_document(home_a / "accounts" / "other.json", other)
    other_key = account_key("acct_other", "user_9")
    async with instances(own_redis, "c1r:", [home_a, home_b], issuer.base_url) as (a, b):
        first = await a.registry.credentials(KEY)
        refreshed = await a.registry.refresh_after_unauthorized(KEY, first)  # Redis: newer than the file
        await eventually(lambda: set(b.registry.accounts()) == {KEY, other_key}, 3.0)

        own_redis.stop()
        await eventually(lambda: not a.cluster.available and not b.cluster.available, 3.0)
        own_redis.start()  # no persistence: it comes back empty

        async def restored() -> bool:
            loaded = await b.cluster.credentials.load_credentials(KEY)
            return loaded is not None and await b.cluster.credentials.load_credentials(other_key) is not None

        assert await eventually(restored, 5.0) < 5.0
        loaded = await b.cluster.credentials.load_credentials(KEY)
        assert loaded is not None
        # the refreshed tokens came back, not the file's spent refresh token
        assert loaded["tokens"]["access_token"] == refreshed.access_token
        assert version_of(loaded) > version_of(document)
        assert (await b.registry.credentials(KEY)).access_token == refreshed.access_token
        assert set(b.registry.accounts()) == {KEY, other_key}
        assert issuer.refresh_calls == 1


async def test_an_account_removed_from_the_shared_state_is_not_stored_again_after_an_outage(
    own_redis: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    other = auth_document(account_id="acct_other", user_id="user_9", email="other@example.com")
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    write_document(home_a / "auth.json", auth_document(expires_in=3600))
    write_document(home_a / "accounts" / "other.json", other)
    other_key = account_key("acct_other", "user_9")
    async with instances(own_redis, "c1d:", [home_a, home_b], issuer.base_url) as (a, b):
        await eventually(lambda: set(b.registry.accounts()) == {KEY, other_key}, 3.0)
        # `accounts remove other` in a's home: its file, then the shared state
        (home_a / "accounts" / "other.json").unlink()
        assert await a.cluster.cache.delete(a.cluster.credentials.namespace, other_key)
        await eventually(lambda: other_key not in a.registry.accounts() and other_key not in b.registry.accounts())

        own_redis.stop()
        await eventually(lambda: not a.cluster.available and not b.cluster.available, 3.0)
        own_redis.start()  # back empty: both instances put back what they hold

        async def refilled() -> bool:
            return await b.cluster.credentials.load_credentials(KEY) is not None

        await eventually(refilled, 5.0)
        await asyncio.sleep(1.5)  # a pass of each instance after the refill
        assert await a.cluster.credentials.load_credentials(other_key) is None
        assert set(a.registry.accounts()) == set(b.registry.accounts()) == {KEY}


async def test_a_lock_held_past_the_wait_is_a_transient_refusal_not_a_refresh(
    own_redis: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    from codexgate.auth.oauth_client import AuthError, OAuthClient
    from codexgate.pool.shared_tokens import SharedTokenManager

    expired = auth_document(expires_in=-60)
    issuer.valid_refresh_tokens.add(expired["tokens"]["refresh_token"])
    write_document(tmp_path / "a" / "auth.json", expired)
    async with instances(own_redis, "c1r:", [tmp_path / "a"], issuer.base_url) as (a,):
        holder = a.cluster.state.lock(f"refresh:{KEY}", ttl=30.0)  # a live holder that takes long
        assert await holder.acquire()
        manager = SharedTokenManager(KEY, a.cluster, OAuthClient(issuer.base_url, "cid"), refresh_margin=300,
                                     lock_wait=0.3)  # fmt: skip
        try:
            with pytest.raises(AuthError) as waited:
                await manager.get()
            assert waited.value.code == "refresh_lock_timeout"  # the pool treats it as transient
            # a token still valid (inside the margin) is served meanwhile; after a 401 it is not
            inside = auth_document(expires_in=120, last_refresh="2026-12-01T00:00:00Z")
            assert await a.cluster.credentials.store_credentials(KEY, inside)
            await a.cluster.cache.invalidate(a.cluster.credentials.namespace, KEY)
            served = await manager.get()
            assert served.access_token == inside["tokens"]["access_token"]
            with pytest.raises(AuthError):
                await manager.refresh_after_unauthorized(served)
            assert issuer.refresh_calls == 0
        finally:
            await holder.release()
            await manager.aclose()


async def test_a_pass_that_finds_the_store_emptied_puts_the_accounts_back_instead_of_dropping_them(
    tmp_path: Path, issuer: FakeIssuer, redis_server: RedisServer, redis_prefix: str
) -> None:
    write_document(tmp_path / "a" / "accounts" / "work.json", auth_document())
    async with instances(redis_server, redis_prefix, [tmp_path / "a", tmp_path / "b"], issuer.base_url) as (_first, b):
        await eventually(lambda: KEY in b.registry.accounts())
        client = b.cluster.state.client  # type: ignore[attr-defined]
        for name in [n async for n in client.scan_iter(match=redis_prefix + "*")]:
            await client.delete(name)  # the store lost everything (a restart without persistence)
        shared = b.registry._shared
        assert shared is not None
        await shared.sync_once()  # the background pass, before any reconnect hook ran
        assert KEY in b.registry.accounts()  # not "every account was removed"
        assert await b.cluster.state.get("credentials", KEY) is not None  # put back for every instance
        assert (await b.registry.credentials(KEY)).access_token
