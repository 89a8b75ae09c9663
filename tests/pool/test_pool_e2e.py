"""The account pool end to end: a real gateway (uvicorn on loopback) in front of the simulator serving
several accounts (the access token's ``chatgpt_account_id`` says which)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from codexgate.pool.accounts import AccountState, AccountStatus
from codexgate.pool.registry import AccountRegistry
from codexgate.server.app import create_app
from codexgate.server.gateway import Gateway
from codexgate.testing import Scenario, UpstreamSimulator
from codexgate.testing.recorded import RecordedRequest
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import make_jwt, serve_in_thread, settings_for


def write_account(
    home: Path, account_id: str, *, expires_in: float = 3600, tokens: dict[str, str] | None = None
) -> Path:
    """``accounts/<account_id>.json`` in the Codex CLI's format, its tokens naming ``account_id``."""
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus", "chatgpt_user_id": "user_1"}
    if tokens is None:
        exp = int(time.time() + expires_in)
        tokens = {
            "access_token": make_jwt({"exp": exp, "https://api.openai.com/auth": auth}),
            "id_token": make_jwt(
                {"exp": exp, "email": f"{account_id}@example.com", "https://api.openai.com/auth": auth}
            ),
            "refresh_token": f"rt_test_{account_id}",
        }
    directory = home / "accounts"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{account_id}.json"
    document = {"OPENAI_API_KEY": None, "tokens": {**tokens, "account_id": account_id}, "last_refresh": "x"}
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path


@dataclass
class Pool:
    base_url: str
    simulator: UpstreamSimulator
    registry: AccountRegistry
    home: Path
    gateway: Gateway

    def states(self) -> list[AccountState]:
        """The accounts as the server holds them (read without a reload: the server's thread does those)."""
        return list(self.registry._states.values())

    def state(self, account_id: str) -> AccountState:
        for state in self.states():
            if state.chatgpt_account_id == account_id:
                return state
        raise KeyError(account_id)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=20)


@contextmanager
def pool_gateway(
    simulator: UpstreamSimulator, home: Path, account_ids: tuple[str, ...], **overrides: Any
) -> Iterator[Pool]:
    for account_id in account_ids:
        if not (home / "accounts" / f"{account_id}.json").exists():
            write_account(home, account_id)
    settings = settings_for(home, simulator.base_url, **{"upstream_retries": 0, **overrides})
    app = create_app(settings)
    with serve_in_thread(app) as served:
        registry = app.app.state.registry
        assert isinstance(registry, AccountRegistry)
        yield Pool(served.base_url, simulator, registry, home, app.app.state.gateway)


def body(session: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5", "input": text, "prompt_cache_key": session, "stream": False, **extra}


def accounts_of(requests: list[RecordedRequest]) -> list[str | None]:
    return [request.account for request in requests]


async def gather_limited(count: int, limit: int, make: Any) -> list[httpx.Response]:
    gate = asyncio.Semaphore(limit)

    async def one(index: int) -> httpx.Response:
        async with gate:
            response: httpx.Response = await make(index)
            return response

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def status_of(state: AccountState) -> AccountStatus:
    return state.status


async def test_a_spent_account_fails_over_then_gets_one_probe_after_its_reset(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    simulator.set_limit("acct_a", remaining_requests=4, resets_in=1.0)
    with pool_gateway(simulator, tmp_path / "home", ("acct_a", "acct_b")) as pool:
        async with pool.client() as client:
            responses = await gather_limited(40, 6, lambda i: client.post("/v1/responses", json=body(f"load-{i}")))
            assert [r.status_code for r in responses] == [200] * 40  # the client sees nothing of A's limit
            a = pool.state("acct_a")
            assert status_of(a) is AccountStatus.COOLING and a.cooling_until is not None
            refused = [r for r in simulator.requests_of("acct_a") if r.status == 429]
            assert refused, "A must have reached its limit during the load"
            first_refusal = min(r.finished_at or r.received_at for r in refused)
            # after its first 429 was answered, A got nothing more (margin for requests already in flight)
            late = [r for r in simulator.requests_of("acct_a") if r.received_at > first_refusal + 0.2]
            assert not late
            assert len([r for r in simulator.requests_of("acct_b") if r.status == 200]) == 40 - 4

            # the reset passes: the next request is A's one probe (B has served far more today), then A serves again
            cooling_until = a.cooling_until
            while time.time() <= cooling_until:
                await asyncio.sleep(0.05)
            before = len(simulator.requests_of("acct_a"))
            probe = await client.post("/v1/responses", json=body("after-reset"))
            assert probe.status_code == 200
            probed = simulator.requests_of("acct_a")[before:]
            assert [r.status for r in probed] == [200]
            assert status_of(pool.state("acct_a")) is AccountStatus.ACTIVE


async def test_one_session_stays_on_its_account_while_two_others_spread(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    with pool_gateway(simulator, tmp_path / "home", ("acct_a", "acct_b", "acct_c")) as pool:
        async with pool.client() as client:
            responses = await gather_limited(200, 16, lambda i: client.post("/v1/responses", json=body("one")))
            assert all(r.status_code == 200 for r in responses)
            homes = set(accounts_of(simulator.responses_requests))
            assert len(homes) == 1 and len(simulator.responses_requests) == 200
            for session in ("two", "three"):
                for _ in range(3):
                    assert (await client.post("/v1/responses", json=body(session))).status_code == 200
            others = accounts_of(simulator.responses_requests[200:])
            assert len(set(others[:3])) == 1 and len(set(others[3:])) == 1  # each session on one account
            assert len({*others, *homes}) == 3  # and the three sessions on three accounts


async def test_encrypted_reasoning_goes_to_its_account_or_is_dropped_when_it_cools(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    with pool_gateway(simulator, tmp_path / "home", ("acct_a", "acct_b")) as pool:
        async with pool.client() as client:
            first = await client.post(
                "/v1/responses",
                json=body("s1", "scenario:reasoning think", include=["reasoning.encrypted_content"]),
            )
            assert first.status_code == 200
            producer = simulator.responses_requests[-1].account
            reasoning = next(item for item in first.json()["output"] if item["type"] == "reasoning")
            assert reasoning["encrypted_content"]
            carried = {"type": "reasoning", "summary": [], "encrypted_content": reasoning["encrypted_content"]}
            follow_up = [
                carried,
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "on"}]},
            ]
            # another session (which alone would go to the other, less used account) follows the content
            for session in ("s2", "s3"):
                assert (await client.post("/v1/responses", json=body(session, follow_up))).status_code == 200  # type: ignore[arg-type]
                assert simulator.responses_requests[-1].account == producer

            assert producer is not None
            simulator.set_limit(producer, remaining_requests=0, resets_in=30)
            answer = await client.post("/v1/responses", json=body("s4", follow_up))  # type: ignore[arg-type]
            assert answer.status_code == 200
            refused, served = simulator.responses_requests[-2:]
            assert refused.account == producer and refused.status == 429
            assert served.account != producer and served.status == 200
            assert all(item.get("type") != "reasoning" for item in served.json["input"])  # dropped, not sent
            assert any(item.get("type") == "reasoning" for item in refused.json["input"])


async def test_all_accounts_cooling_is_a_429_with_the_earliest_reset(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    simulator.set_limit("acct_a", remaining_requests=0, resets_in=40)
    simulator.set_limit("acct_b", remaining_requests=0, resets_in=20)
    with pool_gateway(simulator, tmp_path / "home", ("acct_a", "acct_b")) as pool:
        async with pool.client() as client:
            answer = await client.post("/v1/responses", json=body("s"))
            assert answer.status_code == 429
            assert sorted(str(a) for a in accounts_of(simulator.responses_requests)) == [
                "acct_a",
                "acct_b",
            ]  # once each
            error = answer.json()["error"]
            assert error["code"] == "usage_limit_reached"
            earliest = pool.state("acct_b").cooling_until
            assert earliest is not None and error["resets_at"] == pytest.approx(earliest, abs=1)
            assert 15 <= int(answer.headers["retry-after"]) <= 22
            again = await client.post("/v1/responses", json=body("t"))
            assert again.status_code == 429 and len(simulator.responses_requests) == 2  # no request spent on it


async def test_one_500_neither_benches_the_only_account_nor_reaches_a_pool_client(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    with pool_gateway(simulator, tmp_path / "one", ("acct_a",)) as pool:
        async with pool.client() as client:
            simulator.enqueue("http_500")
            assert (await client.post("/v1/responses", json=body("s"))).status_code == 502
            assert pool.state("acct_a").in_backoff(time.time())
            assert (await client.post("/v1/responses", json=body("s"))).status_code == 200  # still served
            assert accounts_of(simulator.responses_requests) == ["acct_a", "acct_a"]
    simulator.clear()
    with pool_gateway(simulator, tmp_path / "two", ("acct_a", "acct_b")) as pool:
        async with pool.client() as client:
            simulator.enqueue("http_500")
            assert (await client.post("/v1/responses", json=body("s"))).status_code == 200  # the other account
            failed, served = simulator.responses_requests
            assert failed.status == 500 and served.status == 200 and failed.account != served.account


async def test_two_accounts_whose_tokens_expired_refresh_once_each(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    issuer: FakeIssuer
    with fake_issuer_thread() as issuer:
        for account_id in ("acct_a", "acct_b"):
            issuer.account_id = account_id
            write_account(home, account_id, tokens=issuer.mint(expires_in=-60))
        issuer.refresh_delay = 0.1
        with pool_gateway(simulator, home, ("acct_a", "acct_b"), auth_issuer=issuer.base_url) as pool:
            async with pool.client() as client:
                responses = await gather_limited(30, 30, lambda i: client.post("/v1/responses", json=body(f"s{i}")))
        assert [r.status_code for r in responses] == [200] * 30
        assert issuer.refresh_calls == 2


async def test_an_account_removed_while_streaming_finishes_its_streams_and_gets_no_new_one(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with pool_gateway(simulator, home, ("acct_a", "acct_b")) as pool:
        async with pool.client() as client:
            assert (await client.post("/v1/responses", json=body("held"))).status_code == 200
            held = simulator.responses_requests[-1].account
            assert held is not None
            simulator.enqueue(*[Scenario("slow", text="one two three four five six")] * 3)
            streams = [
                asyncio.ensure_future(client.post("/v1/responses", json=body("held", stream=True))) for _ in range(3)
            ]
            assert await until(lambda: len(simulator.responses_requests) == 4)
            (home / "accounts" / f"{held}.json").unlink()
            await asyncio.sleep(pool.registry.check_interval * 2)  # the server sees a change within that
            after = await client.post("/v1/responses", json=body("held"))
            assert all(state.chatgpt_account_id != held for state in pool.states())
            finished = await asyncio.gather(*streams)
            assert after.status_code == 200 and simulator.responses_requests[-1].account != held
            for response in finished:
                assert response.status_code == 200 and "response.completed" in response.text
            assert [r.account for r in simulator.responses_requests[1:4]] == [held] * 3


async def test_a_signed_thinking_block_routes_to_its_account_even_after_a_restart(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    question = {"role": "user", "content": "scenario:reasoning think"}
    headers = {"anthropic-version": "2023-06-01"}
    first_body = {
        "model": "gpt-5",
        "max_tokens": 100,
        "messages": [question],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    with pool_gateway(simulator, home, ("acct_a", "acct_b")) as pool:
        async with pool.client() as client:
            first = await client.post("/v1/messages", json=first_body, headers=headers)
    assert first.status_code == 200, first.text
    producer = simulator.responses_requests[-1].account
    blocks = first.json()["content"]
    assert blocks[0]["type"] == "thinking" and blocks[0]["signature"]

    follow_up = {
        "model": "gpt-5",
        "max_tokens": 100,
        "messages": [question, {"role": "assistant", "content": blocks}, {"role": "user", "content": "and then?"}],
    }
    with pool_gateway(simulator, home, ("acct_a", "acct_b")) as pool:  # a new server: no routing memory
        assert pool.state(producer or "").requests_today == 1  # restored: the other account is less used
        async with pool.client() as client:
            answer = await client.post("/v1/messages", json=follow_up, headers=headers)
    assert answer.status_code == 200, answer.text
    sent = simulator.responses_requests[-1]
    assert sent.account == producer
    assert [item["type"] for item in sent.json["input"]].count("reasoning") == 1


async def test_full_accounts_are_skipped_and_all_full_is_a_429(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    with pool_gateway(simulator, tmp_path / "home", ("acct_a", "acct_b"), account_max_streams=1) as pool:
        simulator.enqueue("never_answer", "never_answer")
        async with pool.client() as client:
            hung = [asyncio.ensure_future(client.post("/v1/responses", json=body(f"h{i}"))) for i in range(2)]
            assert await until(lambda: len(simulator.responses_requests) == 2)
            assert sorted(str(a) for a in accounts_of(simulator.responses_requests)) == ["acct_a", "acct_b"]
            full = await client.post("/v1/responses", json=body("third"))
            assert full.status_code == 429 and full.json()["error"]["code"] == "too_many_concurrent_streams"
            assert len(simulator.responses_requests) == 2  # nothing was sent for it
            for task in hung:
                task.cancel()
            await asyncio.gather(*hung, return_exceptions=True)
            assert await until(lambda: all(s.streams_in_flight == 0 for s in pool.states()))
            assert (await client.post("/v1/responses", json=body("after"))).status_code == 200


async def test_a_key_limited_to_one_account_only_reaches_that_account(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    from codexgate.storage.api_keys import KeyStore
    from codexgate.storage.key_limits import KeyLimits

    home = tmp_path / "home"
    home.mkdir(parents=True)
    store = KeyStore(home / "keys.json")
    with pool_gateway(simulator, home, ("acct_a", "acct_b")) as pool:
        alias_b = pool.state("acct_b").alias
        only_b = store.create("only-b", KeyLimits(allowed_accounts=(alias_b,)))
        nowhere = store.create("nowhere", KeyLimits(allowed_accounts=("no-such-account",)))
        async with pool.client() as client:

            async def known() -> bool:
                answer = await client.get("/v1/models", headers={"authorization": f"Bearer {only_b}"})
                return answer.status_code == 200

            deadline = time.monotonic() + 5
            while not await known():  # the gateway re-reads its keys file within a second
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            for index in range(6):
                answer = await client.post(
                    "/v1/responses", json=body(f"s{index}"), headers={"authorization": f"Bearer {only_b}"}
                )
                assert answer.status_code == 200, answer.text
            assert set(accounts_of(simulator.responses_requests)) == {"acct_b"}
            refused = await client.post("/v1/responses", json=body("x"), headers={"authorization": f"Bearer {nowhere}"})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_not_allowed"
            assert len(simulator.responses_requests) == 6
