"""The state transitions the upstream layer applies after each answer from the backend.

Pure: each function changes one :class:`AccountState` and reads no clock (``now`` is passed in).
The rules that keep a pool from locking itself out live here and in the router:

- a usage limit cools the account until the backend's reset time; once it passes, the account gets
  one probe request (no second concurrent request until the probe succeeded);
- transient failures (5xx, timeouts, connection errors, a 403 that is not a deactivation) back the
  account off for seconds (1, 2, 4 … capped), and that backoff is only a preference of the router,
  so it can never take the last usable account out;
- a stale window (its reset time in the past) counts as 0 % used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from codexgate.pool.accounts import AccountState, AccountStatus, UsageWindow

__all__ = [
    "BACKOFF_CAP_SECONDS",
    "DEFAULT_COOLDOWN_SECONDS",
    "MODEL_RECHECK_SECONDS",
    "apply_operator",
    "begin_stream",
    "credentials_renewed",
    "end_stream",
    "forbidden",
    "is_deactivation",
    "pause",
    "resume",
    "success",
    "transient_failure",
    "unauthorized_after_refresh",
    "update_windows",
    "usage_limit",
    "usage_not_included",
]

#: the longest transient backoff: seconds, never minutes
BACKOFF_CAP_SECONDS: Final = 30.0
#: a usage limit whose answer carried no reset time cools the account this long, then it is probed
DEFAULT_COOLDOWN_SECONDS: Final = 60.0
#: a model the plan did not include is tried on that account again after this long (plans change)
MODEL_RECHECK_SECONDS: Final = 3600.0

_DEACTIVATION_MARKERS: Final = ("deactivated", "account_deactivated", "deactivation")


def usage_limit(account: AccountState, resets_at: float | None, now: float, message: str | None = None) -> None:
    """A ``usage_limit_reached``: cool the account until ``resets_at`` (or a short default when unknown)."""
    until = resets_at if resets_at is not None and resets_at > now else now + DEFAULT_COOLDOWN_SECONDS
    account.cooling_until = until
    if account.status is AccountStatus.ACTIVE or account.status is AccountStatus.COOLING:
        account.status = AccountStatus.COOLING
    account.probe_in_flight = False
    account.note_error(message or "usage limit reached", now)


def usage_not_included(account: AccountState, model: str, now: float) -> None:
    """A ``usage_not_included``: the account's plan does not include ``model`` (rechecked after an hour)."""
    account.disabled_models[model] = now + MODEL_RECHECK_SECONDS
    account.probe_in_flight = False
    account.note_error(f"model {model} is not included in this account's plan", now)


def unauthorized_after_refresh(account: AccountState, now: float) -> None:
    """A 401 that a token refresh could not fix: the account needs ``codexgate login``."""
    account.status = AccountStatus.NEEDS_LOGIN
    account.probe_in_flight = False
    account.note_error("credentials rejected after a refresh; run `codexgate login`", now)


def is_deactivation(body_text: str) -> bool:
    """Whether a 403 body says the account itself is deactivated."""
    lowered = body_text.lower()
    return any(marker in lowered for marker in _DEACTIVATION_MARKERS)


def forbidden(account: AccountState, body_text: str, now: float) -> None:
    """A 403: disable the account only when the body says it is deactivated; any other 403 is transient."""
    if is_deactivation(body_text):
        account.status = AccountStatus.DISABLED
        account.disabled_reason = "the account is deactivated"
        account.probe_in_flight = False
        account.note_error("403: the account is deactivated", now)
        return
    transient_failure(account, now, "403 from the backend")


def transient_failure(account: AccountState, now: float, message: str | None = None) -> float:
    """A 5xx, timeout or connection error: back off 1, 2, 4 … seconds (capped); returns the backoff.

    The backoff only makes the router prefer other accounts, so the only usable account still serves.
    A probe that failed this way leaves the account cooling-but-due: the next request probes again.
    """
    account.transient_failures += 1
    seconds = min(2.0 ** (account.transient_failures - 1), BACKOFF_CAP_SECONDS)
    account.backoff_until = now + seconds
    account.probe_in_flight = False
    account.note_error(message or "transient upstream failure", now)
    return seconds


def success(account: AccountState) -> None:
    """An answer came through: clear the backoff; a probe that succeeded ends the cooldown."""
    account.transient_failures = 0
    account.backoff_until = None
    if account.status is AccountStatus.COOLING:
        account.status = AccountStatus.ACTIVE
        account.cooling_until = None
    account.probe_in_flight = False


def begin_stream(account: AccountState, probe: bool, day: str | None = None) -> None:
    """The request was sent to ``account`` (call it right after routing, with no await in between)."""
    account.streams_in_flight += 1
    if probe:
        account.probe_in_flight = True
    if day is not None:
        account.count_usage(day, requests=1)


def end_stream(account: AccountState) -> None:
    """The request is over. A probe that ended without an outcome lets the next request probe."""
    account.streams_in_flight = max(account.streams_in_flight - 1, 0)
    account.probe_in_flight = False


def credentials_renewed(account: AccountState) -> None:
    """A fresh login: a "needs login" account can serve again (a running cooldown stays)."""
    if account.status is AccountStatus.NEEDS_LOGIN:
        account.status = AccountStatus.COOLING if account.cooling_until is not None else AccountStatus.ACTIVE
    account.transient_failures = 0
    account.backoff_until = None


def pause(account: AccountState) -> None:
    account.status = AccountStatus.PAUSED
    account.probe_in_flight = False


def resume(account: AccountState) -> None:
    """Back in service from paused or disabled (a cooldown still running or due is kept)."""
    account.status = AccountStatus.COOLING if account.cooling_until is not None else AccountStatus.ACTIVE
    account.disabled_reason = None
    account.disabled_models.clear()
    account.transient_failures = 0
    account.backoff_until = None


def apply_operator(
    account: AccountState, *, paused: bool, resume_count: int, resumes_applied: int, paused_applied: bool | None
) -> str | None:
    """The operator's word (a home's index entry) applied when it changed since it was last applied: a pause
    when the entry turned paused, a resume when its resume counter moved (an ``accounts resume`` also lifts
    "disabled" or "needs login", once) or when it turned unpaused. An entry that has said the same all along
    leaves the state alone, so a pause or resume that came another way (another instance's home, through the
    shared pool state) stands. ``paused_applied`` is ``None`` before the first time: the entry is then
    applied as it is. Returns ``"paused"``, ``"resumed"`` or ``None``."""
    if paused:
        if paused_applied is not True and account.status is not AccountStatus.PAUSED:
            pause(account)
            return "paused"
    elif resume_count != resumes_applied or (paused_applied is not False and account.status is AccountStatus.PAUSED):
        resume(account)
        return "resumed"
    return None


def _window(raw: Any, now: float) -> UsageWindow | None:
    if not isinstance(raw, Mapping):
        return None
    used = raw.get("used_percent")
    reset_at = raw.get("reset_at")
    after = raw.get("reset_after_seconds")
    minutes = raw.get("window_minutes")
    if isinstance(reset_at, int | float) and not isinstance(reset_at, bool):
        reset = float(reset_at)
    elif isinstance(after, int | float) and not isinstance(after, bool):
        reset = now + float(after)
    else:
        reset = None
    return UsageWindow(
        used_percent=float(used) if isinstance(used, int | float) and not isinstance(used, bool) else 0.0,
        reset_at=reset,
        window_minutes=int(minutes) if isinstance(minutes, int | float) and not isinstance(minutes, bool) else None,
    )


def update_windows(account: AccountState, snapshot: Mapping[str, Any], now: float) -> None:
    """Take the windows of a rate-limit snapshot (``storage.rate_limits.from_headers``/``from_event``).

    A window missing from the snapshot keeps its last value; ``reset_after_seconds`` counts from ``now``.
    """
    primary = _window(snapshot.get("primary"), now)
    secondary = _window(snapshot.get("secondary"), now)
    if primary is not None:
        account.primary = primary
    if secondary is not None:
        account.secondary = secondary
    plan = snapshot.get("plan_type")
    if isinstance(plan, str) and plan:
        account.plan = plan
