"""Why no account can serve a request: the :class:`Refusal` the router returns and the error it becomes.

Pure: ``now`` is passed in. Messages name accounts by alias only (never an email, never a token).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from codexgate.errors import APIError, type_for_status
from codexgate.pool.accounts import AccountState, AccountStatus

__all__ = ["NoAccountReason", "Refusal", "bound_refusal", "no_accounts", "refusal_for"]


class NoAccountReason(StrEnum):
    NO_ACCOUNTS = "no_accounts"
    ALL_TRIED = "all_tried"  # every usable account failed this request: answer with the last upstream error
    ALL_FULL = "all_full"
    ALL_COOLING = "all_cooling"
    MODEL_NOT_INCLUDED = "model_not_included"
    NEEDS_LOGIN = "needs_login"
    UNAVAILABLE = "unavailable"  # disabled, paused or needing login, in some mix
    BOUND_UNAVAILABLE = "bound_unavailable"  # a compaction item bound to an account that cannot serve


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why no account can serve, as the client will see it."""

    reason: NoAccountReason
    status: int
    code: str
    message: str
    accounts: tuple[str, ...] = ()  # aliases of the accounts concerned (never a token, never an email)
    resets_at: float | None = None
    retry_after: int | None = None

    def to_error(self) -> APIError:
        headers = {"retry-after": str(self.retry_after)} if self.retry_after is not None else None
        extra: dict[str, Any] = {}
        if self.resets_at is not None:
            extra["resets_at"] = math.ceil(self.resets_at)
        if self.retry_after is not None and self.reason in (
            NoAccountReason.ALL_COOLING,
            NoAccountReason.BOUND_UNAVAILABLE,
        ):
            extra["resets_in_seconds"] = self.retry_after
        # The backend's own usage-limit types are kept as the type, as for a single account today.
        limit = self.code in ("usage_limit_reached", "usage_not_included")
        error_type = self.code if limit else type_for_status(self.status)
        return APIError(self.status, self.message, type=error_type, code=self.code, headers=headers, extra=extra)


def _when(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def _retry_after(resets_at: float, now: float) -> int:
    return max(math.ceil(resets_at - now), 1)


def no_accounts() -> Refusal:
    return Refusal(
        NoAccountReason.NO_ACCOUNTS,
        401,
        "no_account",
        "No ChatGPT account is signed in. Run `codexgate login` to add one.",
    )


def _state_phrase(account: AccountState, model: str, now: float, cap: int | None) -> str:
    status = account.status
    if status is AccountStatus.NEEDS_LOGIN:
        return "needs login (run `codexgate login`)"
    if status is AccountStatus.DISABLED:
        return f"disabled ({account.disabled_reason or 'by the backend'})"
    if status is AccountStatus.PAUSED:
        return "paused (`codexgate accounts resume` brings it back)"
    if status is AccountStatus.COOLING and account.cooling_until is not None and account.cooling_until > now:
        return f"at its usage limit until {_when(account.cooling_until)}"
    if status is AccountStatus.COOLING and account.probe_in_flight:
        return "being probed after its usage limit reset"
    until = account.disabled_models.get(model)
    if until is not None and until > now:
        return f"its plan does not include {model}"
    if cap is not None and account.streams_in_flight >= cap:
        return f"at its cap of {cap} concurrent streams"
    return "already tried for this request"


def bound_refusal(account: AccountState | None, model: str, now: float, cap: int | None) -> Refusal:
    """A compaction item is bound to ``account`` (None: it left the pool), which cannot serve now."""
    if account is None:
        return Refusal(
            NoAccountReason.BOUND_UNAVAILABLE,
            409,
            "compaction_account_unavailable",
            "The conversation carries a compacted history that only the account which produced it can read, "
            "and that account is no longer in the pool. Start a new conversation.",
        )
    phrase = _state_phrase(account, model, now, cap)
    reset = account.earliest_reset(now)
    if reset is not None or (cap is not None and account.streams_in_flight >= cap):
        retry_after = _retry_after(reset, now) if reset is not None else 1
        status = 429
    else:
        retry_after, status = None, 401 if account.status is AccountStatus.NEEDS_LOGIN else 503
    message = (
        f"The conversation carries a compacted history that only account {account.alias} can read, and it "
        f"cannot serve now: {phrase}."
    )
    if reset is not None:
        message += f" Retry after {_when(max(reset, now))}."
    return Refusal(
        NoAccountReason.BOUND_UNAVAILABLE,
        status,
        "compaction_account_unavailable",
        message,
        accounts=(account.alias,),
        resets_at=max(reset, now) if reset is not None else None,
        retry_after=retry_after,
    )


def refusal_for(
    accounts: Mapping[str, AccountState], model: str, tried: frozenset[str], now: float, cap: int | None
) -> Refusal:
    """Why no account of ``accounts`` can serve a request for ``model`` (none was found)."""
    failed: list[AccountState] = []  # usable, but already tried for this request
    full: list[AccountState] = []
    cooling: list[AccountState] = []
    not_included: list[AccountState] = []
    login: list[AccountState] = []
    out: list[AccountState] = []  # disabled or paused
    for account in accounts.values():
        status = account.status
        if status is AccountStatus.NEEDS_LOGIN:
            login.append(account)
        elif status is AccountStatus.DISABLED or status is AccountStatus.PAUSED:
            out.append(account)
        elif status is AccountStatus.COOLING and not account.usable(now):
            cooling.append(account)
        elif not account.usable(now, model):
            not_included.append(account)
        elif account.key in tried:
            failed.append(account)
        else:
            full.append(account)
    details = "; ".join(f"{a.alias}: {_state_phrase(a, model, now, cap)}" for a in accounts.values())
    if failed:
        return Refusal(
            NoAccountReason.ALL_TRIED,
            503,
            "no_account_left",
            f"Every account that could serve this request has failed it ({details}).",
            accounts=tuple(a.alias for a in failed),
        )
    if full:
        return Refusal(
            NoAccountReason.ALL_FULL,
            429,
            "too_many_concurrent_streams",
            f"Every account is at its cap of {cap} concurrent streams; retry shortly.",
            accounts=tuple(a.alias for a in full),
            retry_after=1,
        )
    if cooling:
        earliest = min(a.earliest_reset(now) or now for a in cooling)
        earliest = max(earliest, now)
        return Refusal(
            NoAccountReason.ALL_COOLING,
            429,
            "usage_limit_reached",
            f"Every ChatGPT account has reached its usage limit; the first one resets at {_when(earliest)} "
            f"({details}).",
            accounts=tuple(a.alias for a in cooling),
            resets_at=earliest,
            retry_after=_retry_after(earliest, now),
        )
    if not_included:
        return Refusal(
            NoAccountReason.MODEL_NOT_INCLUDED,
            429,
            "usage_not_included",
            f"No account's plan includes {model} ({details}).",
            accounts=tuple(a.alias for a in not_included),
        )
    if login and not out:
        return Refusal(
            NoAccountReason.NEEDS_LOGIN,
            401,
            "invalid_credentials",
            f"Every ChatGPT account needs a new login: {details}.",
            accounts=tuple(a.alias for a in login),
        )
    return Refusal(
        NoAccountReason.UNAVAILABLE,
        503,
        "no_account_available",
        f"No ChatGPT account can serve requests: {details}.",
        accounts=tuple(a.alias for a in login + out),
    )
