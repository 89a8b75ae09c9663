"""Usage rows in PostgreSQL (the setting ``database_url``): the same schema and migrations as SQLite.

The SQL lives in :mod:`codexgate.storage.usage_db` (one migration list, one ``summarize``); this module
holds what only PostgreSQL needs: opening a connection (psycopg 3, autocommit, transactions explicit) and
:class:`PostgresStore`, the writer's view of it, which reconnects after an outage. psycopg is imported
here only, so the embedded SQLite default never loads it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import psycopg

from codexgate.storage import usage_db
from codexgate.storage.usage_db import POSTGRESQL, SCHEMA_VERSION, UsageDBError, UsageRecord, UsageSummary

__all__ = ["PostgresStore", "connect", "redact_url", "summarize"]

logger = logging.getLogger("codexgate.usage")

#: errors that mean the server cannot be reached (rows wait), as opposed to a statement that failed
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and reports."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def connect(
    url: str, *, upto: int = SCHEMA_VERSION, connect_timeout: float = 5.0
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection to ``url`` (autocommit: transactions are explicit) and migrate the schema."""
    conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(connect_timeout)))
    try:
        usage_db.migrate(conn, upto=upto, engine=POSTGRESQL)
    except BaseException:
        conn.close()
        raise
    return conn


def summarize(url: str, since: float) -> UsageSummary:
    """``codexgate stats`` on PostgreSQL: every instance's rows."""
    try:
        conn = connect(url)
    except psycopg.Error as exc:
        raise UsageDBError(f"cannot read usage from {redact_url(url)}: {exc}") from exc
    try:
        return usage_db.summarize_connection(conn, since, engine=POSTGRESQL)
    finally:
        conn.close()


class PostgresStore:
    """The usage writer's PostgreSQL: connects when first needed and again after the connection broke."""

    errors: tuple[type[Exception], ...] = (psycopg.Error, UsageDBError)

    def __init__(self, url: str, *, connect_timeout: float = 3.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def describe(self) -> str:
        return redact_url(self.url)

    def open(self) -> None:
        """Connect and migrate; an unreachable server is not fatal (rows wait until it answers)."""
        try:
            self._connection()
        except UNAVAILABLE_ERRORS as exc:
            logger.warning(
                "usage database %s unreachable at start (%s); rows wait until it answers", self.describe(), exc
            )

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, connect_timeout=self.connect_timeout)
        return self._conn

    def _run(self, action: str, records: Sequence[UsageRecord] = (), days: int = 0) -> int:
        conn = self._connection()
        try:
            if action == "insert":
                usage_db.insert_records(conn, records, engine=POSTGRESQL)
                return len(records)
            return usage_db.purge_older_than(conn, days, engine=POSTGRESQL)
        except UNAVAILABLE_ERRORS:
            self.close()  # broken: the next call connects again
            raise

    def insert(self, records: Sequence[UsageRecord]) -> None:
        self._run("insert", records)

    def purge(self, days: int) -> int:
        return self._run("purge", days=days)

    def unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, UNAVAILABLE_ERRORS)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
