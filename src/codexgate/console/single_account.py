"""The accounts page's rows for a single-account install (no pool): the signed-in account's identity
from its credentials and its windows from the latest rate limits the backend reported.

Nothing secret leaves here: only the account id, email and plan of the credentials, never a token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from codexgate.console.access import AccountsProvider

__all__ = ["single_account_provider"]


class _Identity(Protocol):
    """What the rows read of :class:`codexgate.auth.credentials.Credentials`."""

    @property
    def account_id(self) -> str | None: ...

    @property
    def email(self) -> str | None: ...

    @property
    def plan_type(self) -> str | None: ...


def single_account_provider(
    credentials: Callable[[], _Identity | None], rate_limits: Callable[[], Mapping[str, Any] | None]
) -> AccountsProvider:
    """An accounts provider with one row (none while nobody is signed in).

    ``credentials`` returns the current credentials without refreshing them (``TokenManager.peek``);
    ``rate_limits`` the latest snapshot (``Gateway.latest_rate_limits``: ``primary``/``secondary``
    windows and ``plan_type``).
    """

    def accounts() -> list[dict[str, Any]]:
        current = credentials()
        if current is None:
            return []
        limits = rate_limits() or {}
        name = current.email or current.account_id or "signed-in account"
        return [
            {
                "key": current.account_id or name,
                "alias": name,
                "email": current.email if current.email != name else None,
                "plan": limits.get("plan_type") or current.plan_type,
                "state": "active",
                "primary": limits.get("primary"),
                "secondary": limits.get("secondary"),
            }
        ]

    return accounts
