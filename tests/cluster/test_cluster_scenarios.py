"""The several-instances scenarios of issue 16, as it states them, against three ``codexgate serve`` processes.

Instances 2 and 3 start with an empty home and learn the accounts from Redis; the credentials, the refresh lock,
the pool's states and sessions and the API keys are all shared through it (``state_url``), the usage rows go to
PostgreSQL (``database_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import httpx

from tests.cluster.harness import GatewayCluster, RoundRobinClient
from tests.helpers import wait_until

_numbers = itertools.count()


def request_body(session: str | None = None) -> dict[str, object]:
    """A request of ``session``, else of a session of its own (so that the pool spreads requests)."""
    number = next(_numbers)
    session = session or f"one-off-{number}-{time.monotonic_ns()}"
    return {"model": "gpt-5", "input": f"hello {number}", "prompt_cache_key": session, "stream": False}


# -- one refresh per account ----------------------------------------------------------------------------------


async def test_300_concurrent_requests_with_expired_tokens_refresh_each_account_once(
    make_cluster: Callable[..., GatewayCluster],
) -> None:
    cluster = make_cluster(accounts=3, expired=True)
    async with cluster.client() as client:
        answers = await client.gather(300, lambda _: client.post("/v1/responses", json=request_body()))
    failed = [answer for answer in answers if not isinstance(answer, httpx.Response) or answer.status_code != 200]
    assert not failed, f"{len(failed)} of 300 failed, e.g. {failed[0]!r}"
    counts = cluster.simulator.control.refreshes()
    assert counts["refreshes_by_account"] == dict.fromkeys(cluster.account_ids, 1)
    assert counts["reused_by_account"] == {}
    served = Counter(summary["account"] for summary in cluster.simulator.control.requests())
    assert set(served) <= set(cluster.account_ids) and sum(served.values()) == 300


# -- usage limits, sessions and keys shared --------------------------------------------------------------------


async def test_a_usage_limit_seen_by_one_instance_is_respected_by_the_others(
    shared_cluster: GatewayCluster,
) -> None:
    cluster = shared_cluster
    control = cluster.simulator.control
    limited = cluster.account_ids[0]
    control.set_limit(limited, 0, resets_in=120)  # its next request gets usage_limit_reached, reset in 2 min

    def refused_requests() -> int:
        return sum(1 for s in control.requests() if s["account"] == limited and s["status"] == 429)

    async with cluster.client() as client:
        for _ in range(12):  # instance 1 meets the limit (its pool spreads requests over the three accounts)
            assert (await client.post("/v1/responses", json=request_body(), instance=1)).status_code == 200
            if refused_requests():
                break
        assert refused_requests() == 1, "instance 1 never sent the limited account a request"
        await asyncio.sleep(1.0)  # what instance 1 saw reaches the others
        before = sum(1 for s in control.requests() if s["account"] == limited)
        for index in range(30):
            answer = await client.post("/v1/responses", json=request_body(), instance=2 + index % 2)
            assert answer.status_code == 200
    after = sum(1 for s in control.requests() if s["account"] == limited)
    assert after == before, f"instances 2 and 3 sent the cooling account {after - before} requests"


async def test_one_sessions_requests_through_all_three_instances_stay_on_one_account(
    shared_cluster: GatewayCluster,
) -> None:
    cluster = shared_cluster
    sessions = [f"session-{index}-{time.monotonic_ns()}" for index in range(9)]

    async def send(session: str | None, instance: int) -> None:
        answer = await client.post("/v1/responses", json=request_body(session), instance=instance)
        assert answer.status_code == 200

    async with cluster.client() as client:
        for session in sessions:  # each session starts on instance 1 (its pool spreads them over the accounts)
            await send(session, 1)
        for instance, one_offs in ((2, 1), (3, 2)):  # instances 2 and 3 out of step with instance 1 and each other,
            for _ in range(one_offs):  # so that instances choosing alone would put a session elsewhere
                await send(None, instance)
        for instance in (2, 3, 1, 3, 2, 1):
            for session in sessions:
                await send(session, instance)
    accounts_of: dict[str, set[str]] = {session: set() for session in sessions}
    for summary in cluster.simulator.control.requests():
        if summary["prompt_cache_key"] in accounts_of:
            accounts_of[summary["prompt_cache_key"]].add(summary["account"])
    assert all(len(accounts) == 1 for accounts in accounts_of.values()), accounts_of
    assert len(set.union(*accounts_of.values())) > 1, "the sessions were not spread (the test shows nothing)"


async def test_a_key_revoked_through_one_instance_is_refused_by_all_three_within_a_second(
    shared_cluster: GatewayCluster,
) -> None:
    cluster = shared_cluster
    keeper = cluster.create_key("kept-in-test", index=1)  # a key stays: the gateway does not reopen to all
    try:
        key = cluster.create_key("revoked-in-test", index=2)
        async with httpx.AsyncClient(timeout=10) as client:

            async def statuses(token: str) -> list[int]:
                headers = {"authorization": f"Bearer {token}"}
                sent = [
                    client.post(url + "/v1/responses", json=request_body(), headers=headers) for url in cluster.urls
                ]
                return [answer.status_code for answer in await asyncio.gather(*sent)]

            deadline = time.monotonic() + 5
            while (seen := await statuses(key)) != [200] * 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert seen == [200] * 3, "the new key was not accepted by every instance"
            cluster.revoke_key("revoked-in-test", index=1)
            revoked_at = time.monotonic()
            while (seen := await statuses(key)) != [401] * 3 and time.monotonic() < revoked_at + 5:
                await asyncio.sleep(0.05)
            refused_after = time.monotonic() - revoked_at
            assert seen == [401] * 3
            assert refused_after < 1.0, f"refused by all three only after {refused_after:.2f} s"
            assert await statuses(keeper) == [200] * 3  # the other key still works everywhere
            assert await statuses("cg-not-a-key") == [401] * 3
    finally:
        cluster.revoke_key("kept-in-test", index=1)


async def test_a_keys_requests_per_minute_are_counted_across_the_three(shared_cluster: GatewayCluster) -> None:
    cluster = shared_cluster
    done = cluster.cli("keys", "create", "--name", "rpm-in-test", "--rpm", "6", index=1)
    assert done.returncode == 0, done.stderr
    headers = {"authorization": f"Bearer {done.stdout.strip().splitlines()[-1]}"}
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def send(index: int) -> int:
                answer = await client.post(cluster.urls[index] + "/v1/responses", json=request_body(), headers=headers)
                return answer.status_code

            for index in range(3):  # each instance admits one request once it knows the key (a 401 counts none)
                deadline = time.monotonic() + 5
                while (status := await send(index)) == 401 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert status == 200
            statuses = []
            for index in itertools.islice(itertools.cycle(range(3)), 6):
                await asyncio.sleep(1.0)  # the instances exchange their counts every quarter second: twice that
                statuses.append(await send(index))
        # 6 a minute for the key over the three instances together, not 6 on each
        assert statuses == [200, 200, 200, 429, 429, 429], statuses
    finally:
        cluster.revoke_key("rpm-in-test", index=2)


# -- kill -9 under load -----------------------------------------------------------------------------------------


@dataclass
class Load:
    """Requests sent by ``workers`` loops while the ``async with`` lasts, each answer or error with when it
    ended. Leaving the block stops the loops (on an error too) and waits for them, bounded by ``limit``."""

    client: RoundRobinClient
    workers: int = 6
    limit: float = 30.0
    results: list[tuple[float, httpx.Response | BaseException]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                answer: httpx.Response | BaseException = await self.client.post("/v1/responses", json=request_body())
            except Exception as exc:
                answer = exc
            self.results.append((time.monotonic(), answer))
            await asyncio.sleep(0.005 if isinstance(answer, BaseException) else 0)  # an instant error never spins

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), self.limit)  # none hangs

    @property
    def errors(self) -> list[BaseException]:
        return [answer for _, answer in self.results if isinstance(answer, BaseException)]

    @property
    def answers(self) -> list[httpx.Response]:
        return [answer for _, answer in self.results if isinstance(answer, httpx.Response)]


async def test_kill_9_of_one_instance_under_load(make_cluster: Callable[..., GatewayCluster]) -> None:
    cluster = make_cluster(accounts=3, expired=True, event_delay=0.01)
    control = cluster.simulator.control
    control.set_token_delay(1.5)  # refreshes in flight (their locks held) when the instance dies
    async with cluster.client() as client:
        async with Load(client) as load:
            await asyncio.sleep(0.6)
            cluster.kill_9(1)
            control.set_token_delay(0)
            deadline = time.monotonic() + 15  # the dead holder's locks expire, then the others refresh
            while len(control.refreshes_by_account()) < len(cluster.account_ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
        retried = client.retried
    # the killed instance's cut refreshes spent nothing; its locks expired and the others refreshed
    counts = control.refreshes()
    assert counts["refreshes_by_account"] == dict.fromkeys(cluster.account_ids, 1), counts
    assert counts["reused_by_account"] == {}
    assert not load.errors, f"{len(load.errors)} requests failed outright, e.g. {load.errors[0]!r}"
    assert all(answer.status_code == 200 for answer in load.answers), Counter(a.status_code for a in load.answers)
    assert retried >= 1, "no request was in flight on the killed instance (the test shows nothing)"
    assert len(load.answers) >= 12  # two per worker at least: the load went on around the dead instance


# -- Redis stopped and restarted under load ----------------------------------------------------------------------


def reports(cluster: GatewayCluster, index: int, shared_state: str) -> bool:
    return cluster.health(index)["shared_state"] == shared_state


def knows_accounts(cluster: GatewayCluster, index: int) -> bool:
    return bool(cluster.health(index)["credentials"])


def clean_error(answer: httpx.Response) -> bool:
    """The one error Redis being away may cause: 503 ``state_unavailable`` with ``Retry-After``."""
    if answer.status_code != 503 or "retry-after" not in answer.headers:
        return False
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return bool(answer.json()["error"]["code"] == "state_unavailable")
    return False


async def test_redis_stopped_and_restarted_under_load(make_cluster: Callable[..., GatewayCluster]) -> None:
    cluster = make_cluster(accounts=2, expired_accounts=1)  # one account needs a refresh, the other does not
    control = cluster.simulator.control
    expired = cluster.account_ids[-1]
    for index in (1, 2, 3):  # mid-run: every instance knows the accounts before Redis goes away
        assert wait_until(partial(knows_accounts, cluster, index), timeout=5)
    async with cluster.client() as client:
        cluster.redis.stop()
        for index in (1, 2, 3):
            assert wait_until(partial(reports, cluster, index, "unavailable"), timeout=5)
        async with Load(client) as load:
            await asyncio.sleep(1.5)
            refreshed_while_down = control.refreshes()["refreshes"]
            cluster.redis.start()
            returned = time.monotonic()
            while time.monotonic() < returned + 5 and not (
                all(reports(cluster, index, "ok") for index in (1, 2, 3)) and control.refreshes()["refreshes"]
            ):
                await asyncio.sleep(0.1)
            consistent_by = time.monotonic()
            await asyncio.sleep(1.0)
    assert refreshed_while_down == 0, "an instance refreshed while Redis was away"
    assert consistent_by - returned < 5, "not consistent within 5 s of Redis returning"
    assert not load.errors, f"{len(load.errors)} requests failed outright, e.g. {load.errors[0]!r}"
    unclean = [(a.status_code, a.text[:200]) for a in load.answers if a.status_code != 200 and not clean_error(a)]
    assert not unclean, f"errors other than 503 state_unavailable: {unclean[:3]}"
    late = [answer for ended, answer in load.results if ended > consistent_by and isinstance(answer, httpx.Response)]
    assert late and all(answer.status_code == 200 for answer in late), "not consistent 5 s after Redis returned"
    assert control.refreshes()["refreshes_by_account"] == {expired: 1}
    for instance in cluster.instances:  # one line for the outage, none for the connections it left broken
        assert instance.log_text(1_000_000).count("shared state (Redis) unreachable") == 1
