"""``codexgate keys`` with ``state_url``, and gateways (``create_app``) sharing keys through a real redis-server."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from codexgate.server.app import create_app
from codexgate.server.asgi import GatewayASGI
from codexgate.server.runner import configured_keys
from codexgate.state.redis_state import RedisState
from codexgate.storage.api_keys import KeyStore
from codexgate.storage.budgets import window_bounds
from codexgate.storage.shared_budgets import counter_name
from codexgate.storage.shared_keys import SharedKeyStore
from tests.cli.cli_support import run_cli, shared_state_env
from tests.helpers import settings_for, write_auth_json
from tests.services import RedisServer, own_redis, redis_prefix, redis_server

__all__ = ["own_redis", "redis_prefix", "redis_server"]

SECRET = "s" * 32
CLOSED_UPSTREAM = "http://127.0.0.1:9/codex"


async def eventually(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within} s")
        await asyncio.sleep(0.01)


async def test_cli_create_and_revoke_act_on_the_shared_keys_every_instance_sees(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path
) -> None:
    env = shared_state_env(tmp_path, tmp_path / "home", redis_server.url, redis_prefix, SECRET)
    servers: list[tuple[SharedKeyStore, RedisState]] = []
    try:
        for _ in range(2):
            store = SharedKeyStore(redis_server.url, prefix=redis_prefix)
            state = RedisState.from_url(redis_server.url, prefix=redis_prefix)
            await store.start(state)
            servers.append((store, state))
        created = await asyncio.to_thread(run_cli, ["keys", "create", "--name", "laptop"], env)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        assert "shared state" in created.stderr
        assert redis_server.password not in created.stderr + created.stdout
        for store, _ in servers:
            await eventually(lambda s=store: s.verify(key) is not None, within=1.0)  # type: ignore[misc]
        assert not (tmp_path / "home" / "keys.json").exists()  # nothing written locally

        key_id = servers[0][0].mirrored()[0].id
        for _ in range(2):  # two instances spent tokens: keys list shows the cluster's total
            await servers[0][1].incr(counter_name(key_id, "day", window_bounds("day", time.time())[0]), 150)
        listed = await asyncio.to_thread(run_cli, ["keys", "list", "--json"], env)
        assert listed.returncode == 0, listed.stderr
        [entry] = orjson.loads(listed.stdout)
        assert (entry["name"], entry["tokens_used"]["day"]) == ("laptop", 300)

        revoked = await asyncio.to_thread(run_cli, ["keys", "revoke", "laptop"], env)
        assert revoked.returncode == 0, revoked.stderr
        finished = time.monotonic()
        for store, _ in servers:
            await eventually(lambda s=store: s.verify(key) is None, within=1.0)  # type: ignore[misc]
        assert time.monotonic() - finished < 1.0
    finally:
        for store, state in servers:
            await store.close()
            await state.close()


@asynccontextmanager
async def gateway(home: Path, url: str, prefix: str, **overrides: str) -> AsyncIterator[httpx.AsyncClient]:
    write_auth_json(home)
    settings = settings_for(
        home,
        CLOSED_UPSTREAM,
        upstream_retries=0,
        state_url=url,
        state_prefix=prefix,
        secret_key=SECRET,
        **overrides,
    )
    app: GatewayASGI = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.app.router.lifespan_context(app.app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9191") as client,
    ):
        yield client


async def status(client: httpx.AsyncClient, key: str) -> int:
    return (await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).status_code


async def test_gateways_share_keys_imported_once_and_refuse_a_revoked_key_within_a_second(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path
) -> None:
    first_home = tmp_path / "one"
    local_store = KeyStore(first_home / "keys.json")
    local_key = local_store.create("from-file")
    kept_key = local_store.create("kept")  # with no key left a loopback gateway would let everyone in
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(gateway(first_home, redis_server.url, redis_prefix))
        second = await stack.enter_async_context(gateway(tmp_path / "two", redis_server.url, redis_prefix))
        assert await status(first, local_key) != 401
        assert await status(second, local_key) != 401  # imported from the first home's keys.json
        assert await status(second, "cg-not-a-key") == 401
        cli = SharedKeyStore(redis_server.url, prefix=redis_prefix)
        assert await asyncio.to_thread(cli.revoke, "from-file")
        started = time.monotonic()
        for client in (first, second):
            while await status(client, local_key) != 401:
                assert time.monotonic() - started < 1.0
                await asyncio.sleep(0.02)
            assert await status(client, kept_key) != 401
        cli.close_client()
    async with gateway(first_home, redis_server.url, redis_prefix) as third:  # its keys.json is not imported again
        assert await status(third, local_key) == 401


async def test_keys_created_and_revoked_in_one_instances_console_reach_the_other_within_a_second(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path
) -> None:
    password = "correct horse battery"
    async with (
        gateway(tmp_path / "one", redis_server.url, redis_prefix, admin_password=password) as first,
        gateway(tmp_path / "two", redis_server.url, redis_prefix) as second,
    ):
        assert (await first.post("/dashboard/login", data={"password": password})).status_code == 303
        page = await first.get("/dashboard/keys")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        created = await first.post("/dashboard/keys", data={"name": "ci", "csrf_token": token.group(1)})
        secret = re.search(r'id="new-key-value">([^<]+)<', created.text)
        assert created.status_code == 200 and secret is not None
        kept = await first.post("/dashboard/keys", data={"name": "kept", "csrf_token": token.group(1)})
        assert kept.status_code == 200
        started = time.monotonic()
        while await status(second, secret.group(1)) == 401:
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.02)
        page = await first.get("/dashboard/keys")
        assert "ci" in page.text and "kept" in page.text
        key_id = re.search(r"/keys/(key_[0-9a-f]+)/revoke", page.text.split("ci</span>", 1)[1])
        assert key_id is not None
        revoked = await first.post(
            f"/dashboard/keys/{key_id.group(1)}/revoke", headers={"X-CSRF-Token": token.group(1)}
        )
        assert revoked.status_code == 303
        started = time.monotonic()
        while await status(second, secret.group(1)) != 401:
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.02)
        assert await status(first, secret.group(1)) == 401


async def test_a_gateway_that_never_loaded_the_keys_answers_503(own_redis: RedisServer, tmp_path: Path) -> None:
    store = SharedKeyStore(own_redis.url, prefix="e2e:")
    key = await asyncio.to_thread(store.create, "ci")
    store.close_client()
    own_redis.stop()
    async with gateway(tmp_path / "home", own_redis.url, "e2e:") as client:
        response = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "state_unavailable"
        assert "Retry-After" in response.headers
        own_redis.start()  # no persistence: Redis is empty again, so keys created meanwhile are the only ones
        fresh = await asyncio.to_thread(SharedKeyStore(own_redis.url, prefix="e2e:").create, "after")
        started = time.monotonic()
        while await status(client, fresh) == 503:
            assert time.monotonic() - started < 5.0
            await asyncio.sleep(0.1)
        assert await status(client, fresh) != 401
        assert await status(client, key) == 401


def test_the_bind_safety_check_reads_the_shared_keys(own_redis: RedisServer, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home", CLOSED_UPSTREAM, state_url=own_redis.url, secret_key=SECRET)
    assert not configured_keys(settings)
    store = SharedKeyStore.from_settings(settings)
    store.create("remote")
    store.close_client()
    assert not KeyStore(settings.keys_file).has_keys()  # nothing local: the shared store is what counts
    assert configured_keys(settings)
    own_redis.stop()
    assert configured_keys(settings)  # unreadable: counted as keys, so a public bind never falls open
