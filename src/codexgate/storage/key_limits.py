"""What a key may spend and use: :class:`KeyLimits`, kept in the keys file with the key (see ``budgets.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["NO_LIMITS", "KeyLimits", "parse_expiry", "parse_patterns"]


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What a key may spend; ``None`` (or an empty tuple) means no limit of that kind."""

    tokens_per_day: int | None = None
    tokens_per_week: int | None = None
    tokens_per_month: int | None = None
    requests_per_minute: int | None = None
    allowed_models: tuple[str, ...] = ()
    allowed_accounts: tuple[str, ...] = ()
    expires_at: float | None = None

    def token_budget(self, window: str) -> int | None:
        value: int | None = getattr(self, f"tokens_per_{window}")
        return value

    @property
    def empty(self) -> bool:
        return self == NO_LIMITS

    def to_dict(self) -> dict[str, Any]:
        """The keys-file form: only the limits that are set."""
        out: dict[str, Any] = {}
        for name in ("tokens_per_day", "tokens_per_week", "tokens_per_month", "requests_per_minute", "expires_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.allowed_models:
            out["allowed_models"] = list(self.allowed_models)
        if self.allowed_accounts:
            out["allowed_accounts"] = list(self.allowed_accounts)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyLimits:
        """Read the keys-file form; a wrong type raises ``ValueError`` (the store then fails closed)."""

        def count(name: str) -> int | None:
            value = data.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            return value

        def patterns(name: str) -> tuple[str, ...]:
            value = data.get(name) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
            return tuple(value)

        expires = data.get("expires_at")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
            raise ValueError("expires_at must be a unix time")
        return cls(
            tokens_per_day=count("tokens_per_day"),
            tokens_per_week=count("tokens_per_week"),
            tokens_per_month=count("tokens_per_month"),
            requests_per_minute=count("requests_per_minute"),
            allowed_models=patterns("allowed_models"),
            allowed_accounts=patterns("allowed_accounts"),
            expires_at=None if expires is None else float(expires),
        )


#: the limits of a key without any (shared, so the check can skip it by identity)
NO_LIMITS: Final = KeyLimits()


def parse_expiry(text: str) -> float:
    """A unix time from ``YYYY-MM-DD`` (00:00 UTC that day) or an ISO date-time (UTC unless it says otherwise)."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_patterns(text: str) -> tuple[str, ...]:
    """Comma- or space-separated patterns (model globs, account aliases) as a tuple, blanks dropped."""
    return tuple(part for part in text.replace(",", " ").split() if part)
