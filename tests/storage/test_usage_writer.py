"""UsageWriter: batches, never blocks submit, flushes everything on close, purges old rows."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from codexgate.storage import usage_db
from codexgate.storage.usage_writer import UsageRecord, UsageWriter


def _record(index: int = 0, **overrides: object) -> UsageRecord:
    values: dict[str, object] = {
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "model_requested": "gpt-5",
        "input_tokens": index,
        "output_tokens": 1,
        "request_id": f"req_{index}",
        **overrides,
    }
    return UsageRecord(**values)  # type: ignore[arg-type]


def _rows(path: Path) -> list[UsageRecord]:
    conn = usage_db.connect(path)
    try:
        return usage_db.fetch_records(conn)
    finally:
        conn.close()


def test_queued_records_are_written_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    real_insert = usage_db.insert_records

    def recording_insert(conn: sqlite3.Connection, records: Sequence[UsageRecord]) -> None:
        batches.append(len(records))
        real_insert(conn, records)

    monkeypatch.setattr(usage_db, "insert_records", recording_insert)
    path = tmp_path / "usage.db"
    writer = UsageWriter(path, batch_size=10)
    for index in range(95):  # queued before the thread runs: drained in full batches
        assert writer.submit(_record(index))
    writer.open()
    assert writer.flush(timeout=10)
    assert sum(batches) == 95 == writer.written
    assert max(batches) <= 10
    assert len(batches) == 10
    writer.close()
    assert [r.request_id for r in _rows(path)] == [f"req_{i}" for i in range(95)]


def test_close_flushes_everything_submitted(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    writer = UsageWriter(path, batch_size=100)
    writer.open()
    for index in range(5000):
        writer.submit(_record(index))
    writer.close()  # right away: nothing may be lost
    rows = _rows(path)
    assert len(rows) == 5000
    assert sum(r.input_tokens for r in rows) == sum(range(5000))
    assert writer.dropped == 0


def test_a_slow_disk_does_not_slow_submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_insert = usage_db.insert_records
    inserting = threading.Event()

    def slow_insert(conn: sqlite3.Connection, records: Sequence[UsageRecord]) -> None:
        inserting.set()
        time.sleep(0.3)
        real_insert(conn, records)

    monkeypatch.setattr(usage_db, "insert_records", slow_insert)
    path = tmp_path / "usage.db"
    writer = UsageWriter(path, batch_size=1000)
    writer.open()
    writer.submit(_record(-1))
    assert inserting.wait(5)  # the writer thread is now stuck in a slow write
    slowest = 0.0
    started = time.perf_counter()
    for index in range(1000):
        before = time.perf_counter()
        assert writer.submit(_record(index))
        slowest = max(slowest, time.perf_counter() - before)
    total = time.perf_counter() - started
    assert total < 0.25, f"1000 submits took {total:.3f}s while the disk was slow"
    assert slowest < 0.05
    writer.close()
    assert len(_rows(path)) == 1001


async def test_async_start_and_stop_around_submits_from_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    writer = UsageWriter(path)
    await writer.start()

    async def request(index: int) -> None:
        await asyncio.sleep(0)
        writer.submit(_record(index, stream=True))

    await asyncio.gather(*(request(i) for i in range(200)))
    await writer.stop()
    rows = _rows(path)
    assert len(rows) == 200 and all(r.stream for r in rows)


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    writer = UsageWriter(tmp_path / "usage.db", max_queue=2)
    assert writer.submit(_record(1)) and writer.submit(_record(2))
    started = time.perf_counter()
    assert writer.submit(_record(3)) is False
    assert time.perf_counter() - started < 0.05
    assert writer.dropped == 1
    writer.open()
    writer.close()
    assert len(_rows(tmp_path / "usage.db")) == 2


def test_submit_after_close_is_refused(tmp_path: Path) -> None:
    writer = UsageWriter(tmp_path / "usage.db")
    writer.open()
    writer.close()
    assert writer.submit(_record()) is False
    assert writer.dropped == 1


def test_old_rows_are_purged_per_the_retention_setting(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    conn = usage_db.connect(path)
    now = time.time()
    usage_db.insert_records(conn, [_record(1, time=now - 40 * 86400), _record(2, time=now - 86400)])
    conn.close()
    writer = UsageWriter(path, retention_days=30)
    writer.open()
    writer.close()
    assert [r.request_id for r in _rows(path)] == ["req_2"]


def test_a_failing_write_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_insert = usage_db.insert_records
    failures = iter([True, False])

    def flaky_insert(conn: sqlite3.Connection, records: Sequence[UsageRecord]) -> None:
        if next(failures, False):
            raise sqlite3.OperationalError("database is locked")
        real_insert(conn, records)

    monkeypatch.setattr(usage_db, "insert_records", flaky_insert)
    path = tmp_path / "usage.db"
    writer = UsageWriter(path)
    writer.open()
    writer.submit(_record(7))
    writer.close()
    assert [r.request_id for r in _rows(path)] == ["req_7"]
    assert writer.dropped == 0


def test_summarize_reads_what_was_written(tmp_path: Path) -> None:
    writer = UsageWriter(tmp_path / "usage.db")
    writer.open()
    for index in range(3):
        writer.submit(_record(index, key_name="k"))
    writer.flush()
    summary = writer.summarize(since=0)
    writer.close()
    assert summary.totals.requests == 3 and summary.totals.input_tokens == 3
    assert [g.group for g in summary.by_key] == ["k"]
