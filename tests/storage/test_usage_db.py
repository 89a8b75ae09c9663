"""The usage database: private file, WAL, versioned migrations, retention, summaries."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest

from codexgate.storage import usage_db
from codexgate.storage.usage_db import UsageDBError, UsageRecord


def _record(**overrides: object) -> UsageRecord:
    values: dict[str, object] = {
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "model_requested": "gpt-5",
        "model_sent": "gpt-5",
        "input_tokens": 10,
        "output_tokens": 5,
        "duration_ms": 100.0,
        **overrides,
    }
    return UsageRecord(**values)  # type: ignore[arg-type]


def test_connect_creates_a_private_wal_database_at_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "home" / "usage.db"
    conn = usage_db.connect(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert usage_db.schema_version(conn) == usage_db.SCHEMA_VERSION
        usage_db.insert_records(conn, [_record()])
        for sidecar in (path.with_name("usage.db-wal"), path.with_name("usage.db-shm")):
            if sidecar.exists():
                assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    finally:
        conn.close()


def test_records_round_trip(tmp_path: Path) -> None:
    conn = usage_db.connect(tmp_path / "usage.db")
    record = _record(
        key_name="laptop",
        stream=True,
        cached_tokens=3,
        reasoning_tokens=7,
        ttft_ms=12.5,
        upstream_request_id="up_1",
        request_id="req_1",
        error_code=None,
    )
    usage_db.insert_records(conn, [record])
    assert usage_db.fetch_records(conn) == [record]
    conn.close()


def test_migration_from_version_1_keeps_rows_and_adds_the_new_column(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    old = usage_db.connect(path, upto=1)
    assert usage_db.schema_version(old) == 1
    columns = {row[1] for row in old.execute("PRAGMA table_info(usage)")}
    assert "request_id" not in columns
    old.execute(
        "INSERT INTO usage (time, endpoint, status, model_requested, input_tokens, output_tokens) "
        "VALUES (?, '/v1/responses', 200, 'gpt-5', 11, 22)",
        (time.time(),),
    )
    old.close()

    conn = usage_db.connect(path)
    assert usage_db.schema_version(conn) == usage_db.SCHEMA_VERSION == 4
    [row] = usage_db.fetch_records(conn)
    assert (row.endpoint, row.input_tokens, row.output_tokens, row.request_id) == ("/v1/responses", 11, 22, None)
    assert row.account is None  # migration 4: the pool account, unknown for older rows
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(usage)")}
    assert "usage_time" in indexes
    conn.close()


def test_a_database_from_a_newer_codexgate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {usage_db.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UsageDBError, match="newer"):
        usage_db.connect(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageDBError):
        usage_db.connect(path)


def test_purge_older_than_keeps_recent_rows(tmp_path: Path) -> None:
    conn = usage_db.connect(tmp_path / "usage.db")
    now = time.time()
    usage_db.insert_records(conn, [_record(time=now - 10 * 86400), _record(time=now - 86400), _record(time=now)])
    assert usage_db.purge_older_than(conn, 0) == 0
    assert usage_db.purge_older_than(conn, 5, now=now) == 1
    assert len(usage_db.fetch_records(conn)) == 2
    conn.close()


def test_summarize_groups_by_day_model_and_key(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    conn = usage_db.connect(path)
    day1 = 1_700_000_000.0  # 2023-11-14 UTC
    day2 = day1 + 86400
    usage_db.insert_records(
        conn,
        [
            _record(time=day1, key_name="a", input_tokens=1, output_tokens=2, ttft_ms=10.0),
            _record(time=day1, key_name="b", model_requested="gpt-5-high", input_tokens=3, output_tokens=4),
            _record(time=day2, key_name="a", status=502, error_code="upstream_error", input_tokens=0, output_tokens=0),
            _record(time=day1 - 10 * 86400, key_name="old"),
        ],
    )
    conn.close()
    summary = usage_db.summarize(path, since=day1 - 3600)
    assert summary.totals.requests == 3
    assert summary.totals.errors == 1
    assert summary.totals.input_tokens == 4 and summary.totals.output_tokens == 6
    assert summary.totals.avg_ttft_ms == 10.0
    assert [(g.group, g.totals.requests) for g in summary.by_day] == [("2023-11-14", 2), ("2023-11-15", 1)]
    assert sorted((g.group, g.totals.requests) for g in summary.by_model) == [("gpt-5", 2), ("gpt-5-high", 1)]
    assert sorted((g.group, g.totals.input_tokens) for g in summary.by_key) == [("a", 1), ("b", 3)]


def test_summarize_without_a_database_is_zeroed_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nothing" / "usage.db"
    summary = usage_db.summarize(path, since=0.0)
    assert summary.totals.requests == 0 and summary.by_day == [] and summary.by_model == []
    assert not path.exists() and not path.parent.exists()
