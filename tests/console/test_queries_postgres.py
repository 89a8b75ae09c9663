"""The console's queries read PostgreSQL (``database_url``) exactly as they read the SQLite file: the same rows
give the same charts, key totals and request log, so the console of any instance shows the whole cluster."""

from __future__ import annotations

import random
from contextlib import closing
from pathlib import Path

from codexgate.console import queries
from codexgate.storage import usage_db, usage_pg
from codexgate.storage.usage_db import POSTGRESQL, UsageRecord
from tests.services import pg_url, postgres_server

__all__ = ["pg_url", "postgres_server"]

NOW = 1_790_000_000.0


def sample_records(count: int) -> list[UsageRecord]:
    pick = random.Random(7)
    records = []
    for index in range(count):
        status = pick.choice((200, 200, 200, 429, 502))
        records.append(
            UsageRecord(
                endpoint=pick.choice(("/v1/chat/completions", "/v1/responses", "/v1/messages")),
                status=status,
                time=NOW - pick.uniform(0, 3 * 3600),
                key_name=pick.choice(("alice", "bob", None)),
                model_requested=pick.choice(("gpt-5.5", "claude-sonnet-4", None)),
                model_sent="gpt-5.5",
                stream=pick.random() < 0.5,
                error_code=None if status == 200 else "upstream_error",
                input_tokens=pick.randrange(1, 5000),
                cached_tokens=pick.randrange(0, 100),
                output_tokens=pick.randrange(1, 900),
                ttft_ms=pick.uniform(50, 900) if status == 200 else None,
                duration_ms=pick.uniform(100, 5000),
                request_id=f"req_{index}",
                account=pick.choice(("work", "home")),
            )
        )
    return records


def test_console_queries_read_postgres_like_sqlite(tmp_path: Path, pg_url: str) -> None:
    records = sample_records(300)
    sqlite_path = tmp_path / "usage.db"
    with closing(usage_db.connect(sqlite_path)) as conn:
        usage_db.insert_records(conn, records)
    with closing(usage_pg.connect(pg_url)) as conn:
        usage_db.insert_records(conn, records, engine=POSTGRESQL)

    since = NOW - 3 * 3600
    from_file = queries.series(sqlite_path, since, 600.0, 18)
    from_pg = queries.series(pg_url, since, 600.0, 18)
    assert sum(bucket.requests for bucket in from_pg.buckets) == len(records)
    assert from_pg == from_file

    assert queries.key_usage(pg_url, since) == queries.key_usage(sqlite_path, since)
    assert set(queries.key_usage(pg_url, since)) == {"alice", "bob"}

    only_errors = queries.RequestFilter(status="errors", since=since)
    page = queries.recent_requests(pg_url, only_errors, limit=40)
    assert page and all(row.status >= 400 for row in page)
    assert [(row.time, row.account, row.model) for row in page] == [
        (row.time, row.account, row.model) for row in queries.recent_requests(sqlite_path, only_errors, limit=40)
    ]
    older = queries.recent_requests(pg_url, only_errors, before=(page[-1].time, page[-1].id), limit=40)
    assert older and older[0].time <= page[-1].time


def test_an_empty_or_unreachable_postgres_reads_as_empty(pg_url: str) -> None:
    assert queries.recent_requests(pg_url, queries.RequestFilter()) == []  # no instance wrote yet: no table
    assert queries.key_usage(pg_url, 0.0) == {}
    unreachable = "postgresql://nobody:pw@127.0.0.1:1/none"
    assert queries.series(unreachable, NOW, 60.0, 3).buckets[0].requests == 0
