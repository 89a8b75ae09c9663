"""Usage rows written off the request path: a bounded queue drained in batches by one thread.

:meth:`UsageWriter.submit` only puts the record on a queue (``put_nowait``), so a slow or busy disk
never delays a request or a stream. A daemon thread takes whatever is queued (up to
``batch_size`` records), inserts it in one transaction, then rests ``gather_interval`` seconds while
more records gather before it looks again: under load it wakes a few times a second for large
batches, instead of once per request (each wake-up takes the interpreter lock from the event loop).
:meth:`UsageWriter.close` (or ``await stop()``) lets the thread write everything queued before it
returns: nothing is lost on a clean shutdown. If the queue is full (the disk cannot keep up with
``max_queue`` records) a record is dropped and counted rather than blocking the server.

The target is the SQLite file, or a ``postgresql://`` URL (the setting ``database_url``). When
PostgreSQL cannot be reached the batch in hand is kept and retried (backing off up to
``outage_retry_max`` seconds) while new rows wait in the queue; past ``max_queue`` (plus the batch in
hand) they are counted in
:attr:`UsageWriter.dropped` with one log line, and requests go on. On close during an outage the thread
keeps trying for ``outage_grace`` seconds, then counts what is left as dropped.

Server wiring::

    writer = UsageWriter(settings.storage.database_url or settings.database_path, retention_days=...)
    await writer.start()      # in the lifespan, before serving
    writer.submit(record)     # when a request ends (any thread or the event loop)
    await writer.stop()       # in the lifespan's finally, after open streams ended
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from codexgate.storage import usage_db
from codexgate.storage.usage_db import UsageRecord, UsageSummary

__all__ = ["UsageRecord", "UsageWriter"]

logger = logging.getLogger("codexgate.usage")

RETRY_DELAYS = (0.1, 0.5, 1.0)


@dataclass(slots=True)
class _FlushMarker:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()
_QueueItem = UsageRecord | _FlushMarker | object


class UsageStore(Protocol):
    """Where the writer thread puts rows (used from that thread only)."""

    errors: tuple[type[Exception], ...]

    def describe(self) -> str: ...
    def open(self) -> None: ...
    def insert(self, records: Sequence[UsageRecord]) -> None: ...
    def purge(self, days: int) -> int: ...
    def unavailable(self, exc: BaseException) -> bool: ...
    def close(self) -> None: ...


class SqliteStore:
    """The embedded SQLite file; its errors are retried a few times, never waited out."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def describe(self) -> str:
        return str(self.path)

    def open(self) -> None:
        self._conn = usage_db.connect(self.path, check_same_thread=False)

    def insert(self, records: Sequence[UsageRecord]) -> None:
        assert self._conn is not None
        usage_db.insert_records(self._conn, records)

    def purge(self, days: int) -> int:
        assert self._conn is not None
        return usage_db.purge_older_than(self._conn, days)

    def unavailable(self, exc: BaseException) -> bool:
        return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def make_store(target: Path | str) -> UsageStore:
    """The store for a SQLite path or a ``postgresql://`` URL."""
    if usage_db.is_database_url(target):
        from codexgate.storage.usage_pg import PostgresStore

        return PostgresStore(str(target))
    return SqliteStore(Path(target))


class UsageWriter:
    """Queues usage records and writes them to the usage database from a background thread."""

    def __init__(
        self,
        path: Path | str,
        *,
        retention_days: int = 0,
        batch_size: int = 500,
        max_queue: int = 100_000,
        idle_wait: float = 0.5,
        gather_interval: float = 0.25,
        purge_interval: float = 3600.0,
        outage_retry_max: float = 2.0,
        outage_grace: float = 5.0,
    ) -> None:
        self.path = path
        self._store = make_store(path)
        self.max_queue = max_queue
        self.outage_retry_max = outage_retry_max
        self.outage_grace = outage_grace
        self._closing = threading.Event()  # close() was called: an outage is waited out only so long
        self._closing_at = 0.0
        self._abandoned = False  # closing during an outage and past the grace: the rest is dropped untried
        #: True while the database cannot be reached (rows are held and retried)
        self.unreachable = False
        self.retention_days = retention_days
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.gather_interval = gather_interval
        self._wake = threading.Event()  # cuts the rest short: a flush or close is waiting
        self.purge_interval = purge_interval
        self._queue: queue.Queue[_QueueItem] = queue.Queue(maxsize=max_queue)
        self._submit_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0
        self._last_drop_warning = 0.0
        self.written = 0
        self.dropped = 0

    # ---- the request path --------------------------------------------------------------------

    def submit(self, record: UsageRecord) -> bool:
        """Queue ``record`` without waiting; False if it was dropped (queue full or writer closed)."""
        with self._submit_lock:
            if self._closed:
                self._drop("the usage writer is closed")
                return False
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self._drop("the usage queue is full")
                return False
        return True

    def _drop(self, reason: str, count: int = 1) -> None:
        with self._count_lock:
            self.dropped += count
            now = time.monotonic()
            if now - self._last_drop_warning < 10.0:
                return
            self._last_drop_warning = now
        logger.warning("usage record dropped: %s (%d dropped so far)", reason, self.dropped)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # ---- life cycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open (create, migrate) the database, purge old rows, start the writer thread."""
        if self._thread is not None:
            return
        self._store.open()
        self._purge_if_due()
        self._thread = threading.Thread(target=self._run, name="codexgate-usage-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued so far, then stop the thread and close the database."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is None:
            pending = self.pending
            if pending:
                logger.warning("usage writer closed before it was opened; %d record(s) not written", pending)
            return
        self._closing_at = time.monotonic()
        self._closing.set()
        self._queue.put(_STOP)  # blocking is fine here: close() is not on the request path
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("usage writer did not finish within %s s; %d record(s) pending", timeout, self.pending)

    async def start(self) -> None:
        await asyncio.to_thread(self.open)

    async def stop(self, wait_seconds: float | None = 30.0) -> None:
        """:meth:`close` in a worker thread, so the event loop keeps running while rows are written."""
        await asyncio.to_thread(self.close, wait_seconds)

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every record submitted before this call is written; False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return self.pending == 0
        marker = _FlushMarker()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._wake.set()
        return marker.done.wait(timeout)

    def summarize(self, since: float) -> UsageSummary:
        """Usage from ``since`` on (reads through its own connection)."""
        return usage_db.summarize(self.path, since)

    # ---- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                try:
                    first = self._queue.get(timeout=self.idle_wait)
                except queue.Empty:
                    self._purge_if_due()
                    continue
                stopping = self._handle([first, *self._take(self.batch_size - 1)])
                if not stopping and self._queue.qsize() < self.batch_size and self._wake.wait(self.gather_interval):
                    self._wake.clear()
            # Whatever was queued after the stop marker (a submit racing close) is written too.
            while self._queue.qsize():
                self._handle(self._take(self.batch_size))
        except Exception:  # pragma: no cover - a bug; never let the thread die silently
            logger.exception("usage writer stopped unexpectedly")
        finally:
            self._store.close()

    def _take(self, limit: int) -> list[_QueueItem]:
        items: list[_QueueItem] = []
        while len(items) < limit:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _handle(self, items: list[_QueueItem]) -> bool:
        """Write the records among ``items``, then release flush waiters; True if a stop was asked."""
        records = [item for item in items if isinstance(item, UsageRecord)]
        self._write(records)
        for item in items:
            if isinstance(item, _FlushMarker):
                item.done.set()
        self._purge_if_due()
        return any(item is _STOP for item in items)

    def _write(self, records: list[UsageRecord]) -> None:
        if not records:
            return
        failures = outages = 0
        while True:
            if self._abandoned:
                self._drop("the usage database stayed unreachable while closing", len(records))
                return
            try:
                self._store.insert(records)
            except self._store.errors as exc:
                if self._store.unavailable(exc):
                    outages += 1
                    self._wait_out_outage(exc, outages)
                    continue
                failures += 1
                if failures > len(RETRY_DELAYS):
                    logger.error("usage rows not written after %d attempts: %s", failures, exc)
                    self._drop("the database kept failing", len(records))
                    return
                delay = RETRY_DELAYS[failures - 1]
                logger.warning("usage write failed (%s); retrying in %s s", exc, delay)
                time.sleep(delay)
            else:
                self.written += len(records)
                if self.unreachable:
                    self.unreachable = False
                    logger.warning("usage database %s reachable again; held rows written", self._store.describe())
                return

    def _wait_out_outage(self, exc: BaseException, attempt: int) -> None:
        """Rest before the next attempt; once closing and ``outage_grace`` is spent, give up on the rest."""
        if not self.unreachable:
            self.unreachable = True
            logger.warning(
                "usage database %s unreachable (%s); rows wait in the queue (at most %d)",
                self._store.describe(),
                exc,
                self.max_queue,
            )
        if self._closing.is_set() and time.monotonic() - self._closing_at >= self.outage_grace:
            self._abandoned = True
            logger.error("usage database %s still unreachable at shutdown: queued rows dropped", self._store.describe())
            return
        delay = min(self.outage_retry_max, 0.05 * 2 ** min(attempt, 8))
        if self._closing.is_set():
            time.sleep(delay)
        else:
            self._closing.wait(delay)  # a close cuts the rest short

    def _purge_if_due(self) -> None:
        if self.retention_days <= 0 or self.unreachable:
            return
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + self.purge_interval
        try:
            removed = self._store.purge(self.retention_days)
        except self._store.errors as exc:
            if self._store.unavailable(exc):  # the outage is logged by the write path; try again soon
                self._next_purge = now + 60.0
            else:
                logger.warning("usage retention purge failed: %s", exc)
            return
        if removed:
            logger.info("usage retention: removed %d row(s) older than %d days", removed, self.retention_days)
