"""``codexgate accounts import`` / ``remove`` with ``state_url``: the account reaches the shared state at once (an
account signed in from a one-off container serves every instance) and leaves it from any home."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from codexgate.pool.accounts import account_key
from codexgate.state.redis_state import RedisState
from tests.cli.cli_support import cli_env, run_cli, shared_state_env
from tests.pool.test_shared_tokens import auth_document
from tests.services import RedisServer, redis_prefix, redis_server

__all__ = ["redis_prefix", "redis_server"]

KEY = account_key("acct_cli", "user_cli")


def stored_accounts(server: RedisServer, prefix: str) -> dict[str, bytes]:
    async def scan() -> dict[str, bytes]:
        state = RedisState.from_url(server.url, prefix=prefix)
        try:
            return await state.scan("credentials")
        finally:
            await state.close()

    return asyncio.run(scan())


def test_import_shares_the_account_and_remove_from_an_empty_home_unshares_it(
    tmp_path: Path, redis_server: RedisServer, redis_prefix: str
) -> None:
    document = auth_document(account_id="acct_cli", user_id="user_cli", email="ops.cli@example.com")
    codex_file = tmp_path / "other-machine" / "auth.json"
    codex_file.parent.mkdir()
    codex_file.write_text(json.dumps(document))

    def shared(home: Path) -> dict[str, str]:
        return shared_state_env(tmp_path, home, redis_server.url, redis_prefix, "cli-accounts-shared-secret-key")

    one_off = shared(tmp_path / "one-off")
    imported = run_cli(["accounts", "import", str(codex_file)], one_off)
    assert imported.returncode == 0, imported.stderr
    assert "every instance serves this account" in imported.stderr
    sealed = stored_accounts(redis_server, redis_prefix)
    assert list(sealed) == [KEY]
    assert document["tokens"]["refresh_token"].encode() not in sealed[KEY]

    again = run_cli(["accounts", "import", str(codex_file)], one_off)  # same document: nothing newer to store
    assert again.returncode == 0 and "already holds newer credentials" not in again.stderr

    elsewhere = shared(tmp_path / "empty")
    missing = run_cli(["accounts", "remove", "nobody"], elsewhere)
    assert missing.returncode == 1 and "no account named 'nobody'" in missing.stderr
    removed = run_cli(["accounts", "remove", "ops.cli"], elsewhere)
    assert removed.returncode == 0, removed.stderr
    assert "every instance drops it" in removed.stderr
    assert stored_accounts(redis_server, redis_prefix) == {}


def test_an_unreachable_shared_state_is_a_clear_error(tmp_path: Path) -> None:
    codex_file = tmp_path / "auth.json"
    codex_file.write_text(json.dumps(auth_document(account_id="acct_cli", user_id="user_cli")))
    env = cli_env(
        tmp_path,
        CODEXGATE_HOME=str(tmp_path / "home"),
        CODEXGATE_STATE_URL="redis://:topsecretpw@127.0.0.1:9/0",
        CODEXGATE_SECRET_KEY="cli-accounts-shared-secret-key",
    )
    result = run_cli(["accounts", "import", str(codex_file)], env)
    assert result.returncode == 1
    assert "shared state (state_url) cannot be reached" in result.stderr and "topsecretpw" not in result.stderr
