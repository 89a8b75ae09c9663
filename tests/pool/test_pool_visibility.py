"""The pool, visible: usage rows, /metrics, ``stats`` and ``status`` name the account by its alias."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from codexgate.cli.main import app as cli
from codexgate.observability.metrics import Metrics
from codexgate.pool import health
from codexgate.pool.account_files import PoolPaths
from codexgate.pool.accounts import AccountState, UsageWindow
from codexgate.pool.registry import AccountRegistry
from codexgate.storage import usage_db
from codexgate.testing import UpstreamSimulator
from tests.helpers import usage_rows
from tests.pool.test_pool_e2e import pool_gateway, write_account


def registry_of(home: Path) -> AccountRegistry:
    return AccountRegistry(
        PoolPaths(home, home / "codex" / "auth.json"), issuer="http://127.0.0.1:9", client_id="c", refresh_margin=0
    )


def env_of(home: Path) -> dict[str, str]:
    return {"CODEXGATE_HOME": str(home), "CODEX_HOME": str(home / "codex")}


def test_usage_rows_and_metrics_carry_the_account_alias(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pool_gateway(simulator, home, ("acct_a", "acct_b")) as pool:
        simulator.set_limit("acct_a", remaining_requests=0, resets_in=60)
        answer = httpx.post(pool.base_url + "/v1/responses", json={"model": "gpt-5", "input": "hi"}, timeout=10)
        assert answer.status_code == 200
        metrics = httpx.get(pool.base_url + "/metrics", timeout=10).text
        assert 'codexgate_account_state{account="acct_a",state="cooling"} 1.0' in metrics
        assert 'codexgate_account_state{account="acct_b",state="active"} 1.0' in metrics
        assert 'codexgate_account_used_percent{account="acct_b",window="primary"} 12.0' in metrics
        assert "example.com" not in metrics  # never an email
        writer = pool.gateway.usage_writer
        assert writer is not None
        [row] = usage_rows(writer, pool.gateway.settings.database_path, 1)
        assert row.account == "acct_b" and row.status == 200


def test_metrics_drop_an_account_that_left() -> None:
    metrics = Metrics()
    one = AccountState("acct_1", "u", alias="one", primary=UsageWindow(40.0), secondary=UsageWindow(70.0))
    two = AccountState("acct_2", "u", alias="two")
    accounts = {one.key: one, two.key: two}
    metrics.accounts = lambda: accounts
    text = metrics.render()[0].decode()
    assert 'codexgate_account_used_percent{account="one",window="secondary"} 70.0' in text
    assert 'codexgate_account_state{account="two",state="active"} 1.0' in text
    del accounts[two.key]
    assert 'account="two"' not in metrics.render()[0].decode()


def test_status_exits_non_zero_only_when_no_account_can_serve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for account_id in ("acct_a", "acct_b"):
        write_account(home, account_id)
    registry = registry_of(home)
    states = {state.alias: state for state in registry.accounts().values()}
    now = time.time()
    health.usage_limit(states["acct_a"], now + 3600, now)
    registry.save()
    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--json"], env=env_of(home))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    by_alias = {account["alias"]: account for account in document["accounts"]}
    assert by_alias["acct_a"]["can_serve"] is False and by_alias["acct_b"]["can_serve"] is True

    health.usage_limit(states["acct_b"], now + 3600, now)
    registry.save()
    result = runner.invoke(cli, ["status"], env=env_of(home))
    assert result.exit_code == 1
    assert "No account can serve" in result.output and "Not signed in" not in result.output
    document = json.loads(runner.invoke(cli, ["status", "--json"], env=env_of(home)).stdout)
    assert document["can_serve"] is False


def test_stats_show_usage_by_account(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    conn = usage_db.connect(home / "usage.db")
    records = [
        usage_db.UsageRecord(endpoint="responses", status=200, account="acct_a", input_tokens=5),
        usage_db.UsageRecord(endpoint="responses", status=200, account="acct_a", input_tokens=7),
        usage_db.UsageRecord(endpoint="responses", status=200, account="acct_b", input_tokens=11),
    ]
    usage_db.insert_records(conn, records)
    conn.close()
    result = CliRunner().invoke(cli, ["stats", "--json"], env=env_of(home))
    assert result.exit_code == 0, result.output
    by_account = {g["account"]: g for g in json.loads(result.stdout)["by_account"]}
    assert by_account["acct_a"]["requests"] == 2 and by_account["acct_a"]["input_tokens"] == 12
    assert by_account["acct_b"]["requests"] == 1
    table = CliRunner().invoke(cli, ["stats"], env=env_of(home))
    assert "By account" in table.output and "acct_b" in table.output
