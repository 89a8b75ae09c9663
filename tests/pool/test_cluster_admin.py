"""The CLI's account changes reach the shared state: an account signed in anywhere is served by every instance,
an older copy never replaces newer credentials, a removed account leaves every instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexgate.config import Settings, load_settings
from codexgate.pool.accounts import account_key
from codexgate.pool.cluster_admin import ClusterAdminError, share_credentials, unshare_account
from tests.fake_issuer import fake_issuer_thread
from tests.pool.test_shared_tokens import auth_document, eventually, instances, write_document
from tests.services import RedisServer, free_port, redis_prefix, redis_server

__all__ = ["redis_prefix", "redis_server"]

SECRET = "c1-shared-tokens-test-key-" + "k" * 16  # the key tests/pool/test_shared_tokens.py's instances use
KEY = account_key("acct_admin", "user_admin")


def settings_for(home: Path, state_url: str | None, prefix: str) -> Settings:
    env = {"CODEXGATE_HOME": str(home), "CODEXGATE_SECRET_KEY": SECRET, "CODEXGATE_STATE_PREFIX": prefix}
    if state_url:
        env["CODEXGATE_STATE_URL"] = state_url
    return load_settings(env=env).settings


async def test_an_account_shared_from_the_cli_is_served_then_removed_everywhere(
    tmp_path: Path, redis_server: RedisServer, redis_prefix: str
) -> None:
    newer = auth_document(account_id="acct_admin", user_id="user_admin", last_refresh="2026-12-01T10:00:00Z")
    older = auth_document(account_id="acct_admin", user_id="user_admin", last_refresh="2026-11-01T10:00:00Z")
    login_file = tmp_path / "one-off" / "accounts" / "admin.json"
    write_document(login_file, newer)
    settings = settings_for(tmp_path / "one-off", redis_server.url, redis_prefix)

    with fake_issuer_thread() as issuer:
        async with instances(redis_server, redis_prefix, [tmp_path / "empty-home"], issuer.base_url) as [server]:
            assert KEY not in server.registry.accounts()
            assert await share_credentials(settings, login_file) is True
            await eventually(lambda: KEY in server.registry.accounts())
            served = await server.registry.credentials(KEY)
            assert served.access_token == newer["tokens"]["access_token"]

            raw = await server.cluster.state.get("credentials", KEY)
            assert raw is not None and newer["tokens"]["refresh_token"].encode() not in raw

            write_document(login_file, older)  # a stale copy from another machine
            assert await share_credentials(settings, login_file) is False
            assert (await server.registry.credentials(KEY)).access_token == newer["tokens"]["access_token"]

            assert await unshare_account(settings, KEY) is True
            await eventually(lambda: KEY not in server.registry.accounts())
            assert await unshare_account(settings, KEY) is False


async def test_without_state_url_nothing_is_shared_and_an_unreachable_store_is_a_clear_error(
    tmp_path: Path, redis_prefix: str
) -> None:
    login_file = tmp_path / "auth.json"
    write_document(login_file, auth_document(account_id="acct_admin", user_id="user_admin"))
    assert await share_credentials(settings_for(tmp_path, None, redis_prefix), login_file) is None
    assert await unshare_account(settings_for(tmp_path, None, redis_prefix), KEY) is None

    nobody = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(ClusterAdminError) as caught:
        await share_credentials(settings_for(tmp_path, nobody, redis_prefix), login_file)
    assert "cannot be reached" in str(caught.value) and "hunter2secret" not in str(caught.value)
    with pytest.raises(ClusterAdminError, match="holds no credentials"):
        empty = tmp_path / "empty.json"
        empty.write_text("{}")
        await share_credentials(settings_for(tmp_path, nobody, redis_prefix), empty)
