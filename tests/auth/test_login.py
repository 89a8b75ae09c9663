"""The three sign-in flows end to end against the fake issuer over real HTTP, and the CLI around them."""

from __future__ import annotations

import json
import logging
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from codexgate.auth.login import browser_login, device_login, paste_login
from codexgate.auth.oauth_client import AuthError
from codexgate.cli.main import app
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import free_port, write_auth_json


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


async def test_browser_flow_with_pkce_and_state(
    tmp_path: Path, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    opened: list[str] = []

    async def browser(url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            redirect = await client.get(url)
            assert redirect.status_code == 302
            target = redirect.headers["location"].replace("localhost", "127.0.0.1")
            # a forged callback with the wrong state is refused and does not end the flow
            forged = target.replace("state=", "state=forged")
            assert (await client.get(forged)).status_code == 400
            page = await client.get(target)
            assert page.status_code == 200 and "Signed in" in page.text

    own = tmp_path / "home" / "auth.json"
    credentials = await browser_login(
        issuer=issuer.base_url,
        client_id="cid",
        own_file=own,
        port=free_port(),
        show=shown.append,
        open_browser=opened.append,
        on_url=browser,
    )
    assert credentials.email == "dev@example.com" and credentials.account_id == "acct_test_123"
    assert opened and opened[0].startswith(issuer.base_url + "/oauth/authorize?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(opened[0]).query)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["openid profile email offline_access"]
    document = json.loads(own.read_text())
    assert document["tokens"]["refresh_token"] == issuer.issued[-1]["refresh_token"]
    assert stat.S_IMODE(own.stat().st_mode) == 0o600
    assert stat.S_IMODE(own.parent.stat().st_mode) == 0o700
    logged = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(shown)
    for value in issuer.issued[-1].values():
        assert value not in logged


async def test_paste_flow_accepts_url_and_rejects_state_mismatch(tmp_path: Path, issuer: FakeIssuer) -> None:
    shown: list[str] = []

    def read_line(_prompt: str) -> str:
        url = next(line for text in shown for line in text.splitlines() if line.startswith("http"))
        redirect = httpx.get(url, follow_redirects=False)
        return redirect.headers["location"]

    own = tmp_path / "auth.json"
    credentials = await paste_login(
        issuer=issuer.base_url, client_id="cid", own_file=own, port=1455, show=shown.append, read_line=read_line
    )
    assert credentials.source == own and own.exists()

    with pytest.raises(AuthError, match="state"):
        await paste_login(
            issuer=issuer.base_url,
            client_id="cid",
            own_file=tmp_path / "other.json",
            port=1455,
            show=lambda _t: None,
            read_line=lambda _p: "http://localhost:1455/auth/callback?code=x&state=wrong",
        )
    assert not (tmp_path / "other.json").exists()


async def test_device_flow_polls_until_approved(tmp_path: Path, issuer: FakeIssuer) -> None:
    shown: list[str] = []
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    credentials = await device_login(
        issuer=issuer.base_url, client_id="cid", own_file=tmp_path / "auth.json", show=shown.append, sleep=fake_sleep
    )
    assert credentials.email == "dev@example.com"
    assert issuer.device_polls == 3 and len(sleeps) == 2  # two pending answers, then approval
    assert any("ABCD-1234" in text for text in shown)
    assert issuer.exchanges == 1


def test_cli_status_json_and_logout(tmp_path: Path) -> None:
    home, codex = tmp_path / "home", tmp_path / "codex"
    own_doc = write_auth_json(home, email="own@example.com")
    write_auth_json(codex, email="codex@example.com")
    (home / "rate_limits.json").write_text(json.dumps({"primary": {"used_percent": 42.0, "window_minutes": 300}}))
    env = {"CODEXGATE_HOME": str(home), "CODEX_HOME": str(codex)}
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["email"] == "own@example.com" and document["plan"] == "plus"
    assert document["rate_limits"]["primary"]["used_percent"] == 42.0
    tokens = own_doc["tokens"]
    assert isinstance(tokens, dict)
    for name in ("access_token", "refresh_token", "id_token"):
        assert tokens[name] not in result.output
    assert runner.invoke(app, ["logout"], env=env).exit_code == 0
    assert not (home / "auth.json").exists() and (codex / "auth.json").exists()
    after = json.loads(runner.invoke(app, ["status", "--json"], env=env).stdout)
    assert after["email"] == "codex@example.com"
    plain = runner.invoke(app, ["status"], env=env)
    assert plain.exit_code == 0 and "codex@example.com" in plain.output
