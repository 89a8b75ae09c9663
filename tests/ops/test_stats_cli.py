"""``codexgate stats``: figures match the rows written; zeroed with no database; --json is pure JSON."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from codexgate.cli.main import app
from codexgate.cli.stats_cmd import parse_since
from codexgate.storage import rate_limits
from codexgate.storage.usage_writer import UsageRecord, UsageWriter
from tests.conftest import Gateway
from tests.helpers import usage_rows


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"CODEXGATE_HOME": str(home), "CODEXGATE_CONFIG": ""})
    return result.exit_code, result.stdout, result.stderr


def _write(home: Path, records: list[UsageRecord]) -> None:
    writer = UsageWriter(home / "usage.db")
    writer.open()
    for record in records:
        writer.submit(record)
    writer.close()


def _zeroed(totals: dict[str, Any]) -> bool:
    return all(totals[name] == 0 for name in ("requests", "errors", "input_tokens", "output_tokens"))


def test_no_database_gives_zeroed_figures(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, stdout, _ = invoke(home, "stats", "--json")
    assert code == 0
    document = orjson.loads(stdout)
    assert _zeroed(document["totals"])
    assert document["by_day"] == document["by_model"] == document["by_key"] == []
    assert document["rate_limits"] is None
    assert not (home / "usage.db").exists()
    code, stdout, _ = invoke(home, "stats")
    assert code == 0 and "By model" in stdout


def test_an_empty_database_gives_zeroed_figures(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home, [])
    code, stdout, _ = invoke(home, "stats", "--json", "--since", "all")
    assert code == 0 and _zeroed(orjson.loads(stdout)["totals"])


def test_figures_match_the_rows_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    now = time.time()
    records = [
        UsageRecord(
            endpoint="/v1/chat/completions",
            status=200,
            key_name="laptop",
            model_requested="gpt-5",
            stream=True,
            input_tokens=100,
            cached_tokens=40,
            output_tokens=50,
            reasoning_tokens=10,
            ttft_ms=200.0,
            duration_ms=1000.0,
        ),
        UsageRecord(
            endpoint="/v1/responses",
            status=200,
            key_name="ci",
            model_requested="gpt-5-codex",
            input_tokens=7,
            output_tokens=3,
            duration_ms=500.0,
        ),
        UsageRecord(
            endpoint="/v1/chat/completions",
            status=429,
            key_name="ci",
            model_requested="gpt-5",
            error_code="rate_limited",
        ),
        UsageRecord(  # outside the window
            time=now - 30 * 86400,
            endpoint="/v1/chat/completions",
            status=200,
            model_requested="gpt-5",
            input_tokens=999,
        ),
    ]
    _write(home, records)
    rate_limits.save(
        home / "rate_limits.json",
        {
            "primary": {"used_percent": 12.5, "window_minutes": 300, "reset_after_seconds": 600},
            "secondary": {"used_percent": 3.0, "window_minutes": 10080, "reset_at": 1_900_000_000},
            "plan_type": "plus",
            "observed_at": now,
        },
    )
    code, stdout, _ = invoke(home, "stats", "--json", "--since", "7d")
    assert code == 0
    document = orjson.loads(stdout)
    totals = document["totals"]
    assert (totals["requests"], totals["errors"]) == (3, 1)
    assert (totals["input_tokens"], totals["cached_tokens"], totals["output_tokens"], totals["reasoning_tokens"]) == (
        107,
        40,
        53,
        10,
    )
    assert totals["avg_ttft_ms"] == 200.0
    by_model = {row["model"]: row for row in document["by_model"]}
    assert by_model["gpt-5"]["requests"] == 2 and by_model["gpt-5"]["input_tokens"] == 100
    assert by_model["gpt-5-codex"]["output_tokens"] == 3
    by_key = {row["key"]: row for row in document["by_key"]}
    assert by_key["laptop"]["requests"] == 1 and by_key["ci"]["requests"] == 2 and by_key["ci"]["errors"] == 1
    today = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    assert [row["day"] for row in document["by_day"]] == [today]
    windows = document["rate_limits"]["windows"]
    assert windows["primary"]["used_percent"] == 12.5 and windows["secondary"]["window_minutes"] == 10080
    assert windows["primary"]["resets_at"] == datetime.fromtimestamp(now + 600, UTC).isoformat(timespec="seconds")
    assert windows["secondary"]["resets_at"] == datetime.fromtimestamp(1_900_000_000, UTC).isoformat(timespec="seconds")
    assert document["rate_limits"]["plan_type"] == "plus"

    code, stdout, _ = invoke(home, "stats", "--json", "--since", "all")
    assert orjson.loads(stdout)["totals"]["requests"] == 4

    code, stdout, _ = invoke(home, "stats")
    assert code == 0
    assert "laptop" in stdout and "gpt-5-codex" in stdout and "12.5" in stdout


def test_parse_since() -> None:
    now = 1_700_000_000.0
    assert parse_since("7d", now=now) == now - 7 * 86400
    assert parse_since("24h", now=now) == now - 86400
    assert parse_since("2w", now=now) == now - 14 * 86400
    assert parse_since("all", now=now) == 0.0
    assert parse_since("2023-11-14") == datetime(2023, 11, 14, tzinfo=UTC).timestamp()


def test_a_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    code, stdout, stderr = invoke(tmp_path, "stats", "--since", "yesterday")
    assert code == 2 and stdout == "" and "7d" in stderr


@pytest.mark.parametrize("args", [["--json"], ["--json", "--since", "2000-01-01"]])
def test_json_stdout_is_only_the_document(tmp_path: Path, args: list[str]) -> None:
    _write(tmp_path, [UsageRecord(endpoint="/v1/models", status=200)])
    code, stdout, _ = invoke(tmp_path, "stats", *args)
    assert code == 0
    assert stdout.lstrip().startswith("{") and stdout.rstrip().endswith("}")
    orjson.loads(stdout)


def test_stats_json_matches_the_rows_a_gateway_wrote(gateway: Gateway) -> None:
    client = gateway.client()
    for model in ("gpt-5", "gpt-5", "gpt-5-codex"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "count"}])
    rows = usage_rows(gateway.app.state.gateway.usage_writer, gateway.settings.database_path, 3)
    assert [row.status for row in rows] == [200, 200, 200]
    code, stdout, stderr = invoke(gateway.home, "stats", "--json", "--since", "all")
    assert code == 0, stderr
    document = orjson.loads(stdout)
    counted = ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens")
    totals = document["totals"]
    assert (totals["requests"], totals["errors"]) == (3, 0)
    assert {name: totals[name] for name in counted} == {name: sum(getattr(r, name) for r in rows) for name in counted}
    assert totals["input_tokens"] > 0 and totals["output_tokens"] > 0  # the simulator reports usage
    by_model = {group["model"]: group for group in document["by_model"]}
    assert {model: group["requests"] for model, group in by_model.items()} == {"gpt-5": 2, "gpt-5-codex": 1}
    for model, group in by_model.items():
        mine = [row for row in rows if row.model == model]
        assert {name: group[name] for name in counted} == {
            name: sum(getattr(r, name) for r in mine) for name in counted
        }
