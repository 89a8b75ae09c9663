"""What the simulator records about each request, and the rate-limit figures it reports."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict


@dataclass
class RecordedRequest:
    """One request the simulator received, with the timing of its answer.

    Times are ``time.monotonic()`` values (comparable with the test's own ``time.monotonic()``).
    ``outcome`` ends as one of ``completed``, ``rejected`` (auth/validation), ``http_error``,
    ``disconnected`` (the client went away first), ``dropped`` / ``closed`` (faults that cut the
    connection), ``stopped`` (simulator shut down) or ``models``.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    json: Any
    received_at: float
    request_id: str
    scenario: str | None = None
    status: int | None = None
    response_id: str | None = None
    headers_sent_at: float | None = None
    first_event_at: float | None = None
    #: when each event was written (``time.monotonic()``), parallel to ``event_types``.
    event_times: list[float] = field(default_factory=list, repr=False)
    #: the type of each event written (or being written), in order (``"not json"`` for the bad line).
    event_types: list[str] = field(default_factory=list, repr=False)
    finished_at: float | None = None
    disconnected_at: float | None = None
    outcome: str | None = None
    #: the account the request came from (its token's ``chatgpt_account_id``), when it named one
    account: str | None = None
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def events_sent(self) -> int:
        return len(self.event_times)

    def sent_at(self, event_type: str) -> float | None:
        """When the first event of ``event_type`` was written, or None if it was not (yet)."""
        for sent, kind in zip(self.event_times, self.event_types, strict=False):
            if kind == event_type:
                return sent
        return None

    @property
    def closed(self) -> bool:
        """True once the simulator is done with the request (answered, cut, or the client left)."""
        return self._closed.is_set()

    def finish(self, outcome: str) -> None:
        now = time.monotonic()
        if self.outcome is None:
            self.outcome = outcome
        if self.outcome == "disconnected" and self.disconnected_at is None:
            self.disconnected_at = now
        if self.finished_at is None:
            self.finished_at = now
        self._closed.set()

    def wait_closed(self, timeout: float) -> bool:
        """Block (from a thread other than the simulator's) until the request is closed."""
        return self._closed.wait(timeout)

    async def until_closed(self, wait: float) -> bool:
        """Await (from any event loop) until the request is closed; False on timeout."""
        deadline = time.monotonic() + wait
        while not self._closed.is_set():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True


@dataclass
class RateLimits:
    """The figures behind the ``x-codex-*`` headers and the ``codex.rate_limits`` event."""

    primary_used_percent: float = 12.0
    primary_window_minutes: int = 300
    primary_reset_after_seconds: int = 7_200
    secondary_used_percent: float = 34.0
    secondary_window_minutes: int = 10_080
    secondary_reset_after_seconds: int = 302_400
    plan_type: str = "plus"

    def _windows(self) -> dict[str, tuple[float, int, int]]:
        return {
            "primary": (self.primary_used_percent, self.primary_window_minutes, self.primary_reset_after_seconds),
            "secondary": (
                self.secondary_used_percent,
                self.secondary_window_minutes,
                self.secondary_reset_after_seconds,
            ),
        }

    def headers(self, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        headers: dict[str, str] = {}
        for window, (used, minutes, after) in self._windows().items():
            headers[f"x-codex-{window}-used-percent"] = f"{used:g}"
            headers[f"x-codex-{window}-window-minutes"] = str(minutes)
            headers[f"x-codex-{window}-reset-at"] = str(int(now) + after)
            headers[f"x-codex-{window}-reset-after-seconds"] = str(after)
        headers["x-codex-plan-type"] = self.plan_type
        return headers

    def event(self, now: float | None = None) -> dict[str, Any]:
        """``{"type": "codex.rate_limits", "plan_type", "rate_limits": {primary, secondary}}``."""
        now = time.time() if now is None else now
        limits = {
            window: {"used_percent": used, "window_minutes": minutes, "reset_at": int(now) + after}
            for window, (used, minutes, after) in self._windows().items()
        }
        return {"type": "codex.rate_limits", "plan_type": self.plan_type, "rate_limits": limits}
