"""Usage rows written off the request path: a bounded queue drained in batches by one thread.

:meth:`UsageWriter.submit` only puts the record on a queue (``put_nowait``), so a slow or busy disk
never delays a request or a stream. A daemon thread takes whatever is queued (up to
``batch_size`` records), inserts it in one transaction, then rests ``gather_interval`` seconds while
more records gather before it looks again: under load it wakes a few times a second for large
batches, instead of once per request (each wake-up takes the interpreter lock from the event loop).
:meth:`UsageWriter.close` (or ``await stop()``) lets the thread write everything queued before it
returns: nothing is lost on a clean shutdown. If the queue is full (the disk cannot keep up with
``max_queue`` records) a record is dropped and counted rather than blocking the server.

Server wiring::

    writer = UsageWriter(settings.database_path, retention_days=settings.storage.usage_retention_days)
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
from dataclasses import dataclass, field
from pathlib import Path

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


class UsageWriter:
    """Queues usage records and writes them to the usage database from a background thread."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: int = 0,
        batch_size: int = 500,
        max_queue: int = 100_000,
        idle_wait: float = 0.5,
        gather_interval: float = 0.25,
        purge_interval: float = 3600.0,
    ) -> None:
        self.path = path
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
        self._conn: sqlite3.Connection | None = None
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
        self._conn = usage_db.connect(self.path, check_same_thread=False)
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
        assert self._conn is not None
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
            self._conn.close()

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
        assert self._conn is not None
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                usage_db.insert_records(self._conn, records)
            except sqlite3.Error as exc:
                if delay is None:
                    logger.error("usage rows not written after %d attempts: %s", attempt + 1, exc)
                    self._drop("the database kept failing", len(records))
                    return
                logger.warning("usage write failed (%s); retrying in %s s", exc, delay)
                time.sleep(delay)
            else:
                self.written += len(records)
                return

    def _purge_if_due(self) -> None:
        if self.retention_days <= 0 or self._conn is None:
            return
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + self.purge_interval
        try:
            removed = usage_db.purge_older_than(self._conn, self.retention_days)
        except sqlite3.Error as exc:
            logger.warning("usage retention purge failed: %s", exc)
            return
        if removed:
            logger.info("usage retention: removed %d row(s) older than %d days", removed, self.retention_days)
