"""The account registry: accounts on disk, one chain per account, states that last, changes seen live."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from codexgate.auth.login import browser_login, device_login, paste_login
from codexgate.auth.oauth_client import TokenSet
from codexgate.cli.main import app
from codexgate.pool import health
from codexgate.pool.account_files import PoolPaths
from codexgate.pool.accounts import AccountState, AccountStatus, account_key
from codexgate.pool.admin import StoredAccount, account_views, pause_account, resume_account, store_credentials
from codexgate.pool.registry import AccountRegistry, UnknownAccountError
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import make_jwt, write_auth_json

CODEXGATE = str(Path(sys.executable).parent / "codexgate")


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


@pytest.fixture
def paths(tmp_path: Path) -> PoolPaths:
    return PoolPaths(home=tmp_path / "home", codex_file=tmp_path / "codex" / "auth.json")


def registry_for(paths: PoolPaths, issuer_url: str = "http://127.0.0.1:9", **kwargs: Any) -> AccountRegistry:
    return AccountRegistry(paths, issuer=issuer_url, client_id="cid", refresh_margin=300, **kwargs)


def write_account(path: Path, tokens: dict[str, str], account_id: str) -> None:
    """A Codex-CLI-format file holding ``tokens`` (as the fake issuer minted them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"OPENAI_API_KEY": None, "tokens": {**tokens, "account_id": account_id}, "last_refresh": "x"}
    path.write_text(json.dumps(document))
    path.chmod(0o600)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def status_of(account: AccountState) -> AccountStatus:
    """The account's status, read afresh (mypy would keep an earlier ``is`` narrowing across a transition)."""
    return account.status


async def test_an_existing_auth_json_is_account_one_read_in_place(paths: PoolPaths) -> None:
    document = write_auth_json(paths.home, email="Dev.Person@example.com")
    registry = registry_for(paths)
    accounts = registry.accounts()
    key = account_key("acct_test_123", "user_1")
    assert list(accounts) == [key]
    state = accounts[key]
    assert (state.alias, state.email, state.plan, state.status) == (
        "dev.person",
        "Dev.Person@example.com",
        "plus",
        AccountStatus.ACTIVE,
    )
    assert registry.credential_file(key) == paths.legacy_file and paths.legacy_file.exists()
    credentials = await registry.credentials(key)
    assert credentials.access_token == document["tokens"]["access_token"]
    assert not paths.accounts_dir.exists()  # nothing moved, nothing written just by reading
    with pytest.raises(UnknownAccountError):
        await registry.credentials("acct_other:user_9")
    await registry.aclose()


async def test_the_codex_file_is_an_account_and_one_account_in_two_files_is_one(paths: PoolPaths) -> None:
    write_auth_json(paths.codex_file.parent, email="codex@example.com")
    registry = registry_for(paths)
    key = account_key("acct_test_123", "user_1")
    assert list(registry.accounts()) == [key]
    assert registry.credential_file(key) == paths.codex_file

    # the same workspace account and user logged in with codexgate too: one account, the own file wins
    own = write_auth_json(paths.home, email="own@example.com")
    registry.reload()
    assert list(registry.accounts()) == [key]
    assert registry.credential_file(key) == paths.legacy_file
    assert (await registry.credentials(key)).access_token == own["tokens"]["access_token"]

    # another user of the same workspace is another account (an email is not an identity)
    claims = {"chatgpt_account_id": "acct_test_123", "chatgpt_user_id": "user_2", "chatgpt_plan_type": "team"}
    tokens = {
        "access_token": make_jwt({"exp": time.time() + 3600, "https://api.openai.com/auth": claims}),
        "id_token": make_jwt({"email": "own@example.com", "https://api.openai.com/auth": claims}),
        "refresh_token": "rt_test_colleague",
    }
    write_account(paths.accounts_dir / "colleague.json", tokens, "acct_test_123")
    registry.reload()
    accounts = registry.accounts()
    assert set(accounts) == {key, account_key("acct_test_123", "user_2")}
    assert len({state.alias for state in accounts.values()}) == 2
    await registry.aclose()


async def test_login_adds_an_account_and_a_second_login_updates_it(
    paths: PoolPaths, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry = registry_for(paths, issuer.base_url)
    stored: list[StoredAccount] = []

    async def store(tokens: TokenSet) -> Any:
        result = await store_credentials(
            paths, access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
        )
        stored.append(result)
        return result.credentials

    async def login() -> None:
        issuer.device_polls = 0

        async def no_sleep(_seconds: float) -> None:
            return None

        await device_login(
            issuer=issuer.base_url,
            client_id="cid",
            own_file=paths.legacy_file,
            show=lambda _text: None,
            sleep=no_sleep,
            store=store,
        )

    await login()
    assert stored[-1].created and stored[-1].alias == "dev" and stored[-1].path == paths.legacy_file
    assert [state.alias for state in registry.accounts().values()] == ["dev"]
    await login()  # the same account again: updated in place, still one account
    assert not stored[-1].created and stored[-1].path == paths.legacy_file
    registry.reload()
    [key] = registry.accounts()
    assert (await registry.credentials(key)).refresh_token == issuer.issued[-1]["refresh_token"]

    issuer.account_id = "acct_second"  # another workspace, same email: a second account with its own file
    await login()
    assert stored[-1].created and stored[-1].alias == "dev-2"
    assert stored[-1].path == paths.accounts_dir / "dev-2.json"
    registry.reload()
    assert sorted(state.alias for state in registry.accounts().values()) == ["dev", "dev-2"]
    for path in (paths.legacy_file, stored[-1].path, paths.index_file):
        assert mode(path) == 0o600
    assert mode(paths.accounts_dir) == 0o700
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "codexgate.pool")
    assert "dev-2" in logged and "dev@example.com" not in logged  # accounts are named by alias only
    await registry.aclose()


async def test_two_accounts_expiring_together_refresh_once_each(paths: PoolPaths, issuer: FakeIssuer) -> None:
    files = {}
    for account_id in ("acct_one", "acct_two"):
        issuer.account_id = account_id
        path = paths.accounts_dir / f"{account_id}.json"
        write_account(path, issuer.mint(expires_in=-60), account_id)
        files[account_id] = path
    issuer.refresh_delay = 0.1
    registry = registry_for(paths, issuer.base_url)
    keys = list(registry.accounts())
    assert len(keys) == 2
    results = await asyncio.gather(*(registry.credentials(keys[i % 2]) for i in range(50)))
    assert issuer.refresh_calls == 2
    for index, key in enumerate(keys):
        tokens = {credentials.access_token for credentials in results[index::2]}
        assert len(tokens) == 1  # all 25 callers of one account got the one refreshed token
        stored = json.loads(registry.credential_file(key).read_text())  # type: ignore[union-attr]
        assert stored["tokens"]["access_token"] in tokens
        assert stored["tokens"]["refresh_token"] in issuer.valid_refresh_tokens  # the rotated token is kept
        assert mode(registry.credential_file(key)) == 0o600  # type: ignore[arg-type]
    assert set(registry.accounts()) == set(keys)  # a refresh does not change who the account is
    # an upstream 401 with the current token: exactly one more refresh for that account
    rejected = await registry.credentials(keys[0])
    renewed = await asyncio.gather(*(registry.refresh_after_unauthorized(keys[0], rejected) for _ in range(10)))
    assert issuer.refresh_calls == 3 and len({c.access_token for c in renewed}) == 1
    await registry.aclose()


async def test_states_survive_a_restart(paths: PoolPaths) -> None:
    write_auth_json(paths.home, email="first@example.com")
    write_auth_json(paths.codex_file.parent, account_id="acct_codex", email="second@example.com")
    registry = registry_for(paths, save_interval=0.05)
    await registry.start()
    accounts = registry.accounts()
    first, second = (accounts[account_key(a, "user_1")] for a in ("acct_test_123", "acct_codex"))
    now = time.time()
    health.usage_limit(first, now + 3600, now, "usage limit reached")
    health.update_windows(
        second, {"primary": {"used_percent": 42.5, "reset_at": now + 600, "window_minutes": 300}}, now
    )
    health.begin_stream(second, probe=False, day="2026-12-01")
    for _ in range(100):  # the background saver writes within its interval, off the request path
        await asyncio.sleep(0.02)
        if paths.state_file.exists() and "42.5" in paths.state_file.read_text():
            break
    assert mode(paths.state_file) == 0o600
    health.forbidden(second, '{"error": "account_deactivated"}', now)
    await registry.aclose()  # the last write happens at shutdown

    again = registry_for(paths)
    restored = again.accounts()
    first_again, second_again = (restored[first.key], restored[second.key])
    assert first_again.status is AccountStatus.COOLING and first_again.cooling_until == pytest.approx(now + 3600)
    assert first_again.alias == "first" and first_again.last_error == "usage limit reached"
    assert second_again.status is AccountStatus.DISABLED
    assert second_again.primary is not None and second_again.primary.used_percent == 42.5
    assert (second_again.usage_day, second_again.requests_today) == ("2026-12-01", 1)
    assert second_again.streams_in_flight == 0  # runtime fields start afresh
    assert "access_token" not in paths.state_file.read_text()
    await again.aclose()


async def test_a_change_by_the_cli_reaches_a_live_registry_within_a_second(paths: PoolPaths, tmp_path: Path) -> None:
    write_auth_json(paths.home, email="live@example.com")
    registry = registry_for(paths)
    [key] = registry.accounts()
    env = {**os.environ, "CODEXGATE_HOME": str(paths.home), "CODEX_HOME": str(paths.codex_file.parent)}

    def cli(*args: str) -> float:
        """The real console script once (a process of its own), then the same commands in-process (faster)."""
        if args[1] == "pause":
            done = subprocess.run([CODEXGATE, *args], env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        else:
            result = CliRunner().invoke(app, list(args), env=env)
            assert result.exit_code == 0, result.output
        return time.monotonic()

    async def seen(condition: Any, since: float) -> float:
        while not condition():
            assert time.monotonic() - since < 1.0, "the registry did not see the change within a second"
            await asyncio.sleep(0.01)
        return time.monotonic() - since

    finished = await asyncio.to_thread(cli, "accounts", "pause", "live")
    await seen(lambda: registry.accounts()[key].status is AccountStatus.PAUSED, finished)
    finished = await asyncio.to_thread(cli, "accounts", "resume", "live")
    await seen(lambda: registry.accounts()[key].status is AccountStatus.ACTIVE, finished)
    finished = await asyncio.to_thread(cli, "accounts", "rename", "live", "primary-seat")
    await seen(lambda: registry.accounts()[key].alias == "primary-seat", finished)

    other = tmp_path / "elsewhere"
    write_auth_json(other, account_id="acct_imported", email="imported@example.com")
    finished = await asyncio.to_thread(cli, "accounts", "import", str(other / "auth.json"))
    await seen(lambda: len(registry.accounts()) == 2, finished)
    imported = account_key("acct_imported", "user_1")
    assert registry.accounts()[imported].alias == "imported"
    finished = await asyncio.to_thread(cli, "accounts", "remove", "imported")
    await seen(lambda: imported not in registry.accounts(), finished)
    with pytest.raises(UnknownAccountError):
        await registry.credentials(imported)
    await registry.aclose()


async def test_new_credentials_lift_needs_login_and_a_resume_lifts_disabled_once(paths: PoolPaths) -> None:
    write_auth_json(paths.home)
    registry = registry_for(paths)
    [key] = registry.accounts()
    state = registry.accounts()[key]
    health.unauthorized_after_refresh(state, time.time())
    registry.reload()
    assert state.status is AccountStatus.NEEDS_LOGIN  # a rescan alone does not lift it
    write_auth_json(paths.home)  # a new login of the same account rewrites its file
    registry.reload()
    assert registry.accounts()[key] is state and status_of(state) is AccountStatus.ACTIVE

    health.forbidden(state, "account deactivated", time.time())
    resume_account(paths, "dev")
    registry.reload()
    assert status_of(state) is AccountStatus.ACTIVE
    health.forbidden(state, "account deactivated", time.time())
    registry.reload()
    assert status_of(state) is AccountStatus.DISABLED  # that resume was applied once, not on every rescan
    await registry.aclose()


async def test_the_index_is_applied_when_it_changes_so_a_pause_from_elsewhere_stands(paths: PoolPaths) -> None:
    """With several instances a pause or resume may come from another home (through the shared pool state):
    this home's index, saying the same as before, must not undo it on a rescan or after a restart."""
    write_auth_json(paths.home)
    registry = registry_for(paths)
    [key] = registry.accounts()
    state = registry.accounts()[key]

    def listed() -> str:
        [view] = account_views(paths, time.time(), "2026-12-02")
        return str(view["state_text"])

    pause_account(paths, "dev")
    registry.reload()
    assert status_of(state) is AccountStatus.PAUSED
    health.resume(state)  # resumed elsewhere
    registry.reload()
    assert status_of(state) is AccountStatus.ACTIVE  # the index still says paused, as it did: not paused again

    resume_account(paths, "dev")
    registry.reload()
    assert status_of(state) is AccountStatus.ACTIVE
    health.pause(state)  # paused elsewhere
    registry.reload()
    assert status_of(state) is AccountStatus.PAUSED  # the index has said "not paused" since the last resume
    await registry.aclose()  # writes state.json with the word applied

    assert listed() == "paused"  # `accounts list` reads it the same way
    again = registry_for(paths)
    assert again.accounts()[key].status is AccountStatus.PAUSED  # and so does a restarted server
    resume_account(paths, "dev")  # the operator's next word here is applied
    again.reload()
    assert again.accounts()[key].status is AccountStatus.ACTIVE
    pause_account(paths, "dev")
    again.reload()
    assert again.accounts()[key].status is AccountStatus.PAUSED
    await again.aclose()
    assert listed() == "paused"


async def test_the_browser_and_paste_flows_store_into_the_pool(paths: PoolPaths, issuer: FakeIssuer) -> None:
    async def store(tokens: TokenSet) -> Any:
        stored = await store_credentials(
            paths, access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
        )
        return stored.credentials

    shown: list[str] = []

    def follow(url: str) -> str:
        return str(httpx.get(url, follow_redirects=False).headers["location"])

    def pasted(_prompt: str) -> str:
        return follow(next(line for text in shown for line in text.splitlines() if line.startswith("http")))

    issuer.account_id = "acct_pasted"
    credentials = await paste_login(
        issuer=issuer.base_url,
        client_id="cid",
        own_file=tmp_file(paths),
        port=1455,
        show=shown.append,
        read_line=pasted,
        store=store,
    )
    assert credentials.source == paths.legacy_file

    async def browser(url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            redirect = await client.get(url)
            assert (await client.get(redirect.headers["location"].replace("localhost", "127.0.0.1"))).status_code == 200

    issuer.account_id = "acct_browser"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    credentials = await browser_login(
        issuer=issuer.base_url,
        client_id="cid",
        own_file=tmp_file(paths),
        port=port,
        show=lambda _text: None,
        open_browser=None,
        on_url=browser,
        store=store,
    )
    assert credentials.source == paths.accounts_dir / "dev-2.json"
    registry = registry_for(paths)
    assert {state.chatgpt_account_id for state in registry.accounts().values()} == {"acct_pasted", "acct_browser"}
    assert not tmp_file(paths).exists()  # the flows' own_file is not written when a store is given
    await registry.aclose()


def tmp_file(paths: PoolPaths) -> Path:
    return paths.home / "unused.json"
