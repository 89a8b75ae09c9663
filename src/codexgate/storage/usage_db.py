"""The usage database: one SQLite row per request, in ``$CODEXGATE_HOME/usage.db`` by default.

The file is created 0600 in a 0700 directory and opened in WAL mode (readers such as
``codexgate stats`` never block the server's writer). The schema is versioned with
``PRAGMA user_version``: :data:`MIGRATIONS` holds every step, and :func:`connect` applies those the
file has not seen yet, each in its own transaction. A file from a newer codexgate is refused rather
than guessed at.

Writes come from :class:`codexgate.storage.usage_writer.UsageWriter` (a background thread);
:func:`summarize` is the read side used by ``codexgate stats``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from codexgate.files import PRIVATE_FILE_MODE, ensure_private_dir


@dataclass(slots=True)
class UsageRecord:
    """One request, as the server saw it. Token counts are 0 when the upstream reported none."""

    endpoint: str
    status: int
    time: float = field(default_factory=time.time)
    key_name: str | None = None
    model_requested: str | None = None
    model_sent: str | None = None
    stream: bool = False
    error_code: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    ttft_ms: float | None = None
    duration_ms: float | None = None
    upstream_request_id: str | None = None
    request_id: str | None = None
    #: the alias of the pool account that served the request (never a token or an email)
    account: str | None = None

    @property
    def model(self) -> str:
        """The model a report groups by: what the client asked for, else what was sent."""
        return self.model_requested or self.model_sent or ""


RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))

#: ``(version, statements)``; version N's statements take a version N-1 file to version N.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """
            CREATE TABLE usage (
                id INTEGER PRIMARY KEY,
                time REAL NOT NULL,
                key_name TEXT,
                endpoint TEXT NOT NULL,
                model_requested TEXT,
                model_sent TEXT,
                stream INTEGER NOT NULL DEFAULT 0,
                status INTEGER NOT NULL,
                error_code TEXT,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                cached_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                ttft_ms REAL,
                duration_ms REAL,
                upstream_request_id TEXT
            )
            """,
        ),
    ),
    (
        2,
        (
            "ALTER TABLE usage ADD COLUMN request_id TEXT",
            "CREATE INDEX usage_time ON usage (time)",
        ),
    ),
    (
        3,
        (
            # the dashboard's request log filters by key and by status over a time range
            "CREATE INDEX usage_key_time ON usage (key_name, time)",
            "CREATE INDEX usage_status_time ON usage (status, time)",
        ),
    ),
    (
        4,
        # the account pool: which account served each request (its alias)
        ("ALTER TABLE usage ADD COLUMN account TEXT",),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


class UsageDBError(Exception):
    """The usage database cannot be used (newer schema, not a database)."""


def _create_private_file(path: Path) -> None:
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(fd)


def _tighten_sidecars(path: Path) -> None:
    """SQLite gives ``-wal``/``-shm`` the database's mode; make sure anyway."""
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if sidecar.stat().st_mode & 0o077:
                os.chmod(sidecar, PRIVATE_FILE_MODE)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, *, upto: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the database lacks, up to ``upto``; returns the resulting version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise UsageDBError(
            f"usage database schema version {current} is newer than this codexgate supports ({SCHEMA_VERSION})"
        )
    for version, statements in MIGRATIONS:
        if version <= current or version > upto:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(version)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = version
    return current


def connect(path: Path, *, upto: int = SCHEMA_VERSION, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) the usage database, in WAL mode, migrated to the current schema."""
    if not path.exists():
        _create_private_file(path)
    # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) in this module.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread, timeout=10.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, upto=upto)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UsageDBError(f"{path} is not a usable usage database: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    _tighten_sidecars(path)
    return conn


def record_row(record: UsageRecord) -> tuple[Any, ...]:
    """The column values of ``record`` in :data:`RECORD_COLUMNS` order (booleans as 0/1)."""
    values = [getattr(record, column) for column in RECORD_COLUMNS]
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


def insert_records(conn: sqlite3.Connection, records: Sequence[UsageRecord]) -> None:
    """Insert ``records`` in one transaction."""
    if not records:
        return
    placeholders = ", ".join("?" for _ in RECORD_COLUMNS)
    sql = f"INSERT INTO usage ({', '.join(RECORD_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 - fixed names
    rows = [record_row(r) for r in records]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def purge_older_than(conn: sqlite3.Connection, days: int, *, now: float | None = None) -> int:
    """Delete rows older than ``days`` days (0 keeps everything); returns how many went."""
    if days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - days * 86400
    cursor = conn.execute("DELETE FROM usage WHERE time < ?", (cutoff,))
    return cursor.rowcount


def fetch_records(conn: sqlite3.Connection, since: float = 0.0) -> list[UsageRecord]:
    """Every row from ``since`` on, oldest first (tests and exports)."""
    cursor = conn.execute(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM usage WHERE time >= ? ORDER BY time, id",  # noqa: S608
        (since,),
    )
    records = []
    for row in cursor:
        values: dict[str, Any] = dict(zip(RECORD_COLUMNS, row, strict=True))
        values["stream"] = bool(values["stream"])
        records.append(UsageRecord(**values))
    return records


# ---- the read side: ``codexgate stats`` -------------------------------------------------------


@dataclass(slots=True)
class UsageTotals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    avg_ttft_ms: float | None = None
    avg_duration_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class UsageGroup:
    """Totals for one day (``YYYY-MM-DD``, UTC), model or key name."""

    group: str
    totals: UsageTotals

    def to_dict(self, label: str) -> dict[str, Any]:
        return {label: self.group, **self.totals.to_dict()}


@dataclass(slots=True)
class UsageSummary:
    since: float
    totals: UsageTotals = field(default_factory=UsageTotals)
    by_day: list[UsageGroup] = field(default_factory=list)
    by_model: list[UsageGroup] = field(default_factory=list)
    by_key: list[UsageGroup] = field(default_factory=list)
    by_account: list[UsageGroup] = field(default_factory=list)


_AGGREGATES = """
    COUNT(*),
    COALESCE(SUM(CASE WHEN status >= 400 OR error_code IS NOT NULL THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(input_tokens), 0),
    COALESCE(SUM(cached_tokens), 0),
    COALESCE(SUM(output_tokens), 0),
    COALESCE(SUM(reasoning_tokens), 0),
    AVG(ttft_ms),
    AVG(duration_ms)
"""

_GROUP_EXPRESSIONS = {
    "day": "strftime('%Y-%m-%d', time, 'unixepoch')",
    "model": "COALESCE(NULLIF(model_requested, ''), NULLIF(model_sent, ''), '')",
    "key": "COALESCE(key_name, '')",
    "account": "COALESCE(account, '')",
}


def _totals(row: Sequence[Any]) -> UsageTotals:
    return UsageTotals(
        requests=int(row[0]),
        errors=int(row[1]),
        input_tokens=int(row[2]),
        cached_tokens=int(row[3]),
        output_tokens=int(row[4]),
        reasoning_tokens=int(row[5]),
        avg_ttft_ms=None if row[6] is None else float(row[6]),
        avg_duration_ms=None if row[7] is None else float(row[7]),
    )


def summarize_connection(conn: sqlite3.Connection, since: float) -> UsageSummary:
    summary = UsageSummary(since=since)
    row = conn.execute(f"SELECT {_AGGREGATES} FROM usage WHERE time >= ?", (since,)).fetchone()  # noqa: S608
    summary.totals = _totals(row)
    for name, expression in _GROUP_EXPRESSIONS.items():
        order = "1" if name == "day" else "2 DESC, 1"
        cursor = conn.execute(
            f"SELECT {expression}, {_AGGREGATES} FROM usage WHERE time >= ? GROUP BY 1 ORDER BY {order}",  # noqa: S608
            (since,),
        )
        groups = [UsageGroup(group=str(r[0]), totals=_totals(r[1:])) for r in cursor]
        setattr(summary, f"by_{name}", groups)
    return summary


def summarize(path: Path, since: float) -> UsageSummary:
    """Usage from ``since`` on, by day, model and key. A missing database gives zeroed figures."""
    if not path.exists():
        return UsageSummary(since=since)
    conn = connect(path)
    try:
        return summarize_connection(conn, since)
    finally:
        conn.close()
