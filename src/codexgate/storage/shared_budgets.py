"""Per-key token budgets spent across every instance of a gateway (``state_url``): :class:`SharedBudgetTracker`.

The check is :class:`~codexgate.storage.budgets.BudgetTracker`'s, unchanged and still in memory; what
changes is where the counters come from. Each key's tokens per calendar window are one Redis counter,
``ctr:budget:<key id>:<window>:<window start>``, created with an expiry an hour past the window's end.

* :meth:`SharedBudgetTracker.record` adds a finished request's tokens locally at once (the next check
  on this instance sees them) and queues them; a background task sends the queued increments every
  ``flush_interval`` seconds (0.25 by default) with ``INCRBY`` and takes the cluster total back from its
  answer, plus what was queued meanwhile.
* Every ``refresh_interval`` seconds (2 by default) it reads the totals of the keys that have a token
  budget, so an instance that serves a key rarely still sees what the others spent.
* Redis down: tokens are counted locally and stay queued; they are sent when Redis answers again. An
  increment whose answer was lost in a timeout may have been applied and is sent again (counted twice):
  budgets err on the side of refusing.

The requests-per-minute limit is shared the same way, in buckets of ``RPM_BUCKET_SECONDS`` (10 s): a
request this instance admits is counted at once in memory and queued for the bucket's counter
``ctr:rpm:<key id>:<bucket start>`` (sent with the token increments, every ``flush_interval``); the
answer, and a read of the last minute's buckets every ``refresh_interval``, tell it how many requests the
other instances admitted (a bucket's total less what this instance sent to it). The check counts its own
requests exactly and the others' by bucket, the bucket that straddles the start of the minute in
proportion to the part inside it. The request path still never waits on Redis, so instances admitting
requests for the same key at the same moment may together go over its RPM by what they admitted within
one flush interval before they saw each other's counts; with Redis away each instance counts alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codexgate.state.interface import StateUnavailable
from codexgate.storage.budgets import RPM_WINDOW_SECONDS, TOKEN_WINDOWS, BudgetTracker, KeyUsage, window_bounds

if TYPE_CHECKING:
    from codexgate.state.interface import SharedState
    from codexgate.storage.api_keys import KeyInfo

__all__ = ["SharedBudgetTracker", "counter_name", "rpm_counter_name", "shared_usage"]

logger = logging.getLogger("codexgate.budgets")

#: a window's counter outlives the window by this much (seconds)
WINDOW_GRACE = 3600.0
#: the requests-per-minute counters: one per key and this many seconds
RPM_BUCKET_SECONDS = 10.0

_Slot = tuple[str, str, float]  # key id, window, window start


def counter_name(key_id: str, window: str, start: float) -> str:
    """The shared counter of one key's tokens in one window."""
    return f"budget:{key_id}:{window}:{int(start)}"


def rpm_counter_name(key_id: str, start: float) -> str:
    """The shared counter of one key's admitted requests in the 10-second bucket that starts at ``start``."""
    return f"rpm:{key_id}:{int(start)}"


def rpm_bucket(now: float) -> float:
    return now - now % RPM_BUCKET_SECONDS


def rpm_buckets(now: float) -> list[float]:
    """The starts of the buckets that overlap the minute before ``now``, newest first."""
    steps = int(RPM_WINDOW_SECONDS // RPM_BUCKET_SECONDS) + 1
    return [rpm_bucket(now) - step * RPM_BUCKET_SECONDS for step in range(steps)]


def requests_in_minute(counts: Iterable[tuple[float, int]], now: float) -> tuple[float, float | None]:
    """Requests in the minute before ``now`` from ``(bucket start, count)`` pairs, the bucket the minute
    starts in counted in proportion to the part of it inside; and the earliest start that counted."""
    since = now - RPM_WINDOW_SECONDS
    total, oldest = 0.0, None
    for start, count in counts:
        end = start + RPM_BUCKET_SECONDS
        if count <= 0 or end <= since:
            continue
        total += count * min(1.0, (end - since) / RPM_BUCKET_SECONDS)
        oldest = start if oldest is None else min(oldest, start)
    return total, oldest


@dataclass(slots=True)
class _RpmBucket:
    """One key's bucket as this instance knows it: the cluster's total when last read, how many of those
    were sent from here, and how many admitted here are not sent yet."""

    total: int = 0
    sent: int = 0
    queued: int = 0


class SharedBudgetTracker(BudgetTracker):
    """Budgets whose token counters live in the shared state (see the module docstring).

    ``budgeted_keys`` lists the keys whose totals the periodic refresh reads (e.g. the key store's
    mirror); keys this instance recorded tokens for are refreshed too. :meth:`start` and :meth:`stop`
    run the background task.
    """

    def __init__(
        self,
        state: SharedState,
        *,
        budgeted_keys: Callable[[], Iterable[KeyInfo]] | None = None,
        flush_interval: float = 0.25,
        refresh_interval: float = 2.0,
    ) -> None:
        super().__init__(None)
        self.state = state
        self.budgeted_keys = budgeted_keys
        self.push_interval = flush_interval
        self.refresh_interval = refresh_interval
        self._pending: dict[_Slot, tuple[int, float]] = {}  # slot -> (tokens not yet sent, window end)
        self._recorded: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._refresh_due = 0.0
        self._closing = False
        self._rpm: dict[str, dict[float, _RpmBucket]] = {}  # key id -> bucket start -> what is known of it

    # ---- the request path: local, then queued --------------------------------------------------------

    def record(self, key: KeyInfo | str, tokens: int, now: float) -> None:
        super().record(key, tokens, now)
        if tokens <= 0:
            return
        key_id = key if isinstance(key, str) else key.id
        with self._lock:
            self._recorded.add(key_id)
            for window in TOKEN_WINDOWS:
                start, end = self._bounds(window, now)
                slot = (key_id, window, start)
                queued, _ = self._pending.get(slot, (0, end))
                self._pending[slot] = (queued + tokens, end)

    def _admitted(self, key_id: str, now: float) -> None:
        buckets = self._rpm.get(key_id)
        if buckets is None:
            buckets = self._rpm[key_id] = {}
        start = rpm_bucket(now)
        bucket = buckets.get(start)
        if bucket is None:
            bucket = buckets[start] = _RpmBucket()
        bucket.queued += 1

    def _requests_elsewhere(self, key_id: str, now: float) -> tuple[float, float | None]:
        buckets = self._rpm.get(key_id)
        if not buckets:
            return 0.0, None
        return requests_in_minute(((start, b.total - b.sent) for start, b in buckets.items()), now)

    def _prune_rpm(self, now: float) -> None:
        """Forget buckets that ended before the last minute, sent or not: they count no more (call with
        ``_lock``)."""
        since = now - RPM_WINDOW_SECONDS - RPM_BUCKET_SECONDS
        for key_id in list(self._rpm):
            buckets = self._rpm[key_id]
            for start in [start for start in buckets if start < since]:
                del buckets[start]
            if not buckets:
                del self._rpm[key_id]

    def _bounds(self, window: str, now: float) -> tuple[float, float]:
        windows = self._windows
        windows.refresh(now)
        return windows.starts[window], windows.ends[window]

    def _take_total(self, slot: _Slot, total: int) -> None:
        """The cluster's total for ``slot`` (plus what this instance queued since) becomes the local count."""
        key_id, window, start = slot
        with self._lock:
            queued = self._pending.get(slot, (0, 0.0))[0]
            if key_id not in self._counters and total <= 0 and not queued:
                return
            counters = self._counters_of(key_id)
            current = counters.tokens.get(window)
            if current is not None and current[0] > start:
                return  # a newer window began meanwhile
            counters.tokens[window] = (start, total + queued)

    # ---- background ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="codexgate-shared-budgets")

    async def stop(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        for _ in range(3):  # bounded: a cancel that lands inside a redis-py read can be swallowed
            if task is None or task.done():
                break
            task.cancel()
            await asyncio.wait([task], timeout=2.0)
        with contextlib.suppress(StateUnavailable):
            await self.push()

    async def resync(self) -> None:
        """For :meth:`Cluster.on_reconnect`: send what waited, then read the totals again."""
        self._refresh_due = 0.0
        with contextlib.suppress(StateUnavailable):
            await self.push()

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            await asyncio.sleep(self.push_interval)
            try:
                if self._pending or self._rpm:
                    await self.push()
                if loop.time() >= self._refresh_due:
                    await self.refresh()
                    self._refresh_due = loop.time() + self.refresh_interval
            except StateUnavailable:
                self._refresh_due = 0.0  # read the totals as soon as the store answers again

    async def push(self) -> None:
        """Send the queued increments; on an outage the rest stay queued and it raises StateUnavailable."""
        await self._push_requests()
        with self._lock:
            batch, self._pending = self._pending, {}
        items = list(batch.items())
        now = time.time()
        for index, (slot, (tokens, end)) in enumerate(items):
            try:
                total = await self.state.incr(counter_name(*slot), tokens, ttl=max(1.0, end - now) + WINDOW_GRACE)
            except StateUnavailable:
                with self._lock:
                    for unsent, (more, unsent_end) in items[index:]:
                        queued, _ = self._pending.get(unsent, (0, unsent_end))
                        self._pending[unsent] = (queued + more, unsent_end)
                raise
            self._take_total(slot, total)

    async def _push_requests(self) -> None:
        """Send the admitted requests counted since the last push and take each bucket's total back."""
        with self._lock:
            self._prune_rpm(time.time())
            batch = [
                (key_id, start, bucket.queued)
                for key_id, buckets in self._rpm.items()
                for start, bucket in buckets.items()
                if bucket.queued
            ]
        ttl = RPM_WINDOW_SECONDS + 2 * RPM_BUCKET_SECONDS
        for key_id, start, count in batch:
            total = await self.state.incr(rpm_counter_name(key_id, start), count, ttl=ttl)  # an outage: stays queued
            with self._lock:
                bucket = self._rpm.setdefault(key_id, {}).setdefault(start, _RpmBucket())
                bucket.queued -= count
                bucket.sent += count
                bucket.total = max(bucket.total, total)
        # the keys in use here: what the others admitted in the latest buckets, every flush (the older
        # buckets of the minute are settled; the periodic refresh reads them)
        with self._lock:
            active = list(self._rpm)
        current = rpm_bucket(time.time())
        await self._refresh_requests(active, [current, current - RPM_BUCKET_SECONDS])

    async def _refresh_requests(self, key_ids: Iterable[str], starts: list[float] | None = None) -> None:
        """Read the request buckets ``starts`` (default: the last minute's) of ``key_ids``."""
        if starts is None:
            starts = rpm_buckets(time.time())
        for key_id in key_ids:
            for start in starts:
                total = await self.state.get_counter(rpm_counter_name(key_id, start))
                with self._lock:
                    buckets = self._rpm.get(key_id)
                    known = buckets.get(start) if buckets is not None else None
                    if known is None:
                        if total <= 0:
                            continue
                        known = self._rpm.setdefault(key_id, {}).setdefault(start, _RpmBucket())
                    known.total = max(known.total, total)

    async def refresh(self) -> None:
        """Read the cluster totals of the budgeted keys (and of those this instance recorded) for now."""
        key_ids = set(self._recorded)
        if self.budgeted_keys is not None:
            for info in self.budgeted_keys():
                if any(info.limits.token_budget(window) is not None for window in TOKEN_WINDOWS):
                    key_ids.add(info.id)
        now = time.time()
        for key_id in key_ids:
            for window in TOKEN_WINDOWS:
                start, _ = window_bounds(window, now)
                total = await self.state.get_counter(counter_name(key_id, window, start))
                self._take_total((key_id, window, start), total)
        with self._lock:
            limited = set(self._rpm)
        if self.budgeted_keys is not None:
            limited.update(info.id for info in self.budgeted_keys() if info.limits.requests_per_minute is not None)
        await self._refresh_requests(limited)


def shared_usage(url: str, prefix: str, key_ids: Iterable[str], now: float) -> dict[str, KeyUsage]:
    """The keys' token totals in the current windows and their requests in the last minute (every
    instance's), read from Redis (``keys list`` with ``state_url``). Raises ``redis.RedisError`` /
    ``OSError`` when Redis cannot be reached.
    """
    import redis

    ids = list(key_ids)
    bounds = {window: window_bounds(window, now) for window in TOKEN_WINDOWS}
    starts = rpm_buckets(now)
    per_key = len(TOKEN_WINDOWS) + len(starts)
    names: list[str] = []
    for key_id in ids:
        names += [f"{prefix}ctr:{counter_name(key_id, w, bounds[w][0])}" for w in TOKEN_WINDOWS]
        names += [f"{prefix}ctr:{rpm_counter_name(key_id, start)}" for start in starts]
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        values = client.mget(names) if names else []
    finally:
        client.close()
    usage: dict[str, KeyUsage] = {}
    for index, key_id in enumerate(ids):
        chunk = [int(value or 0) for value in values[index * per_key : (index + 1) * per_key]]
        tokens = dict(zip(TOKEN_WINDOWS, chunk, strict=False))
        resets = {window: bounds[window][1] for window in TOKEN_WINDOWS}
        requests, _ = requests_in_minute(zip(starts, chunk[len(TOKEN_WINDOWS) :], strict=True), now)
        usage[key_id] = KeyUsage(tokens=tokens, resets_at=resets, requests_last_minute=round(requests))
    return usage
