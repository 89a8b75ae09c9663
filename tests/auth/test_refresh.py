"""Refresh: single-flight in a process and across processes, rotation persisted, permanent failures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from codexgate.auth.credentials import write_tokens
from codexgate.auth.refresh import AuthError, TokenManager
from codexgate.config import CODEX_CLIENT_ID
from codexgate.server.app import create_app
from codexgate.testing import UpstreamSimulator, simulator_thread
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import serve_in_thread, settings_for, write_auth_json


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


def _manager(home: Path, issuer: FakeIssuer, margin: float = 300) -> TokenManager:
    return TokenManager(
        own_file=home / "own" / "auth.json",
        codex_file=home / "codex" / "auth.json",
        issuer=issuer.base_url,
        client_id=CODEX_CLIENT_ID,
        refresh_margin=margin,
    )


def _expired_codex_file(home: Path, issuer: FakeIssuer) -> dict[str, object]:
    first = issuer.mint(expires_in=-60)  # already expired
    document = write_auth_json(home / "codex", refresh_token=first["refresh_token"], expires_in=-60)
    return document


async def test_concurrent_requests_share_one_refresh(tmp_path: Path, issuer: FakeIssuer) -> None:
    _expired_codex_file(tmp_path, issuer)
    issuer.refresh_delay = 0.1
    manager = _manager(tmp_path, issuer)
    results = await asyncio.gather(*(manager.get() for _ in range(100)))
    await manager.aclose()
    assert issuer.refresh_calls == 1
    assert len({c.access_token for c in results}) == 1
    stored = json.loads((tmp_path / "codex" / "auth.json").read_text())
    assert stored["tokens"]["refresh_token"] == issuer.issued[-1]["refresh_token"]  # rotated token persisted
    assert stored["tokens"]["access_token"] == results[0].access_token
    assert stored["OPENAI_API_KEY"] is None  # other keys of the Codex CLI's file are kept
    assert stat.S_IMODE((tmp_path / "codex" / "auth.json").stat().st_mode) == 0o600
    assert not (tmp_path / "own" / "auth.json").exists()  # written back to the file it came from


@pytest.mark.slow
def test_two_processes_refresh_once(tmp_path: Path, issuer: FakeIssuer) -> None:
    _expired_codex_file(tmp_path, issuer)
    issuer.refresh_delay = 0.3
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from codexgate.auth.refresh import TokenManager
        async def main():
            m = TokenManager(own_file=Path({str(tmp_path / "own" / "auth.json")!r}),
                             codex_file=Path({str(tmp_path / "codex" / "auth.json")!r}),
                             issuer={issuer.base_url!r}, client_id="x", refresh_margin=300)
            creds = await m.get()
            await m.aclose()
            print(creds.access_token[-12:])
        asyncio.run(main())
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert issuer.refresh_calls == 1
    assert outputs[0][0] == outputs[1][0]


async def test_reused_refresh_token_is_a_clear_401_without_retry_loop(tmp_path: Path, issuer: FakeIssuer) -> None:
    tokens = issuer.mint(expires_in=-60)
    issuer.used_refresh_tokens.add(tokens["refresh_token"])
    write_auth_json(tmp_path / "codex", refresh_token=tokens["refresh_token"], expires_in=-60)
    manager = _manager(tmp_path, issuer)
    with pytest.raises(AuthError) as info:
        await manager.get()
    assert info.value.status_code == 401 and info.value.code == "refresh_token_reused"
    assert "codexgate login" in info.value.message
    with pytest.raises(AuthError):
        await manager.get()
    assert issuer.refresh_calls == 1  # remembered: no second call with a dead token
    await manager.aclose()


async def test_own_store_wins_and_login_is_seen_without_restart(tmp_path: Path, issuer: FakeIssuer) -> None:
    manager = _manager(tmp_path, issuer)
    assert not manager.has_credentials()
    with pytest.raises(AuthError, match="codexgate login"):
        await manager.get()
    write_auth_json(tmp_path / "codex", account_id="acct_codex")
    assert (await manager.get()).account_id == "acct_codex"
    write_auth_json(tmp_path / "own", account_id="acct_own")
    credentials = await manager.get()
    assert credentials.account_id == "acct_own" and credentials.source == tmp_path / "own" / "auth.json"
    assert "eyJ" not in repr(credentials) and "eyJ" not in str(credentials)
    await manager.aclose()


def test_interrupted_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "auth.json"
    write_tokens(path, access_token="old-access", refresh_token="old-refresh", id_token=None)
    before = path.read_bytes()

    def broken_replace(*_args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_tokens(path, access_token="new-access", refresh_token="new-refresh", id_token=None)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["auth.json"]  # no temp file left behind


def test_upstream_401_refreshes_once_and_retries(
    tmp_path: Path, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    initial = issuer.mint()
    document = write_auth_json(home, refresh_token=initial["refresh_token"])
    with simulator_thread() as simulator:
        assert isinstance(simulator, UpstreamSimulator)
        simulator.accepted_tokens = set()  # the current access token is "expired" at the backend
        issuer.on_mint.append(lambda tokens: simulator.accepted_tokens.add(tokens["access_token"]))  # type: ignore[union-attr]
        settings = settings_for(home, simulator.base_url, auth_issuer=issuer.base_url)
        with serve_in_thread(create_app(settings)) as served:
            client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="x", max_retries=0)
            completion = client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
            assert completion.choices[0].message.content
            assert issuer.refresh_calls == 1
            # the first call with the stale token (the catalog's, or the answer's) was refused once, then
            # everything went through with the refreshed token
            statuses = [r.status for r in simulator.requests]
            assert statuses.count(401) == 1 and statuses[0] == 401 and set(statuses[1:]) == {200}, statuses
            assert [r.status for r in simulator.responses_requests][-1] == 200
            # a refresh token the issuer no longer accepts -> a clear 401, no loop
            issuer.valid_refresh_tokens.clear()
            simulator.accepted_tokens = set()
            with pytest.raises(openai.AuthenticationError) as info:
                client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
            assert "codexgate login" in info.value.message
            assert httpx.get(served.base_url + "/health").json()["credentials"] is True
    secrets = [document["tokens"]["access_token"], document["tokens"]["refresh_token"]]  # type: ignore[index]
    secrets += [value for tokens in issuer.issued for value in tokens.values()]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged, "expected some log output"
    for secret in secrets:
        assert secret not in logged
