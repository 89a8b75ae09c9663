"""The simulator's side of the several-instances tests: refreshes keep their account and are counted per
account, pool account files, and the control API a test reads a simulator *process* through."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from codexgate.auth.jwt_claims import claims_of
from codexgate.pool.account_files import PoolPaths, scan
from codexgate.testing.demo_auth import (
    TokenIssuer,
    demo_auth_document,
    identity_of_refresh_token,
    pool_account_ids,
    write_pool_accounts,
)
from codexgate.testing.simulator_control import SimulatorControl
from codexgate.testing.simulator_process import simulator_thread


def refresh(issuer: TokenIssuer, refresh_token: str) -> tuple[int, dict[str, Any]]:
    return issuer.answer(json.dumps({"grant_type": "refresh_token", "refresh_token": refresh_token}).encode())


def test_a_refresh_answers_tokens_of_the_refresh_tokens_account() -> None:
    issuer = TokenIssuer()
    document = demo_auth_document(time.time(), account_id="acct_a", email="a@example.invalid")
    status, tokens = refresh(issuer, document["tokens"]["refresh_token"])
    assert status == 200
    claims = claims_of(tokens["access_token"], tokens["id_token"])
    assert claims.account_id == "acct_a" and claims.email == "a@example.invalid"
    # the token issued now is remembered too, and refreshes into the same account again
    status, again = refresh(issuer, tokens["refresh_token"])
    assert status == 200 and claims_of(again["access_token"]).account_id == "acct_a"
    assert issuer.refreshes == 2 and issuer.refreshes_by_account == {"acct_a": 2}


def test_refreshes_and_reuses_are_counted_per_account() -> None:
    issuer = TokenIssuer()
    first = demo_auth_document(time.time(), account_id="acct_a")["tokens"]["refresh_token"]
    second = demo_auth_document(time.time(), account_id="acct_b")["tokens"]["refresh_token"]
    assert refresh(issuer, first)[0] == 200
    assert refresh(issuer, second)[0] == 200
    status, answer = refresh(issuer, first)  # single use
    assert status == 401 and answer["error"]["code"] == "refresh_token_reused"
    assert issuer.counts() == {
        "refreshes": 2,
        "refreshes_by_account": {"acct_a": 1, "acct_b": 1},
        "reused_by_account": {"acct_a": 1},
    }


def test_a_foreign_refresh_token_gets_the_issuers_own_account() -> None:
    issuer = TokenIssuer(account_id="acct_default")
    assert identity_of_refresh_token("rt_something_else") is None
    assert identity_of_refresh_token("rt_demo_!!!_x") is None
    status, tokens = refresh(issuer, "rt_something_else")
    assert status == 200 and claims_of(tokens["access_token"]).account_id == "acct_default"
    assert issuer.refreshes_by_account == {"acct_default": 1}


def test_pool_account_files_are_distinct_expired_accounts(tmp_path: Path) -> None:
    paths = write_pool_accounts(tmp_path, 3)
    assert [path.name for path in paths] == [f"{account}.json" for account in pool_account_ids(3)]
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in paths)
    assert (tmp_path / "accounts").stat().st_mode & 0o777 == 0o700
    chosen, shadowed = scan(PoolPaths(tmp_path, tmp_path / "codex" / "auth.json"))
    assert not shadowed
    assert sorted(found.chatgpt_account_id for found in chosen.values()) == pool_account_ids(3)
    for path in paths:
        access = json.loads(path.read_text())["tokens"]["access_token"]
        expiry = claims_of(access).expires_at
        assert expiry is not None and expiry < time.time()


def test_control_api_reads_refreshes_and_requests_and_sets_limits() -> None:
    with simulator_thread() as simulator:
        control = SimulatorControl(simulator.base_url)
        document = demo_auth_document(time.time(), account_id="acct_a")
        body = {"grant_type": "refresh_token", "refresh_token": document["tokens"]["refresh_token"]}
        assert httpx.post(simulator.base_url + "/oauth/token", json=body).status_code == 200
        assert control.refreshes_by_account() == {"acct_a": 1}

        headers = {"authorization": f"Bearer {document['tokens']['access_token']}"}
        request = {"model": "gpt-5", "input": [], "stream": True, "store": False, "prompt_cache_key": "s1"}
        request |= {"instructions": "x"}
        control.set_limit("acct_a", 1, 30)
        statuses = [httpx.post(simulator.base_url + "/responses", json=request, headers=headers).status_code]
        statuses.append(httpx.post(simulator.base_url + "/responses", json=request, headers=headers).status_code)
        assert statuses == [200, 429]
        summaries = control.requests()
        assert [(s["account"], s["prompt_cache_key"], s["status"]) for s in summaries] == [
            ("acct_a", "s1", 200),
            ("acct_a", "s1", 429),
        ]


def test_a_slow_token_endpoint_spends_nothing_for_a_cut_request() -> None:
    with simulator_thread() as simulator:
        control = SimulatorControl(simulator.base_url)
        control.set_token_delay(1.0)
        token = demo_auth_document(time.time(), account_id="acct_a")["tokens"]["refresh_token"]
        body = {"grant_type": "refresh_token", "refresh_token": token}
        cut = threading.Thread(target=lambda: _post_and_give_up(simulator.base_url + "/oauth/token", body))
        cut.start()
        cut.join(5)
        time.sleep(1.2)  # past the delay: a request still being served would have spent the token by now
        assert control.refreshes_by_account() == {}
        control.set_token_delay(0)
        assert httpx.post(simulator.base_url + "/oauth/token", json=body).status_code == 200
        assert control.refreshes_by_account() == {"acct_a": 1}


def _post_and_give_up(url: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(url, json=body, timeout=0.3)
