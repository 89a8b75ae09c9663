"""The console's reads of the usage database: charts over time, usage per key, the request log.

The database is the SQLite file (opened read-only, ``mode=ro``) or, with the setting ``database_url``, the
PostgreSQL every instance writes to — so the console of any instance shows the whole cluster's traffic.
Every function is meant to run in a worker thread (``asyncio.to_thread``), never on the request path of the
API. Filters use the indexed columns (``time``, ``(key_name, time)``, ``(status, time)``); the log pages
with a ``(time, id)`` cursor. A missing database (or an unreachable PostgreSQL, logged) reads as empty.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from codexgate.storage.usage_db import POSTGRESQL, SQLITE, Engine, is_database_url, sql_for

__all__ = [
    "Bucket",
    "RequestFilter",
    "RequestRow",
    "Series",
    "UsageSource",
    "key_usage",
    "recent_requests",
    "series",
]

PAGE_SIZE: Final = 50
MAX_TTFT_SAMPLES: Final = 200_000

logger = logging.getLogger("codexgate.console")

#: the SQLite file, or a ``postgresql://`` URL
UsageSource = Path | str


class _Reader:
    """One read-only connection to either engine, taking SQL written with ``?`` placeholders."""

    def __init__(self, conn: Any, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql_for(sql, self.engine), tuple(params))

    def bucket(self) -> str:
        """The bucket index of a row's ``time`` for ``(since, step)`` parameters (rounded down on both)."""
        if self.engine == POSTGRESQL:
            return "CAST(FLOOR((time - ?) / ?) AS INTEGER)"
        return "CAST((time - ?) / ? AS INTEGER)"

    def has_account_column(self) -> bool:
        if self.engine == POSTGRESQL:
            return True  # PostgreSQL is always migrated to the current schema before rows are written
        return any(row[1] == "account" for row in self.conn.execute("PRAGMA table_info(usage)"))


@contextlib.contextmanager
def _read(source: UsageSource) -> Iterator[_Reader | None]:
    if is_database_url(source):
        with _read_postgres(str(source)) as reader:
            yield reader
        return
    path = Path(source)
    if not path.exists():
        yield None
        return
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        yield _Reader(conn, SQLITE)
    finally:
        conn.close()


@contextlib.contextmanager
def _read_postgres(url: str) -> Iterator[_Reader | None]:
    import psycopg  # only with database_url: the embedded default never loads it

    from codexgate.storage.usage_pg import redact_url

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        logger.warning("console: cannot read usage from %s (%s)", redact_url(url), type(exc).__name__)
        yield None
        return
    try:
        conn.read_only = True
        row = conn.execute("SELECT to_regclass('usage')").fetchone()
        yield _Reader(conn, POSTGRESQL) if row is not None and row[0] is not None else None  # no row written yet
    finally:
        conn.close()


@dataclass(slots=True)
class Bucket:
    start: float
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    ttft_p50: float | None = None
    ttft_p95: float | None = None


@dataclass(slots=True)
class Series:
    since: float
    step: float
    buckets: list[Bucket] = field(default_factory=list)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[index]


def series(path: UsageSource, since: float, step: float, count: int) -> Series:
    """``count`` buckets of ``step`` seconds from ``since``: requests, errors, tokens, TTFT p50/p95 (ms)."""
    result = Series(since=since, step=step, buckets=[Bucket(start=since + i * step) for i in range(count)])
    until = since + step * count
    with _read(path) as conn:
        if conn is None:
            return result
        rows = conn.execute(
            f"SELECT {conn.bucket()} AS b, COUNT(*),"  # noqa: S608 - a fixed expression
            " SUM(CASE WHEN status >= 400 OR error_code IS NOT NULL THEN 1 ELSE 0 END),"
            " SUM(input_tokens + output_tokens)"
            " FROM usage WHERE time >= ? AND time < ? GROUP BY b",
            (since, step, since, until),
        )
        for index, requests, errors, tokens in rows:
            if 0 <= index < count:
                bucket = result.buckets[index]
                bucket.requests, bucket.errors, bucket.tokens = int(requests), int(errors or 0), int(tokens or 0)
        samples: dict[int, list[float]] = {}
        cursor = conn.execute(
            f"SELECT {conn.bucket()}, ttft_ms FROM usage"  # noqa: S608 - a fixed expression
            " WHERE time >= ? AND time < ? AND ttft_ms IS NOT NULL ORDER BY time DESC LIMIT ?",
            (since, step, since, until, MAX_TTFT_SAMPLES),
        )
        for index, ttft in cursor:
            samples.setdefault(int(index), []).append(float(ttft))
    for index, values in samples.items():
        if 0 <= index < count:
            result.buckets[index].ttft_p50 = _percentile(values, 0.50)
            result.buckets[index].ttft_p95 = _percentile(values, 0.95)
    return result


@dataclass(slots=True)
class KeyTotals:
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    last_used: float | None = None


def key_usage(path: UsageSource, since: float) -> dict[str, KeyTotals]:
    """Requests, errors, tokens and last use per key name from ``since`` on."""
    out: dict[str, KeyTotals] = {}
    with _read(path) as conn:
        if conn is None:
            return out
        rows = conn.execute(
            "SELECT key_name, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),"
            " SUM(input_tokens + output_tokens), MAX(time)"
            " FROM usage WHERE time >= ? AND key_name IS NOT NULL GROUP BY key_name",
            (since,),
        )
        for name, requests, errors, tokens, last in rows:
            out[str(name)] = KeyTotals(int(requests), int(errors or 0), int(tokens or 0), last)
    return out


@dataclass(frozen=True, slots=True)
class RequestFilter:
    key: str | None = None
    model: str | None = None
    #: "errors", "ok", or a status number as text
    status: str | None = None
    since: float = 0.0

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = ["time >= ?"]
        params: list[Any] = [self.since]
        if self.key:
            clauses.append("key_name = ?")
            params.append(self.key)
        if self.model:
            clauses.append("(model_requested = ? OR (model_requested IS NULL AND model_sent = ?))")
            params.extend((self.model, self.model))
        if self.status == "errors":
            clauses.append("status >= 400")
        elif self.status == "ok":
            clauses.append("status < 400")
        elif self.status and self.status.isdigit():
            clauses.append("status = ?")
            params.append(int(self.status))
        return clauses, params


@dataclass(frozen=True, slots=True)
class RequestRow:
    id: int
    time: float
    key_name: str | None
    account: str | None
    endpoint: str
    model: str
    status: int
    error_code: str | None
    stream: bool
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    ttft_ms: float | None
    duration_ms: float | None

    @property
    def cached_share(self) -> float | None:
        return self.cached_tokens / self.input_tokens if self.input_tokens else None


def recent_requests(
    path: UsageSource,
    request_filter: RequestFilter,
    *,
    before: tuple[float, int] | None = None,
    after_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[RequestRow]:
    """The newest requests matching the filter: older than ``before`` (a page), or newer than ``after_id``."""
    with _read(path) as conn:
        if conn is None:
            return []
        clauses, params = request_filter.where()
        if before is not None:
            clauses.append("(time < ? OR (time = ? AND id < ?))")
            params.extend((before[0], before[0], before[1]))
        if after_id is not None:
            clauses.append("id > ?")
            params.append(after_id)
        account = "account" if conn.has_account_column() else "NULL"
        sql = (
            f"SELECT id, time, key_name, {account}, endpoint,"  # noqa: S608 - fixed column names
            " COALESCE(NULLIF(model_requested, ''), model_sent, ''), status, error_code, stream,"
            " input_tokens, cached_tokens, output_tokens, ttft_ms, duration_ms"
            f" FROM usage WHERE {' AND '.join(clauses)} ORDER BY time DESC, id DESC LIMIT ?"
        )
        params.append(max(1, min(limit, 500)))
        return [
            RequestRow(
                id=int(r[0]),
                time=float(r[1]),
                key_name=r[2],
                account=r[3],
                endpoint=str(r[4]),
                model=str(r[5]),
                status=int(r[6]),
                error_code=r[7],
                stream=bool(r[8]),
                input_tokens=int(r[9]),
                cached_tokens=int(r[10]),
                output_tokens=int(r[11]),
                ttft_ms=r[12],
                duration_ms=r[13],
            )
            for r in conn.execute(sql, params)
        ]
