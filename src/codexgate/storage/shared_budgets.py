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

The requests-per-minute limit stays per instance (it is checked and counted on the request path, which
never waits on Redis): with N instances behind a balancer a key may get up to N times its RPM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from codexgate.state.interface import StateUnavailable
from codexgate.storage.budgets import TOKEN_WINDOWS, BudgetTracker, KeyUsage, window_bounds

if TYPE_CHECKING:
    from codexgate.state.interface import SharedState
    from codexgate.storage.api_keys import KeyInfo

__all__ = ["SharedBudgetTracker", "counter_name", "shared_usage"]

logger = logging.getLogger("codexgate.budgets")

#: a window's counter outlives the window by this much (seconds)
WINDOW_GRACE = 3600.0

_Slot = tuple[str, str, float]  # key id, window, window start


def counter_name(key_id: str, window: str, start: float) -> str:
    """The shared counter of one key's tokens in one window."""
    return f"budget:{key_id}:{window}:{int(start)}"


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
                if self._pending:
                    await self.push()
                if loop.time() >= self._refresh_due:
                    await self.refresh()
                    self._refresh_due = loop.time() + self.refresh_interval
            except StateUnavailable:
                self._refresh_due = 0.0  # read the totals as soon as the store answers again

    async def push(self) -> None:
        """Send the queued increments; on an outage the rest stay queued and it raises StateUnavailable."""
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


def shared_usage(url: str, prefix: str, key_ids: Iterable[str], now: float) -> dict[str, KeyUsage]:
    """The keys' token totals in the current windows, read from Redis (``keys list`` with ``state_url``).

    ``requests_last_minute`` is 0: that count lives in each instance. Raises ``redis.RedisError`` /
    ``OSError`` when Redis cannot be reached.
    """
    import redis

    ids = list(key_ids)
    bounds = {window: window_bounds(window, now) for window in TOKEN_WINDOWS}
    names = [f"{prefix}ctr:{counter_name(key_id, w, bounds[w][0])}" for key_id in ids for w in TOKEN_WINDOWS]
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        values = client.mget(names) if names else []
    finally:
        client.close()
    usage: dict[str, KeyUsage] = {}
    for index, key_id in enumerate(ids):
        chunk = values[index * len(TOKEN_WINDOWS) : (index + 1) * len(TOKEN_WINDOWS)]
        tokens = {window: int(value or 0) for window, value in zip(TOKEN_WINDOWS, chunk, strict=True)}
        resets = {window: bounds[window][1] for window in TOKEN_WINDOWS}
        usage[key_id] = KeyUsage(tokens=tokens, resets_at=resets, requests_last_minute=0)
    return usage
