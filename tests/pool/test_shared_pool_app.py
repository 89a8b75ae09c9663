"""Two gateways (uvicorn on loopback) sharing one Redis: the second, with an empty home, serves the account
the first imported, and the expired token is refreshed once for both."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codexgate.server.app import create_app
from codexgate.testing import UpstreamSimulator
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import make_jwt, serve_in_thread, settings_for
from tests.services import RedisServer, redis_prefix, redis_server

__all__ = ["redis_prefix", "redis_server"]


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


def write_expired_account(home: Path, account_id: str, refresh_token: str) -> Path:
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus", "chatgpt_user_id": "user_1"}
    exp = int(time.time() - 60)
    tokens = {
        "access_token": make_jwt({"exp": exp, "https://api.openai.com/auth": auth}),
        "id_token": make_jwt({"exp": exp, "email": f"{account_id}@example.com", "https://api.openai.com/auth": auth}),
        "refresh_token": refresh_token,
        "account_id": account_id,
    }
    path = home / "accounts" / f"{account_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": "x"}))
    path.chmod(0o600)
    return path


async def test_an_empty_instance_serves_the_cluster_account_and_both_share_one_refresh(
    simulator: UpstreamSimulator, redis_server: RedisServer, redis_prefix: str, issuer: FakeIssuer, tmp_path: Path
) -> None:
    issuer.account_id = "acct_shared"  # the refreshed tokens name the same account
    issuer.refresh_delay = 0.2
    issuer.valid_refresh_tokens.add("rt_shared_start")
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    account_file = write_expired_account(home_a, "acct_shared", "rt_shared_start")
    file_bytes = account_file.read_bytes()
    overrides = {
        "state_url": redis_server.url,
        "state_prefix": redis_prefix,
        "secret_key": "c1-app-test-secret-key-" + "q" * 12,
        "auth_issuer": issuer.base_url,
        "upstream_retries": 0,
    }
    with (
        serve_in_thread(create_app(settings_for(home_a, simulator.base_url, **overrides))) as a,
        serve_in_thread(create_app(settings_for(home_b, simulator.base_url, **overrides))) as b,
    ):
        async with httpx.AsyncClient(timeout=20) as client:
            health = (await client.get(f"{b.base_url}/health")).json()
            assert health["credentials"] is True and health["shared_state"] == "ok"
            body = {"model": "gpt-5", "input": "hi", "stream": False}
            responses = await asyncio.gather(
                *(client.post(f"{base}/v1/responses", json=body) for base in (a.base_url, b.base_url) * 10)
            )
        assert [response.status_code for response in responses] == [200] * 20, responses[0].text
        assert issuer.refresh_calls == 1
        answered = simulator.responses_requests
        assert len(answered) == 20 and {request.account for request in answered} == {"acct_shared"}
    assert account_file.read_bytes() == file_bytes  # the cluster's account: nothing written back
    assert not (home_b / "accounts" / "acct_shared.json").exists()
