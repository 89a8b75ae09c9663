"""The accounts page's row for a single-account install: identity from the credentials, windows from
the latest rate limits; no row while nobody is signed in; never a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codexgate.console.accounts_page import accounts_body
from codexgate.console.single_account import single_account_provider


@dataclass
class FakeCredentials:
    account_id: str | None
    email: str | None
    plan_type: str | None
    access_token: str = "secret-access-token"


def test_no_row_while_nobody_is_signed_in() -> None:
    assert single_account_provider(lambda: None, lambda: {"plan_type": "pro"})() == []


def test_the_row_carries_the_windows_and_the_reported_plan() -> None:
    limits: dict[str, Any] = {
        "plan_type": "pro",
        "primary": {"used_percent": 61.0, "window_minutes": 300, "reset_at": 2_000_000_000},
        "secondary": {"used_percent": 7.0, "window_minutes": 10080, "reset_at": 2_000_500_000},
    }
    credentials = FakeCredentials("acct_9", "ops@example.com", "plus")
    rows = single_account_provider(lambda: credentials, lambda: limits)()
    assert len(rows) == 1
    row = rows[0]
    assert (row["key"], row["alias"], row["plan"], row["state"]) == ("acct_9", "ops@example.com", "pro", "active")
    assert row["primary"]["used_percent"] == 61.0 and row["secondary"]["used_percent"] == 7.0
    assert "secret-access-token" not in repr(rows)
    markup = accounts_body(rows, base="/dashboard", csrf_token="t", now=1_900_000_000, can_pause=False)
    assert "61%" in markup and "7%" in markup and "ops@example.com" in markup


def test_before_any_traffic_the_plan_comes_from_the_credentials() -> None:
    rows = single_account_provider(lambda: FakeCredentials("acct_9", None, "plus"), lambda: None)()
    assert rows[0]["alias"] == "acct_9" and rows[0]["plan"] == "plus"
    assert rows[0]["primary"] is None and rows[0]["secondary"] is None
    assert "no data yet" in accounts_body(rows, base="", csrf_token="t", now=0.0, can_pause=False)
