"""One pool account's state: who it is, whether it can serve, and its latest usage windows.

Pure data and pure helpers: no I/O and no clock reads (callers pass ``now``, a unix time). The dict
form (:meth:`AccountState.to_dict`) is what ``accounts list --json`` prints and what shared state
stores; it never holds a token, because an :class:`AccountState` never holds one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["AccountState", "AccountStatus", "UsageWindow", "account_key", "alias_from_email"]

_ALIAS_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_LAST_ERROR_MAX = 200


class AccountStatus(StrEnum):
    """The account's state as ``accounts list`` shows it."""

    ACTIVE = "active"
    COOLING = "cooling"  # a usage limit: unusable until ``cooling_until``, then one probe request
    NEEDS_LOGIN = "needs_login"  # a 401 that a refresh could not fix
    DISABLED = "disabled"  # the backend says the account is deactivated (``disabled_reason``)
    PAUSED = "paused"  # the operator paused it


def account_key(chatgpt_account_id: str, user_id: str) -> str:
    """The pool's identity for an account: the workspace account and the user (emails are not unique)."""
    return f"{chatgpt_account_id}:{user_id}"


def alias_from_email(email: str | None, taken: Collection[str] = ()) -> str:
    """A display alias: the email's local part, lower-cased and made safe, with ``-2``, ``-3`` … when taken."""
    local = (email or "").split("@", 1)[0].strip().lower()
    base = _ALIAS_UNSAFE.sub("-", local).strip("-.") or "account"
    alias, n = base, 2
    while alias in taken:
        alias = f"{base}-{n}"
        n += 1
    return alias


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """One rate-limit window as the backend last reported it (immutable: replace it to update it)."""

    used_percent: float = 0.0
    reset_at: float | None = None  # unix time the window resets; None when unknown
    window_minutes: int | None = None

    def current_percent(self, now: float) -> float:
        """The used % now: a window whose reset time has passed is stale and counts as 0."""
        if self.reset_at is not None and self.reset_at <= now:
            return 0.0
        return self.used_percent

    def to_dict(self) -> dict[str, Any]:
        return {"used_percent": self.used_percent, "reset_at": self.reset_at, "window_minutes": self.window_minutes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageWindow:
        reset_at = data.get("reset_at")
        minutes = data.get("window_minutes")
        return cls(
            used_percent=float(data.get("used_percent") or 0.0),
            reset_at=float(reset_at) if isinstance(reset_at, int | float) else None,
            window_minutes=int(minutes) if isinstance(minutes, int | float) else None,
        )


@dataclass(slots=True, eq=True)
class AccountState:
    """Everything the router and ``accounts list`` need about one account (never its credentials)."""

    chatgpt_account_id: str
    user_id: str
    alias: str
    email: str | None = None
    plan: str | None = None
    status: AccountStatus = AccountStatus.ACTIVE
    #: end of a usage-limit cooldown (kept while paused, so that resuming restores it)
    cooling_until: float | None = None
    disabled_reason: str | None = None
    #: model → unix time until which the account's plan does not include it (``usage_not_included``)
    disabled_models: dict[str, float] = field(default_factory=dict)
    primary: UsageWindow | None = None
    secondary: UsageWindow | None = None
    usage_day: str | None = None  # the day (caller's calendar, e.g. "2026-12-01") the counters below are for
    requests_today: int = 0
    tokens_today: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    # Runtime only (not restored from the dict form):
    streams_in_flight: int = 0
    transient_failures: int = 0  # consecutive; drives the backoff
    backoff_until: float | None = None  # a soft bench: routing prefers other accounts until then
    probe_in_flight: bool = False  # a request is probing the account after its cooldown ended
    key: str = field(init=False)
    # The current used % is cached with the span of time it holds for (it changes only when a window
    # resets or is replaced): the router reads it for every account on every sticky miss.
    _used: float = field(default=0.0, init=False, repr=False, compare=False)
    _used_from: float = field(default=math.inf, init=False, repr=False, compare=False)
    _used_until: float = field(default=-math.inf, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = account_key(self.chatgpt_account_id, self.user_id)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "primary" or name == "secondary":
            object.__setattr__(self, "_used_until", -math.inf)

    # --- routing helpers -------------------------------------------------------------------------

    def usable(self, now: float, model: str | None = None) -> bool:
        """Whether a request for ``model`` may go to this account now (the stream cap aside).

        A cooling account whose reset time has passed is usable for one probe at a time. A transient
        backoff does not make an account unusable: the router only prefers other accounts.
        """
        status = self.status
        if status is not AccountStatus.ACTIVE:
            if status is not AccountStatus.COOLING or self.probe_in_flight:
                return False
            if self.cooling_until is not None and self.cooling_until > now:
                return False
        if self.disabled_models and model is not None:
            until = self.disabled_models.get(model)
            if until is not None and until > now:
                return False
        return True

    def probing(self, now: float) -> bool:
        """Whether a request sent now would be the probe after a cooldown."""
        return self.status is AccountStatus.COOLING and (self.cooling_until is None or self.cooling_until <= now)

    def in_backoff(self, now: float) -> bool:
        return self.backoff_until is not None and self.backoff_until > now

    def used_percent(self, now: float | None = None) -> float:
        """The highest of the primary and secondary used % (no data: 0). With ``now``, stale windows count 0."""
        if now is None:
            return max((w.used_percent for w in (self.primary, self.secondary) if w is not None), default=0.0)
        if self._used_from <= now < self._used_until:
            return self._used
        return self.refresh_used(now)

    def refresh_used(self, now: float) -> float:
        """Compute the used % at ``now`` and cache it until the next window reset after ``now``."""
        best, since, until = 0.0, -math.inf, math.inf
        for window in (self.primary, self.secondary):
            if window is None:
                continue
            reset = window.reset_at
            if reset is None or reset > now:
                best = max(best, window.used_percent)
                if reset is not None:
                    until = min(until, reset)
            else:
                since = max(since, reset)
        object.__setattr__(self, "_used", best)
        object.__setattr__(self, "_used_from", since)
        object.__setattr__(self, "_used_until", until)
        return best

    def earliest_reset(self, now: float) -> float | None:
        """When this account can serve again if it is cooling (its cooldown end), else None."""
        if self.status is AccountStatus.COOLING:
            return self.cooling_until if self.cooling_until is not None else now
        return None

    def note_error(self, message: str, now: float) -> None:
        """Remember the latest error (shortened; callers pass messages that hold no token)."""
        self.last_error = message[:_LAST_ERROR_MAX]
        self.last_error_at = now

    def count_usage(self, day: str, requests: int = 0, tokens: int = 0) -> None:
        """Add to today's counters, starting them over when ``day`` changed."""
        if day != self.usage_day:
            self.usage_day = day
            self.requests_today = 0
            self.tokens_today = 0
        self.requests_today += requests
        self.tokens_today += tokens

    # --- the dict form ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (for ``accounts list --json`` and shared state); it holds no credential."""
        return {
            "key": self.key,
            "chatgpt_account_id": self.chatgpt_account_id,
            "user_id": self.user_id,
            "alias": self.alias,
            "email": self.email,
            "plan": self.plan,
            "state": self.status.value,
            "cooling_until": self.cooling_until,
            "disabled_reason": self.disabled_reason,
            "disabled_models": dict(self.disabled_models),
            "primary": self.primary.to_dict() if self.primary else None,
            "secondary": self.secondary.to_dict() if self.secondary else None,
            "usage_day": self.usage_day,
            "requests_today": self.requests_today,
            "tokens_today": self.tokens_today,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "streams_in_flight": self.streams_in_flight,
            "backoff_until": self.backoff_until,
            "probe_in_flight": self.probe_in_flight,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountState:
        """Restore the lasting part of :meth:`to_dict` (streams, backoff and probe start afresh)."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        def number(name: str) -> float | None:
            value = data.get(name)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        try:
            status = AccountStatus(data.get("state", "active"))
        except ValueError:
            status = AccountStatus.ACTIVE
        models = data.get("disabled_models")
        primary, secondary = data.get("primary"), data.get("secondary")
        return cls(
            chatgpt_account_id=str(data["chatgpt_account_id"]),
            user_id=str(data["user_id"]),
            alias=str(data.get("alias") or alias_from_email(text("email"))),
            email=text("email"),
            plan=text("plan"),
            status=status,
            cooling_until=number("cooling_until"),
            disabled_reason=text("disabled_reason"),
            disabled_models=(
                {str(k): float(v) for k, v in models.items() if isinstance(v, int | float)}
                if isinstance(models, Mapping)
                else {}
            ),
            primary=UsageWindow.from_dict(primary) if isinstance(primary, Mapping) else None,
            secondary=UsageWindow.from_dict(secondary) if isinstance(secondary, Mapping) else None,
            usage_day=text("usage_day"),
            requests_today=int(data.get("requests_today") or 0),
            tokens_today=int(data.get("tokens_today") or 0),
            last_error=text("last_error"),
            last_error_at=number("last_error_at"),
        )
