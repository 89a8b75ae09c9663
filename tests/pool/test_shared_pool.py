"""One pool across instances (issue 16): two or three "instances" in this process, each with its own Cluster on
a real redis-server, its own AccountState objects, Router and PooledUpstream over a scripted upstream client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import orjson
import pytest

from codexgate.errors import APIError
from codexgate.pool import health
from codexgate.pool.accounts import AccountState, AccountStatus
from codexgate.pool.router import Router
from codexgate.pool.shared_bindings import SESSIONS_NAMESPACE, session_slot
from codexgate.pool.shared_pool import STATES_CHANNEL, STATES_NAMESPACE, SharedPool
from codexgate.pool.sticky import content_key
from codexgate.state.cluster import Cluster
from codexgate.state.redis_state import RedisState
from codexgate.state.secrets_box import SecretBox
from codexgate.testing.sse_events import encode_event
from codexgate.upstream.client import UpstreamStream
from codexgate.upstream.pooled import PooledUpstream
from tests.pool.test_pool_stream_failover import ScriptedContent, ScriptedResponse
from tests.services import RedisServer, own_redis, redis_prefix, redis_server

__all__ = ["own_redis", "redis_prefix", "redis_server"]

SECRET = "a-test-secret-key-of-enough-length"
IDS = ("acct_a", "acct_b", "acct_c")


def key_of(account_id: str) -> str:
    return f"{account_id}:user"


class Accounts:
    """An AccountSource: this instance's own AccountState objects."""

    def __init__(self, ids: tuple[str, ...]) -> None:
        made = (AccountState(chatgpt_account_id=i, user_id="user", alias=i) for i in ids)
        self.states = {state.key: state for state in made}

    def accounts(self) -> Mapping[str, AccountState]:
        return self.states

    def of(self, account_id: str) -> AccountState:
        return self.states[key_of(account_id)]

    async def credentials(self, key: str) -> Any:
        return key

    async def refresh_after_unauthorized(self, key: str, rejected: Any) -> Any:
        return key


def answer(encrypted: str | None) -> bytes:
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": "r", "status": "in_progress"}}]
    if encrypted is not None:
        item = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": encrypted}
        events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append({"type": "response.completed", "response": {"id": "r", "status": "completed", "output": []}})
    return b"".join(encode_event(event) for event in events)


@dataclass
class Upstream:
    """The backend as one instance sees it: accounts that answer with a usage limit, the rest answer."""

    limited: dict[str, float] = field(default_factory=dict)  # account key → resets_at
    encrypted: str | None = None
    calls: list[str] = field(default_factory=list)

    async def open_stream(self, body: dict[str, Any], *, tokens: Any = None, **_: Any) -> UpstreamStream:
        key = tokens.key
        self.calls.append(key)
        if key in self.limited:
            extra = {"resets_at": self.limited[key]}
            raise APIError(429, "limit", type="usage_limit_reached", code="usage_limit_reached", extra=extra)
        content = ScriptedContent([answer(self.encrypted)])
        return UpstreamStream(response=cast(Any, ScriptedResponse(content)), request_id=None, started_at=0.0)


@dataclass
class Instance:
    cluster: Cluster
    accounts: Accounts
    router: Router
    upstream: Upstream
    pool: PooledUpstream
    shared: SharedPool
    offset: list[float]

    async def send(self, session: str | None = None, body: dict[str, Any] | None = None) -> str:
        """One request through the pool; the alias of the account that served it (its stream read and closed)."""
        opened = await self.pool.open(
            body or {"model": "gpt-5", "input": "hi"}, session_id="s", request_id="r", session_key=session
        )
        async for _ in opened.stream.chunks():
            pass
        opened.stream.close()
        return opened.account.alias


def instance(url: str, prefix: str, *, session_ttl: float = 3600.0) -> Instance:
    offset = [0.0]

    def now() -> float:
        return time.time() + offset[0]

    cluster = Cluster(RedisState.from_url(url, prefix=prefix), SecretBox(SECRET), probe_interval=0.1)
    accounts = Accounts(IDS)
    router = Router(session_ttl=session_ttl)
    upstream = Upstream()
    shared = SharedPool(cluster, accounts.accounts, router, clock=now, check_interval=0.05, sync_interval=0.5)
    pool = PooledUpstream(cast(Any, upstream), accounts, router, clock=now, shared=shared)
    return Instance(cluster, accounts, router, upstream, pool, shared, offset)


@asynccontextmanager
async def instances(url: str, prefix: str, count: int, **knobs: Any) -> AsyncIterator[list[Instance]]:
    made = [instance(url, prefix, **knobs) for _ in range(count)]
    try:
        for one in made:
            await one.cluster.start()
            await one.shared.start()
        yield made
    finally:
        for one in made:
            await one.shared.close()
            await one.cluster.close()


async def eventually(check: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``check()`` held (fails after ``within``)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def busy(one: Instance, *account_ids: str) -> None:
    """Make the accounts this instance's last choice (the day's request counter is per process, not shared)."""
    for account_id in account_ids:
        one.accounts.of(account_id).requests_today = 1000


# -- account states ---------------------------------------------------------------------------------------


async def test_a_usage_limit_on_one_instance_keeps_the_others_off_the_account_until_its_reset(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with instances(redis_server.url, redis_prefix, 3) as (first, second, third):
        resets_at = time.time() + 30
        first.upstream.limited[key_of("acct_a")] = resets_at
        busy(first, "acct_b", "acct_c")  # instance 1 tries A first, gets the limit, fails over
        assert await first.send() != "acct_a"
        assert first.upstream.calls[0] == key_of("acct_a")
        for other in (second, third):
            theirs = other.accounts.of("acct_a")
            took = await eventually(
                lambda theirs=theirs: theirs.status is AccountStatus.COOLING,  # type: ignore[misc]
                2.0,
                "the cooldown reached the other instance",
            )
            assert took < 1.0
            assert other.accounts.of("acct_a").cooling_until == pytest.approx(resets_at)
            busy(other, "acct_b", "acct_c")  # left alone, these instances would pick A
            served = [await other.send(session=f"s{i}") for i in range(6)]
            assert "acct_a" not in served and key_of("acct_a") not in other.upstream.calls
        # past the reset, instance 2 sends A its probe (and, the probe answered, A serves again everywhere)
        second.offset[0] = 31.0
        assert await second.send(session="after-reset") == "acct_a"
        await eventually(
            lambda: first.accounts.of("acct_a").status is AccountStatus.ACTIVE, 2.0, "the lifted cooldown came back"
        )


async def test_an_operator_pause_and_resume_on_one_instance_reach_the_others(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with instances(redis_server.url, redis_prefix, 2) as (first, second):
        health.pause(first.accounts.of("acct_b"))  # what the registry applies from `accounts pause`
        await eventually(lambda: second.accounts.of("acct_b").status is AccountStatus.PAUSED, 2.0, "the pause")
        served = {await second.send() for _ in range(5)}
        assert "acct_b" not in served
        health.resume(first.accounts.of("acct_b"))
        await eventually(lambda: second.accounts.of("acct_b").status is AccountStatus.ACTIVE, 2.0, "the resume")


async def test_windows_and_per_model_limits_are_shared_but_not_the_per_process_counters(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with instances(redis_server.url, redis_prefix, 2) as (first, second):
        account = first.accounts.of("acct_c")
        first.pool.update_windows_from_event(
            account, {"type": "codex.rate_limits", "rate_limits": {"primary": {"used_percent": 73.0}}}
        )
        health.usage_not_included(account, "gpt-5-pro", time.time())
        first.shared.changed(account)
        account.requests_today = 42
        account.streams_in_flight = 3
        theirs = second.accounts.of("acct_c")
        await eventually(lambda: theirs.primary is not None and "gpt-5-pro" in theirs.disabled_models, 2.0, "shared")
        assert theirs.primary is not None and theirs.primary.used_percent == 73.0
        await asyncio.sleep(0.2)
        assert theirs.requests_today == 0 and theirs.streams_in_flight == 0


async def test_an_older_version_never_replaces_a_newer_one(redis_server: RedisServer, redis_prefix: str) -> None:
    async with instances(redis_server.url, redis_prefix, 2) as (first, second):
        first.upstream.limited[key_of("acct_a")] = time.time() + 60
        busy(first, "acct_b", "acct_c")
        await first.send()
        theirs = second.accounts.of("acct_a")
        await eventually(lambda: theirs.status is AccountStatus.COOLING, 2.0, "the cooldown")
        stored = await second.cluster.state.get(STATES_NAMESPACE, f"health/{key_of('acct_a')}")
        assert stored is not None
        record = orjson.loads(stored)
        stale = orjson.dumps(
            {**record, "v": record["v"] - 1, "o": "elsewhere", "f": {**record["f"], "status": "active"}}
        )
        # neither the store nor a published message takes it
        name = f"health/{key_of('acct_a')}"
        assert not await first.cluster.state.put_if_newer(STATES_NAMESPACE, name, stale, record["v"] - 1)
        await first.cluster.state.publish(STATES_CHANNEL, stale)
        await asyncio.sleep(0.3)
        await second.shared.resync()
        assert theirs.status is AccountStatus.COOLING
        # a newer change (the operator resumes it elsewhere) does
        health.resume(first.accounts.of("acct_a"))
        first.accounts.of("acct_a").cooling_until = None
        first.accounts.of("acct_a").status = AccountStatus.ACTIVE
        await eventually(lambda: theirs.status is AccountStatus.ACTIVE, 2.0, "the newer version")


# -- sessions and content ---------------------------------------------------------------------------------


async def test_a_session_bound_on_one_instance_stays_on_its_account_on_the_others(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with instances(redis_server.url, redis_prefix, 3) as (first, second, third):
        busy(first, "acct_a", "acct_b")
        assert await first.send(session="conversation") == "acct_c"
        for other in (second, third):
            busy(other, "acct_c")  # left alone, these instances would never pick C
            await eventually(lambda: not first.shared._has_pending(), 2.0, "the binding written")
            assert [await other.send(session="conversation") for _ in range(4)] == ["acct_c"] * 4
            assert await other.send(session="another") != "acct_c"
        hits = second.cluster.cache.hits
        await second.send(session="conversation")
        assert second.cluster.cache.hits == hits + 1  # a known session costs no round trip


async def test_content_bound_on_one_instance_routes_to_its_account_on_another(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with instances(redis_server.url, redis_prefix, 2) as (first, second):
        first.upstream.encrypted = "gAAAA-reasoning-of-b"
        busy(first, "acct_a", "acct_c")
        assert await first.send() == "acct_b"
        assert first.router.account_of(content_key("gAAAA-reasoning-of-b"), time.time()) == key_of("acct_b")
        await eventually(lambda: not first.shared._has_pending(), 2.0, "the content binding written")
        busy(second, "acct_b")
        reasoning = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-reasoning-of-b"}
        body = {"model": "gpt-5", "input": [reasoning, {"role": "user", "content": "go on"}]}
        assert await second.send(body=body) == "acct_b"
        assert await second.send() != "acct_b"  # without that content, B is its last choice


async def test_a_session_in_use_keeps_its_shared_binding_alive(redis_server: RedisServer, redis_prefix: str) -> None:
    async with instances(redis_server.url, redis_prefix, 2, session_ttl=3.0) as (first, second):
        await first.send(session="long")
        await eventually(lambda: not first.shared._has_pending(), 2.0, "the binding written")
        slot = session_slot("long")
        bound, _ = await first.cluster.state.get_with_ttl(SESSIONS_NAMESPACE, slot)
        assert bound == key_of("acct_a").encode()
        await asyncio.sleep(0.4)
        await second.send(session="long")  # learns the binding from the store
        await asyncio.sleep(0.9)  # past a quarter of the TTL since
        await second.send(session="long")
        await eventually(lambda: not second.shared._has_pending(), 2.0, "the refresh written")
        _, ttl = await first.cluster.state.get_with_ttl(SESSIONS_NAMESPACE, slot)
        assert ttl is not None and ttl > 2.5  # written again by the session's use, not left to run out (~1.7 s)


# -- the store goes away and comes back ------------------------------------------------------------------


async def test_requests_go_on_while_redis_is_down_and_the_state_converges_once_it_is_back(
    own_redis: RedisServer, redis_prefix: str
) -> None:
    async with instances(own_redis.url, redis_prefix, 2) as (first, second):
        await first.send(session="kept")
        own_redis.stop()
        await eventually(lambda: not first.cluster.available and not second.cluster.available, 3.0, "outage seen")
        first.upstream.limited[key_of("acct_a")] = time.time() + 60
        busy(first, "acct_b", "acct_c")
        started = time.monotonic()
        served = [await first.send(session=f"down{i}") for i in range(5)]
        served += [await second.send(session=f"down{i}") for i in range(5)]
        assert time.monotonic() - started < 3.0  # nothing waits on the store
        assert "acct_a" not in served[:5] and first.accounts.of("acct_a").status is AccountStatus.COOLING
        assert second.accounts.of("acct_a").status is AccountStatus.ACTIVE  # it could not learn it yet
        own_redis.start()
        back = time.monotonic()
        await eventually(
            lambda: second.accounts.of("acct_a").status is AccountStatus.COOLING, 5.0, "consistent after the outage"
        )
        assert time.monotonic() - back < 5.0
        busy(second, "acct_b", "acct_c")
        assert await second.send(session="after") != "acct_a"


# -- the signing key --------------------------------------------------------------------------------------


async def test_two_instances_share_one_signing_key_stored_sealed(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Any
) -> None:
    from codexgate.server.anthropic_support import (
        CLUSTER_KEY_NAME,
        CLUSTER_KEY_NAMESPACE,
        KEY_SIZE,
        cluster_thinking_key,
        install_cluster_key,
        thinking_key,
    )

    async with instances(redis_server.url, redis_prefix, 2) as (first, second):
        one, two = await asyncio.gather(cluster_thinking_key(first.cluster), cluster_thinking_key(second.cluster))
        assert one == two and len(one) == KEY_SIZE
        stored = await first.cluster.state.get(CLUSTER_KEY_NAMESPACE, CLUSTER_KEY_NAME)
        assert stored is not None and one not in stored and one.hex().encode() not in stored
        homes = (tmp_path / "one", tmp_path / "two")
        for home, member in zip(homes, (first, second), strict=True):
            assert await install_cluster_key(member.cluster, home)
        assert thinking_key(homes[0]) == thinking_key(homes[1]) == one
        assert not (homes[0] / "thinking.key").exists()


# -- embedded mode ----------------------------------------------------------------------------------------

EMBEDDED_PROBE = """
import json, sys
from pathlib import Path
from codexgate.server.app import create_app
from tests.helpers import settings_for
app = create_app(settings_for(Path(sys.argv[1]), "http://127.0.0.1:9"))
print(json.dumps(sorted(sys.modules)))
"""


def test_without_state_url_no_shared_pool_or_redis_module_is_loaded(tmp_path: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-c", EMBEDDED_PROBE, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=root,
    )
    modules = set(orjson.loads(completed.stdout.strip().splitlines()[-1]))
    assert "codexgate.server.app" in modules
    assert not {"redis", "codexgate.pool.shared_pool", "codexgate.state.cluster", "cryptography"} & modules


# -- two real gateways ------------------------------------------------------------------------------------


async def test_two_gateways_on_one_redis_keep_off_an_account_the_first_saw_spent(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Any, simulator: Any
) -> None:
    from tests.pool.test_pool_e2e import body, pool_gateway

    cluster = {"state_url": redis_server.url, "state_prefix": redis_prefix, "secret_key": SECRET}
    simulator.set_limit("acct_a", remaining_requests=0, resets_in=600)
    with (
        pool_gateway(simulator, tmp_path / "one", ("acct_a", "acct_b"), **cluster) as one,
        pool_gateway(simulator, tmp_path / "two", ("acct_a", "acct_b"), **cluster) as two,
    ):
        async with one.client() as client:
            assert (await client.post("/v1/responses", json=body("first"))).status_code == 200
        assert len(simulator.requests_of("acct_a")) == 1  # A answered with its limit; B served
        await eventually(lambda: two.state("acct_a").status is AccountStatus.COOLING, 2.0, "instance 2 knows")
        async with two.client() as client:
            for index in range(4):
                assert (await client.post("/v1/responses", json=body(f"s{index}"))).status_code == 200
            health = (await client.get("/health")).json()
        assert len(simulator.requests_of("acct_a")) == 1 and len(simulator.requests_of("acct_b")) == 5
        assert health.get("shared_state") == "ok"


async def test_the_signing_key_is_taken_from_the_cluster_once_redis_answers_again(
    own_redis: RedisServer, redis_prefix: str, tmp_path: Any
) -> None:
    from codexgate.server.anthropic_support import cluster_thinking_key, install_cluster_key, thinking_key

    async with instances(own_redis.url, redis_prefix, 2) as (first, second):
        shared_key = await cluster_thinking_key(first.cluster)
        own_redis.stop()
        await eventually(lambda: not second.cluster.available, 3.0, "outage seen")
        home = tmp_path / "home"
        assert not await install_cluster_key(second.cluster, home)
        assert thinking_key(home) != shared_key  # meanwhile this instance's own key
        own_redis.start()  # started empty: the first instance to ask creates the key anew, under the lock
        await eventually(lambda: second.cluster.available, 5.0, "Redis seen back")
        fresh = await cluster_thinking_key(first.cluster)
        await eventually(lambda: thinking_key(home) == fresh, 5.0, "the cluster's key installed")


async def test_a_pause_from_the_console_of_an_instance_without_the_account_file_reaches_every_instance(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Any, simulator: Any
) -> None:
    import re

    import httpx

    from tests.pool.test_pool_e2e import body, pool_gateway

    cluster = {"state_url": redis_server.url, "state_prefix": redis_prefix, "secret_key": SECRET}
    with (
        pool_gateway(simulator, tmp_path / "one", ("acct_a", "acct_b"), **cluster) as one,
        pool_gateway(simulator, tmp_path / "two", (), admin_password="correct horse battery", **cluster) as two,
    ):
        key = one.state("acct_a").key
        await eventually(lambda: key in two.registry.accounts(), 3.0, "instance 2 learns the shared accounts")
        async with httpx.AsyncClient(base_url=two.base_url, timeout=10) as http:
            await http.post("/dashboard/login", data={"password": "correct horse battery"})
            page = await http.get("/dashboard/accounts")
            token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
            assert token is not None
            paused = await http.post("/dashboard/accounts/pause", data={"csrf_token": token.group(1), "account": key})
            assert paused.status_code == 303
        await eventually(lambda: one.state("acct_a").status is AccountStatus.PAUSED, 2.0, "instance 1 sees the pause")
        async with one.client() as client:
            for index in range(3):
                assert (await client.post("/v1/responses", json=body(f"p{index}"))).status_code == 200
        assert simulator.requests_of("acct_a") == []  # paused everywhere: every request went to B


def status_is(gateway: Any, status: AccountStatus) -> bool:
    return bool(gateway.state("acct_a").status is status)


async def test_accounts_pause_and_resume_from_a_home_without_a_server_reach_every_instance(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Any, simulator: Any
) -> None:
    from tests.cli.cli_support import run_cli, shared_state_env
    from tests.pool.test_pool_e2e import body, pool_gateway

    cluster = {"state_url": redis_server.url, "state_prefix": redis_prefix, "secret_key": SECRET}
    one_off = shared_state_env(tmp_path, tmp_path / "one-off", redis_server.url, redis_prefix, SECRET)
    with (
        pool_gateway(simulator, tmp_path / "one", ("acct_a", "acct_b"), **cluster) as one,
        pool_gateway(simulator, tmp_path / "two", (), **cluster) as two,
    ):
        key = one.state("acct_a").key
        await eventually(lambda: key in two.registry.accounts(), 3.0, "instance 2 learns the shared accounts")
        paused = await asyncio.to_thread(run_cli, ["accounts", "pause", key], one_off)
        assert paused.returncode == 0, paused.stderr
        assert "for every instance" in paused.stderr
        for gateway in (one, two):
            await eventually(partial(status_is, gateway, AccountStatus.PAUSED), 2.0, "paused")
        async with two.client() as client:
            for index in range(3):
                assert (await client.post("/v1/responses", json=body(f"c{index}"))).status_code == 200
        assert simulator.requests_of("acct_a") == []

        resumed = await asyncio.to_thread(run_cli, ["accounts", "resume", key], one_off)
        assert resumed.returncode == 0, resumed.stderr
        for gateway in (one, two):
            await eventually(partial(status_is, gateway, AccountStatus.ACTIVE), 2.0, "resumed")
