"""Pool credentials shared by several instances through a real Redis: one refresh per account cluster-wide.

Each "instance" is an :class:`AccountRegistry` with its own :class:`Cluster` (its own Redis connections,
cache and pub/sub listener) and its own home directory; they share one redis-server and one fake issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from codexgate.pool.account_files import PoolPaths
from codexgate.pool.accounts import account_key
from codexgate.pool.registry import AccountRegistry
from codexgate.state import RedisState, SecretBox, StateUnavailable
from codexgate.state.cluster import Cluster
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import make_jwt
from tests.services import RedisServer, own_redis, redis_prefix, redis_server

__all__ = ["own_redis", "redis_prefix", "redis_server"]

# Deriving a key costs tens of milliseconds (scrypt): one box for every instance of every test.
BOX = SecretBox("c1-shared-tokens-test-key-" + "k" * 16)
KEY = account_key("acct_test_123", "user_1")


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


def auth_document(
    *,
    account_id: str = "acct_test_123",
    user_id: str = "user_1",
    email: str = "dev@example.com",
    expires_in: float = 3600,
    refresh_token: str | None = None,
    last_refresh: str = "2026-11-24T00:00:00Z",
) -> dict[str, Any]:
    """An auth.json document with tokens unique to this call (so a scan can look for them)."""
    claims = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "team", "chatgpt_user_id": user_id}
    exp = int(time.time() + expires_in)
    nonce = secrets.token_hex(8)
    return {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": make_jwt({"exp": exp, "email": email, "https://api.openai.com/auth": claims}),
            "access_token": make_jwt({"exp": exp, "https://api.openai.com/auth": claims, "nonce": nonce}),
            "refresh_token": refresh_token or f"rt_{nonce}",
            "account_id": account_id,
        },
        "last_refresh": last_refresh,
    }


def write_document(path: Path, document: dict[str, Any]) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path.read_bytes()


class Instance:
    def __init__(self, registry: AccountRegistry, cluster: Cluster) -> None:
        self.registry = registry
        self.cluster = cluster


@asynccontextmanager
async def instances(
    server: RedisServer, prefix: str, homes: list[Path], issuer_url: str, box: SecretBox = BOX
) -> AsyncIterator[list[Instance]]:
    """Started instances, one per home (started in order: the first imports before the next starts)."""
    started: list[Instance] = []
    try:
        for home in homes:
            cluster = Cluster(RedisState.from_url(server.url, prefix=prefix), box, probe_interval=0.1)
            await cluster.start()
            registry = AccountRegistry(
                PoolPaths(home=home, codex_file=home / "codex" / "auth.json"),
                issuer=issuer_url,
                client_id="cid",
                refresh_margin=300,
                cluster=cluster,
            )
            started.append(Instance(registry, cluster))
            await registry.start()
        yield started
    finally:
        for instance in started:
            await instance.registry.aclose()
            await instance.cluster.close()


async def eventually(condition: Any, timeout: float = 5.0) -> float:
    """Seconds until ``condition()`` (sync or async) is true; fails after ``timeout``."""
    start = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_many_concurrent_requests_over_three_instances_spend_one_refresh(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    document = auth_document(expires_in=-60)
    issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    issuer.refresh_delay = 0.2  # a slow issuer: every instance's requests arrive while the refresh runs
    homes = [tmp_path / name for name in ("a", "b", "c")]
    file_bytes = write_document(homes[0] / "auth.json", document)
    async with instances(redis_server, redis_prefix, homes, issuer.base_url) as (a, b, c):
        for instance in (b, c):  # the empty homes list the account the first instance imported
            assert list(instance.registry.accounts()) == [KEY]
        results = await asyncio.gather(
            *(instance.registry.credentials(KEY) for _ in range(20) for instance in (a, b, c))
        )
        assert issuer.refresh_calls == 1
        new_token = issuer.issued[-1]["access_token"]
        assert {credentials.access_token for credentials in results} == {new_token}
        assert sum(instance.registry._manager(KEY).refresh_count for instance in (a, b, c)) == 1
        # later requests on every instance: the new token, no refresh
        for instance in (a, b, c):
            assert (await instance.registry.credentials(KEY)).access_token == new_token
        assert issuer.refresh_calls == 1
    assert (homes[0] / "auth.json").read_bytes() == file_bytes  # nothing written back to the file
    assert sorted(path.name for path in homes[1].rglob("*.json")) == ["state.json"]  # no credential file made


async def test_a_refresh_by_one_instance_is_what_the_next_request_on_another_uses(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    document = auth_document(expires_in=3600)
    issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    homes = [tmp_path / "a", tmp_path / "b"]
    write_document(homes[0] / "accounts" / "work.json", document)
    async with instances(redis_server, redis_prefix, homes, issuer.base_url) as (a, b):
        old = await b.registry.credentials(KEY)  # B holds the old token in memory
        assert old.access_token == document["tokens"]["access_token"]
        refreshed = await a.registry.refresh_after_unauthorized(KEY, await a.registry.credentials(KEY))
        assert refreshed.access_token == issuer.issued[-1]["access_token"] != old.access_token
        # B's next request sees it (pub/sub drops B's copy); a 401 on B's old token takes it without a refresh
        assert (await b.registry.refresh_after_unauthorized(KEY, old)).access_token == refreshed.access_token
        assert (await b.registry.credentials(KEY)).access_token == refreshed.access_token
        assert issuer.refresh_calls == 1
        # and A's refreshed tokens are used by B's own refresh later (the rotated refresh token)
        again = await b.registry.refresh_after_unauthorized(KEY, refreshed)
        assert issuer.refresh_calls == 2 and issuer.used_refresh_tokens >= {document["tokens"]["refresh_token"]}

        async def a_has_it() -> bool:  # A's next requests use B's refresh (pub/sub), without one of their own
            return (await a.registry.credentials(KEY)).access_token == again.access_token

        await eventually(a_has_it, 2.0)
        assert issuer.refresh_calls == 2


async def test_a_dead_lock_holder_delays_the_refresh_only_until_its_lock_expires(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    document = auth_document(expires_in=-60)
    issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    write_document(tmp_path / "a" / "auth.json", document)
    async with instances(redis_server, redis_prefix, [tmp_path / "a"], issuer.base_url) as (a,):
        # an instance took the refresh lock and died: never extended, never released
        abandoned = a.cluster.state.lock(f"refresh:{KEY}", ttl=1.0)
        assert await abandoned.acquire()
        started = time.monotonic()
        credentials = await a.registry.credentials(KEY)
        waited = time.monotonic() - started
        assert credentials.access_token == issuer.issued[-1]["access_token"]
        assert issuer.refresh_calls == 1
        assert 0.8 <= waited < 5.0  # it waited for the expiry, and not much longer


async def test_older_credentials_never_replace_newer_and_a_newer_file_does(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    first = auth_document(last_refresh="2026-11-30T12:00:00Z")
    write_document(home_a / "auth.json", first)
    async with instances(redis_server, redis_prefix, [home_a, home_b], issuer.base_url) as (a, b):
        store = a.cluster.credentials
        assert await store.load_credentials(KEY) == first
        shared = a.registry._shared
        assert shared is not None
        # an older file (a copy from before) is not imported over the newer credentials
        older = auth_document(last_refresh="2026-11-30T11:00:00Z")
        write_document(home_a / "auth.json", older)
        a.registry.reload()
        assert await shared.import_files() == 0
        assert await store.load_credentials(KEY) == first
        # nor is an older document written by another instance
        assert await b.cluster.credentials.store_credentials(KEY, older) is False
        # a newer file (a new login) replaces them, and the other instance serves it
        newer = auth_document(last_refresh="2026-11-30T13:00:00Z")
        write_document(home_a / "auth.json", newer)
        a.registry.reload()
        assert await shared.import_files() == 1
        assert await store.load_credentials(KEY) == newer
        token = newer["tokens"]["access_token"]
        assert (await b.registry.credentials(KEY)).access_token == token
        # the background pass imports a changed file by itself too
        newest = auth_document(last_refresh="2026-11-30T14:00:00Z")
        write_document(home_a / "auth.json", newest)
        await eventually(lambda: _loaded(store, newest), 4.0)
    assert issuer.refresh_calls == 0


async def _loaded(store: Any, document: dict[str, Any]) -> bool:
    return bool(await store.load_credentials(KEY) == document)


async def test_redis_down_serves_valid_tokens_refuses_refreshes_and_recovers(
    own_redis: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    inside_margin = auth_document(expires_in=120)  # still valid, but due for a refresh (margin 300 s)
    expired = auth_document(account_id="acct_expired", user_id="user_2", email="late@example.com", expires_in=-60)
    for document in (inside_margin, expired):
        issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    home = tmp_path / "a"
    write_document(home / "accounts" / "valid.json", inside_margin)
    write_document(home / "accounts" / "expired.json", expired)
    expired_key = account_key("acct_expired", "user_2")
    async with instances(own_redis, "c1:", [home], issuer.base_url) as (a,):
        registry = a.registry
        assert set(registry.accounts()) == {KEY, expired_key}
        own_redis.stop()
        await eventually(lambda: not a.cluster.available, 3.0)

        served = await registry.credentials(KEY)  # valid: serves without a refresh
        assert served.access_token == inside_margin["tokens"]["access_token"]
        with pytest.raises(StateUnavailable) as refused:
            await registry.credentials(expired_key)
        error = refused.value
        assert (error.status_code, error.code, error.headers.get("Retry-After")) == (503, "state_unavailable", "1")
        with pytest.raises(StateUnavailable):  # a 401 cannot be fixed without a refresh either
            await registry.refresh_after_unauthorized(KEY, served)
        assert issuer.refresh_calls == 0
        assert set(registry.accounts()) == {KEY, expired_key}  # the pool keeps its accounts

        own_redis.start()
        took = await eventually(lambda: _refreshes(registry, expired_key), 5.0)
        assert took < 5.0
        assert issuer.refresh_calls == 1
        fresh = await registry.credentials(KEY)  # the valid one is refreshed now too
        assert fresh.access_token != inside_margin["tokens"]["access_token"] and issuer.refresh_calls == 2


async def _refreshes(registry: AccountRegistry, key: str) -> bool:
    try:
        await registry.credentials(key)
    except StateUnavailable:
        return False
    return True


async def test_no_token_in_plaintext_in_redis(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    document = auth_document(expires_in=-60)
    issuer.valid_refresh_tokens.add(document["tokens"]["refresh_token"])
    write_document(tmp_path / "a" / "auth.json", document)
    async with instances(redis_server, redis_prefix, [tmp_path / "a", tmp_path / "b"], issuer.base_url) as (a, b):
        await a.registry.credentials(KEY)
        latest = await b.registry.credentials(KEY)
        await b.registry.refresh_after_unauthorized(KEY, latest)
        assert issuer.refresh_calls == 2
        secrets_seen = [document["tokens"]["access_token"], document["tokens"]["refresh_token"]]
        for tokens in issuer.issued:
            secrets_seen += [tokens["access_token"], tokens["refresh_token"]]
        client = a.cluster.state.client  # type: ignore[attr-defined]
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        assert any(b"credentials" in key for key in keys)
        for key in keys:
            if await client.type(key) != b"string":
                continue
            raw = await client.get(key)
            for secret in secrets_seen:
                assert secret.encode() not in raw
                assert secret.split(".")[1].encode() not in raw if "." in secret else True


async def test_an_instance_with_an_empty_home_lists_and_serves_an_account_imported_later(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    async with instances(redis_server, redis_prefix, [home_b, home_a], issuer.base_url) as (b, a):
        assert dict(b.registry.accounts()) == {} and not b.registry.has_credentials()
        document = auth_document(email="Team.Lead@example.com")
        write_document(home_a / "accounts" / "lead.json", document)
        a.registry.reload()
        shared = a.registry._shared
        assert shared is not None
        await shared.sync_once()  # A imports its new file (its background pass would within 1 s)
        await eventually(lambda: KEY in b.registry.accounts(), 3.0)  # B's pass lists it within ~1 s
        state = b.registry.accounts()[KEY]
        assert (state.alias, state.email, state.plan) == ("team.lead", "Team.Lead@example.com", "team")
        assert b.registry.has_credentials() and b.registry.credential_file(KEY) is None
        assert (await b.registry.credentials(KEY)).access_token == document["tokens"]["access_token"]
        assert not home_b.joinpath("accounts", "lead.json").exists()


async def test_credentials_sealed_under_an_unknown_key_are_skipped_with_one_line(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_document(tmp_path / "a" / "auth.json", auth_document())
    other_box = SecretBox("another-secret-key-for-c1-" + "z" * 16)
    async with instances(redis_server, redis_prefix, [tmp_path / "a"], issuer.base_url):
        caplog.set_level(logging.WARNING, logger="codexgate.pool")
        async with instances(redis_server, redis_prefix, [tmp_path / "b"], issuer.base_url, box=other_box) as (b,):
            assert dict(b.registry.accounts()) == {}
            shared = b.registry._shared
            assert shared is not None
            await shared.sync_once()
            await shared.sync_once()
            assert dict(b.registry.accounts()) == {}
    lines = [record.getMessage() for record in caplog.records if "cannot be opened" in record.getMessage()
             or "not configured" in record.getMessage()]  # fmt: skip
    assert len(lines) == 1, lines


async def test_requests_are_answered_from_memory_without_redis_or_decryption(
    redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = auth_document()
    write_document(tmp_path / "a" / "auth.json", document)
    async with instances(redis_server, redis_prefix, [tmp_path / "a"], issuer.base_url) as (a,):
        await a.registry.credentials(KEY)  # the first read may go to Redis
        state_calls = 0
        opened = 0
        real_get, real_open = a.cluster.state.get_with_ttl, a.cluster.box.open

        async def counting_get(namespace: str, key: str) -> Any:
            nonlocal state_calls
            state_calls += 1
            return await real_get(namespace, key)

        def counting_open(sealed: bytes, context: str) -> bytes:
            nonlocal opened
            opened += 1
            return real_open(sealed, context)

        monkeypatch.setattr(a.cluster.state, "get_with_ttl", counting_get)
        monkeypatch.setattr(a.cluster.box, "open", counting_open)
        for _ in range(200):
            assert (await a.registry.credentials(KEY)).access_token == document["tokens"]["access_token"]
        assert (state_calls, opened) == (0, 0)
