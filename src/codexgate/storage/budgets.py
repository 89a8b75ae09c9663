"""Per-key budgets: what a key may spend, and the in-memory check the server makes before going upstream.

A key's :class:`KeyLimits` live in the keys file next to its hash (``storage/api_keys.py``); every
limit is optional:

- ``tokens_per_day`` / ``tokens_per_week`` / ``tokens_per_month``: calendar windows in UTC (the day
  from 00:00, the week from Monday 00:00, the month from the 1st 00:00). A request's tokens are its
  input tokens plus its output tokens, as the backend reported them; cached input tokens are part of
  the input tokens and are counted in full (reasoning tokens are part of the output tokens).
- ``requests_per_minute``: a sliding 60-second window over the requests the check admitted.
- ``allowed_models``: glob patterns (``fnmatch``, case-sensitive) over the model name the client asked for.
- ``allowed_accounts``: pool aliases the key's requests may use (the router applies it; see
  :meth:`BudgetTracker.account_allowed`).
- ``expires_at``: a unix time after which the key is refused.

:meth:`BudgetTracker.check` is the hot path: no I/O, no lock held across anything slow; it reads
counters kept in memory (``bench/bench_budgets.py`` measures it). :meth:`BudgetTracker.record` adds a
finished request's tokens. Counters are written to a small SQLite file by a background thread (about
once a second, and on :meth:`close`), and read back by :meth:`open`, so they survive a restart.

Overshoot: the token check admits a request while the key is under budget; tokens are only known
when the request ends. Requests running at the same time are all admitted, so a key can go over a
token budget by what those in-flight requests used (a stream that crosses the budget finishes; the
next request is refused). The RPM limit counts a request when it is admitted and is exact in one
process; across instances it is shared in 10-second buckets (see ``storage/shared_budgets.py``).

Limits changed with ``keys update`` (or the dashboard) reach a running server through the keys file:
:meth:`KeyStore.verify` re-reads it within a second and returns the key's new :class:`KeyLimits`, which
the next :meth:`BudgetTracker.check` uses. Counters are per process (embedded mode); with ``state_url``
the instances share them through :class:`codexgate.storage.shared_budgets.SharedBudgetTracker`.

Server wiring::

    budgets = BudgetTracker(settings.home / BUDGETS_FILE_NAME)
    budgets.open()                                      # lifespan start (loads saved counters)
    info = key_store.verify(presented)                  # the key check, as today
    error = budgets.check(info, body.get("model"), time.time())
    if error is not None:
        raise error                                     # rendered in the client's dialect
    # the router skips accounts for which budgets.account_allowed(info, alias) is False
    budgets.record(info, record.input_tokens + record.output_tokens, record.time)  # when the request ends
    budgets.close()                                     # lifespan end (saves the counters)
"""

from __future__ import annotations

import calendar
import collections
import fnmatch
import logging
import math
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from codexgate.errors import APIError
from codexgate.files import PRIVATE_FILE_MODE, ensure_private_dir
from codexgate.storage.key_limits import NO_LIMITS, KeyLimits, parse_expiry, parse_patterns

if TYPE_CHECKING:
    from codexgate.storage.api_keys import KeyInfo

__all__ = [
    "BUDGETS_FILE_NAME",
    "NO_LIMITS",
    "TOKEN_WINDOWS",
    "BudgetTracker",
    "KeyLimits",
    "KeyUsage",
    "parse_expiry",
    "parse_patterns",
    "window_bounds",
]

logger = logging.getLogger("codexgate.budgets")

#: the calendar windows, in the order they are checked
TOKEN_WINDOWS: Final = ("day", "week", "month")
RPM_WINDOW_SECONDS: Final = 60.0
#: the counters file's name in ``$CODEXGATE_HOME`` (the server and ``keys list`` agree on it)
BUDGETS_FILE_NAME: Final = "budgets.db"
_MODEL_CACHE_MAX = 4096


def window_bounds(window: str, now: float) -> tuple[float, float]:
    """The UTC calendar ``window`` (day, week from Monday, month) holding ``now``: ``(start, end)``."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        start, end = day, day + timedelta(days=1)
    elif window == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif window == "month":
        start = day.replace(day=1)
        end = start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
    else:
        raise ValueError(f"unknown window {window!r}")
    return start.timestamp(), end.timestamp()


@dataclass(slots=True)
class _Windows:
    """The current day/week/month bounds, recomputed only when ``now`` leaves the day."""

    starts: dict[str, float] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)
    valid_from: float = math.inf
    valid_until: float = -math.inf

    def refresh(self, now: float) -> None:
        if self.valid_from <= now < self.valid_until:
            return
        for window in TOKEN_WINDOWS:
            self.starts[window], self.ends[window] = window_bounds(window, now)
        self.valid_from, self.valid_until = self.starts["day"], self.ends["day"]


@dataclass(slots=True)
class _Counters:
    #: window -> (window start, tokens used in it)
    tokens: dict[str, tuple[float, int]] = field(default_factory=dict)
    recent: collections.deque[float] = field(default_factory=collections.deque)

    def used(self, window: str, start: float) -> int:
        entry = self.tokens.get(window)
        return entry[1] if entry is not None and entry[0] == start else 0


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """A key's use against its limits at one moment (for ``keys list`` and the dashboard)."""

    tokens: dict[str, int]
    resets_at: dict[str, float]
    requests_last_minute: int


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


class BudgetTracker:
    """The budget check (in memory) and the counters behind it (persisted to ``path`` when given)."""

    def __init__(self, path: Path | None = None, *, flush_interval: float = 1.0) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self._counters: dict[str, _Counters] = {}
        self._windows = _Windows()
        self._model_ok: dict[tuple[tuple[str, ...], str], bool] = {}
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None

    # ---- the request path ------------------------------------------------------------------

    def check(self, key: KeyInfo, model: str | None, now: float) -> APIError | None:
        """None when ``key`` may send a request for ``model`` now (it is then counted for RPM), else the error."""
        limits = key.limits
        if limits is NO_LIMITS:
            return None
        if limits.expires_at is not None and now >= limits.expires_at:
            return APIError(
                401,
                f"API key {key.name!r} expired at {_when(limits.expires_at)}.",
                type="authentication_error",
                code="key_expired",
            )
        if limits.allowed_models and not self._model_allowed(limits.allowed_models, model or ""):
            return APIError(
                403,
                f"API key {key.name!r} may not use model {model!r}; allowed: {', '.join(limits.allowed_models)}.",
                type="permission_error",
                param="model",
                code="model_not_allowed",
            )
        counters = self._counters.get(key.id)
        if counters is None:
            counters = self._counters.setdefault(key.id, _Counters())
        windows = self._windows
        windows.refresh(now)
        for window in TOKEN_WINDOWS:
            budget = limits.token_budget(window)
            if budget is None:
                continue
            used = counters.used(window, windows.starts[window])
            if used >= budget:
                return self._exceeded(key, f"tokens_per_{window}", used, budget, windows.ends[window], now)
        rpm = limits.requests_per_minute
        if rpm is not None:
            recent = counters.recent
            with self._lock:
                while recent and recent[0] <= now - RPM_WINDOW_SECONDS:
                    recent.popleft()
                elsewhere, oldest = self._requests_elsewhere(key.id, now)
                if len(recent) + elsewhere >= rpm:
                    first = min([t for t in (recent[0] if recent else None, oldest) if t is not None], default=now)
                    used = len(recent) + round(elsewhere)
                    return self._exceeded(key, "requests_per_minute", used, rpm, first + RPM_WINDOW_SECONDS, now)
                recent.append(now)
                self._admitted(key.id, now)
        return None

    def _requests_elsewhere(self, key_id: str, now: float) -> tuple[float, float | None]:
        """Requests of ``key_id`` other instances admitted in the last minute, and the earliest time they
        may have been admitted at (a hook: none here; see ``SharedBudgetTracker``). Called with ``_lock``."""
        return 0.0, None

    def _admitted(self, key_id: str, now: float) -> None:
        """A request of ``key_id`` was admitted at ``now`` (a hook, called with ``_lock``)."""

    def _model_allowed(self, patterns: tuple[str, ...], model: str) -> bool:
        cache_key = (patterns, model)
        known = self._model_ok.get(cache_key)
        if known is None:
            known = any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)
            if len(self._model_ok) >= _MODEL_CACHE_MAX:
                self._model_ok.clear()
            self._model_ok[cache_key] = known
        return known

    @staticmethod
    def _exceeded(key: KeyInfo, limit: str, used: int, budget: int, reset: float, now: float) -> APIError:
        retry_after = max(1, math.ceil(reset - now))
        what = "requests in the last minute" if limit == "requests_per_minute" else "tokens"
        return APIError(
            429,
            f"API key {key.name!r} is over its {limit} budget ({used} of {budget} {what}); "
            f"it resets at {_when(reset)}.",
            type="rate_limit_error",
            code="budget_exceeded",
            headers={"Retry-After": str(retry_after)},
            extra={"limit": limit, "resets_at": math.ceil(reset)},
        )

    @staticmethod
    def account_allowed(key: KeyInfo, alias: str) -> bool:
        """Whether the key's requests may go to the pool account ``alias``."""
        allowed = key.limits.allowed_accounts
        return not allowed or alias in allowed

    def record(self, key: KeyInfo | str, tokens: int, now: float) -> None:
        """Add a finished request's tokens (input + output) to the key's day, week and month."""
        if tokens <= 0:
            return
        key_id = key if isinstance(key, str) else key.id
        with self._lock:
            counters = self._counters.setdefault(key_id, _Counters())
            self._windows.refresh(now)
            for window in TOKEN_WINDOWS:
                start = self._windows.starts[window]
                counters.tokens[window] = (start, counters.used(window, start) + tokens)
            self._dirty.add(key_id)

    def _counters_of(self, key_id: str) -> _Counters:
        """The key's counters, created empty when new (call with ``_lock`` held)."""
        counters = self._counters.get(key_id)
        if counters is None:
            counters = self._counters[key_id] = _Counters()
        return counters

    def usage(self, key_id: str, now: float) -> KeyUsage:
        """The key's tokens in the current windows and its requests in the last minute."""
        with self._lock:
            counters = self._counters.get(key_id) or _Counters()
            tokens, resets = {}, {}
            for window in TOKEN_WINDOWS:
                start, end = window_bounds(window, now)
                tokens[window] = counters.used(window, start)
                resets[window] = end
            recent = sum(1 for t in counters.recent if t > now - RPM_WINDOW_SECONDS)
            recent += round(self._requests_elsewhere(key_id, now)[0])
        return KeyUsage(tokens=tokens, resets_at=resets, requests_last_minute=recent)

    def forget(self, key_id: str) -> None:
        """Drop a revoked key's counters."""
        with self._lock:
            self._counters.pop(key_id, None)
            self._dirty.add(key_id)

    # ---- persistence -----------------------------------------------------------------------

    def open(self) -> None:
        """Load the saved counters and start the thread that saves them (no-op without a path)."""
        if self.path is None or self._conn is not None:
            return
        ensure_private_dir(self.path.parent)
        if not self.path.exists():
            self.path.touch(mode=PRIVATE_FILE_MODE)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS key_tokens ("
            " key_id TEXT NOT NULL, window TEXT NOT NULL, window_start REAL NOT NULL, tokens INTEGER NOT NULL,"
            " PRIMARY KEY (key_id, window))"
        )
        self._load(conn)
        self._conn = conn
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="codexgate-budgets", daemon=True)
        self._thread.start()

    @classmethod
    def saved(cls, path: Path) -> BudgetTracker:
        """A tracker holding the counters saved in ``path`` (read once; for ``keys list``), empty if none."""
        tracker = cls()
        if path.exists():
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
            try:
                tracker._load(conn)
            except sqlite3.Error as exc:
                logger.warning("budget counters in %s unreadable: %s", path, exc)
            finally:
                conn.close()
        return tracker

    def _load(self, conn: sqlite3.Connection) -> None:
        saved = conn.execute("SELECT key_id, window, window_start, tokens FROM key_tokens").fetchall()
        with self._lock:
            for key_id, window, start, tokens in saved:
                if window in TOKEN_WINDOWS:
                    counters = self._counters.setdefault(str(key_id), _Counters())
                    counters.tokens[str(window)] = (float(start), int(tokens))

    def close(self) -> None:
        """Save what changed and stop the saving thread."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(10)
            self._thread = None
        if self._conn is not None:
            self.flush()
            self._conn.close()
            self._conn = None

    def flush(self) -> None:
        """Write the changed counters now."""
        conn = self._conn
        if conn is None:
            return
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            rows: list[tuple[str, str, float, int]] = []
            gone: list[tuple[str]] = []
            for key_id in dirty:
                counters = self._counters.get(key_id)
                if counters is None:
                    gone.append((key_id,))
                    continue
                rows.extend((key_id, w, start, used) for w, (start, used) in counters.tokens.items())
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM key_tokens WHERE key_id = ?", gone)
            conn.executemany(
                "INSERT INTO key_tokens (key_id, window, window_start, tokens) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key_id, window) DO UPDATE SET window_start = excluded.window_start,"
                " tokens = excluded.tokens",
                rows,
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            logger.warning("budget counters not saved (%s); will retry", exc)
            with self._lock:
                self._dirty |= dirty

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            if self._dirty:
                self.flush()
