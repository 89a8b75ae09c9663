"""Account states and the health transitions the upstream layer applies (pool/accounts.py, pool/health.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexgate.pool import health
from codexgate.pool.accounts import AccountState, AccountStatus, UsageWindow, account_key, alias_from_email
from codexgate.storage import rate_limits

NOW = 1_800_000_000.0


def make(alias: str = "a", **fields: object) -> AccountState:
    account = AccountState(f"ws-{alias}", f"user-{alias}", alias, email=f"{alias}@example.com")
    for name, value in fields.items():
        setattr(account, name, value)
    return account


def status_of(account: AccountState) -> AccountStatus:
    """The account's status, read afresh (mypy would keep an earlier ``is`` narrowing across a transition)."""
    return account.status


# --- identity and aliases -------------------------------------------------------------------------


def test_identity_is_workspace_account_and_user_not_email() -> None:
    one = AccountState("ws-1", "user-1", "x", email="same@example.com")
    other_workspace = AccountState("ws-2", "user-1", "y", email="same@example.com")
    again = AccountState("ws-1", "user-1", "z", email="changed@example.com")
    assert one.key == account_key("ws-1", "user-1") == again.key
    assert one.key != other_workspace.key


def test_alias_is_the_email_local_part_made_unique_and_safe() -> None:
    assert alias_from_email("Alice.Smith@example.com") == "alice.smith"
    assert alias_from_email("alice@example.com", taken={"alice"}) == "alice-2"
    assert alias_from_email("alice@example.com", taken={"alice", "alice-2"}) == "alice-3"
    assert alias_from_email("bob+work test@example.com") == "bob-work-test"
    assert alias_from_email(None) == "account"
    assert alias_from_email("@example.com", taken={"account"}) == "account-2"


# --- used % and usability ---------------------------------------------------------------------------


def test_used_percent_is_the_highest_window_and_zero_without_data() -> None:
    account = make()
    assert account.used_percent(NOW) == 0.0
    account.primary = UsageWindow(40.0, NOW + 100)
    account.secondary = UsageWindow(70.0, NOW + 1000)
    assert account.used_percent(NOW) == 70.0
    assert account.used_percent() == 70.0
    account.secondary = UsageWindow(10.0, NOW + 1000)  # replacing a window refreshes the cached figure
    assert account.used_percent(NOW) == 40.0


def test_a_stale_window_counts_as_zero() -> None:
    account = make(primary=UsageWindow(100.0, NOW + 60), secondary=UsageWindow(30.0, NOW + 3600))
    assert account.used_percent(NOW) == 100.0
    assert account.used_percent(NOW + 59.9) == 100.0
    assert account.used_percent(NOW + 60) == 30.0  # the primary window reset
    assert account.used_percent(NOW + 3600) == 0.0
    assert account.usable(NOW + 3600)


windows = st.none() | st.builds(
    UsageWindow,
    used_percent=st.floats(0, 100, allow_nan=False),
    reset_at=st.none() | st.floats(NOW - 100, NOW + 100, allow_nan=False),
)


def naive_used(account: AccountState, now: float) -> float:
    best = 0.0
    for window in (account.primary, account.secondary):
        if window is not None and (window.reset_at is None or window.reset_at > now):
            best = max(best, window.used_percent)
    return best


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(NOW - 150, NOW + 150, allow_nan=False), st.none() | st.tuples(windows, windows)),
        max_size=30,
    )
)
def test_cached_used_percent_always_matches_the_windows(
    steps: list[tuple[float, tuple[UsageWindow | None, UsageWindow | None] | None]],
) -> None:
    account = make()
    for now, replacement in steps:
        if replacement is not None:
            account.primary, account.secondary = replacement
        assert account.used_percent(now) == naive_used(account, now)


def test_usable_by_state() -> None:
    assert make().usable(NOW)
    for status in (AccountStatus.NEEDS_LOGIN, AccountStatus.DISABLED, AccountStatus.PAUSED):
        assert not make(status=status).usable(NOW)
    cooling = make(status=AccountStatus.COOLING, cooling_until=NOW + 10)
    assert not cooling.usable(NOW) and not cooling.usable(NOW + 9.99)
    assert cooling.usable(NOW + 10) and cooling.probing(NOW + 10)
    cooling.probe_in_flight = True
    assert not cooling.usable(NOW + 10)


def test_a_transient_backoff_does_not_make_an_account_unusable() -> None:
    account = make()
    health.transient_failure(account, NOW)
    assert account.in_backoff(NOW) and account.usable(NOW)


def test_model_disabled_only_for_that_model_and_only_for_a_while() -> None:
    account = make()
    health.usage_not_included(account, "gpt-5-pro", NOW)
    assert not account.usable(NOW, "gpt-5-pro")
    assert account.usable(NOW, "gpt-5") and account.usable(NOW)
    assert account.usable(NOW + health.MODEL_RECHECK_SECONDS, "gpt-5-pro")


def test_counters_start_over_each_day() -> None:
    account = make()
    account.count_usage("2026-12-01", requests=2, tokens=100)
    account.count_usage("2026-12-01", tokens=50)
    assert (account.requests_today, account.tokens_today) == (2, 150)
    account.count_usage("2026-12-02", requests=1)
    assert (account.requests_today, account.tokens_today, account.usage_day) == (1, 0, "2026-12-02")


# --- the dict form ----------------------------------------------------------------------------------


def test_dict_form_is_json_holds_no_token_and_restores_the_lasting_state() -> None:
    account = make("alice", plan="pro", status=AccountStatus.COOLING, cooling_until=NOW + 300)
    account.primary = UsageWindow(99.5, NOW + 300, 300)
    account.secondary = UsageWindow(20.0, None, 10080)
    health.usage_not_included(account, "gpt-5-pro", NOW)
    account.count_usage("2026-12-01", requests=3, tokens=1234)
    health.begin_stream(account, probe=False)
    health.transient_failure(account, NOW)
    data = json.loads(json.dumps(account.to_dict()))
    assert not [key for key in data if "token" in key and key != "tokens_today"]
    assert data["state"] == "cooling" and data["cooling_until"] == NOW + 300
    assert data["alias"] == "alice" and data["email"] == "alice@example.com"
    restored = AccountState.from_dict(data)
    for name in ("key", "alias", "email", "plan", "status", "cooling_until", "disabled_models", "primary"):
        assert getattr(restored, name) == getattr(account, name), name
    assert (restored.requests_today, restored.tokens_today, restored.last_error) == (3, 1234, account.last_error)
    # Runtime state starts afresh after a restart.
    assert restored.streams_in_flight == 0 and restored.backoff_until is None and not restored.probe_in_flight
    assert restored.used_percent(NOW) == 99.5


def test_from_dict_tolerates_unknown_state_and_missing_fields() -> None:
    restored = AccountState.from_dict({"chatgpt_account_id": "ws", "user_id": "u", "state": "mystery"})
    assert restored.status is AccountStatus.ACTIVE and restored.alias == "account" and restored.primary is None


# --- health transitions -----------------------------------------------------------------------------


def test_usage_limit_cools_until_the_reset_then_allows_exactly_one_probe() -> None:
    account = make()
    health.usage_limit(account, NOW + 600, NOW)
    assert account.status is AccountStatus.COOLING and not account.usable(NOW + 599)
    assert account.usable(NOW + 600) and account.probing(NOW + 600)
    health.begin_stream(account, probe=True)
    assert not account.usable(NOW + 601)  # a second concurrent request waits for the probe
    health.success(account)
    assert status_of(account) is AccountStatus.ACTIVE and account.cooling_until is None
    health.end_stream(account)
    assert account.usable(NOW + 601) and not account.probing(NOW + 601)


def test_a_probe_that_hits_the_limit_again_cools_again() -> None:
    account = make()
    health.usage_limit(account, NOW + 60, NOW)
    health.begin_stream(account, probe=True)
    health.usage_limit(account, NOW + 3600, NOW + 61)
    health.end_stream(account)
    assert not account.usable(NOW + 62) and account.usable(NOW + 3600)


def test_a_probe_that_ends_without_an_outcome_lets_the_next_request_probe() -> None:
    account = make()
    health.usage_limit(account, NOW + 60, NOW)
    health.begin_stream(account, probe=True)
    health.end_stream(account)  # e.g. the client went away before the first byte
    assert account.usable(NOW + 61) and account.probing(NOW + 61)


def test_usage_limit_without_a_reset_time_cools_briefly() -> None:
    account = make()
    health.usage_limit(account, None, NOW)
    assert account.cooling_until == NOW + health.DEFAULT_COOLDOWN_SECONDS
    health.usage_limit(account, NOW - 5, NOW)  # a reset time already past is no reset time
    assert account.cooling_until == NOW + health.DEFAULT_COOLDOWN_SECONDS


def test_unauthorized_after_refresh_needs_login_until_credentials_are_renewed() -> None:
    account = make()
    health.unauthorized_after_refresh(account, NOW)
    assert account.status is AccountStatus.NEEDS_LOGIN and not account.usable(NOW)
    assert "login" in (account.last_error or "")
    health.credentials_renewed(account)
    assert status_of(account) is AccountStatus.ACTIVE and account.usable(NOW)


@pytest.mark.parametrize(
    "body",
    ['{"detail": "Your OpenAI account has been deactivated."}', '{"error": {"code": "account_deactivated"}}'],
)
def test_a_403_saying_deactivated_disables(body: str) -> None:
    account = make()
    health.forbidden(account, body, NOW)
    assert account.status is AccountStatus.DISABLED and not account.usable(NOW)
    assert account.disabled_reason


@pytest.mark.parametrize("body", ['{"detail": "Forbidden"}', "<html>cloudflare</html>", ""])
def test_any_other_403_is_transient(body: str) -> None:
    account = make()
    health.forbidden(account, body, NOW)
    assert account.status is AccountStatus.ACTIVE and account.usable(NOW)
    assert account.in_backoff(NOW) and not account.in_backoff(NOW + 1)


def test_transient_backoff_doubles_is_capped_in_seconds_and_success_clears_it() -> None:
    account = make()
    seconds = [health.transient_failure(account, NOW) for _ in range(10)]
    assert seconds[:6] == [1, 2, 4, 8, 16, 30]
    assert max(seconds) == health.BACKOFF_CAP_SECONDS <= 60
    assert account.backoff_until == NOW + 30
    health.success(account)
    assert not account.in_backoff(NOW) and account.transient_failures == 0
    assert health.transient_failure(account, NOW) == 1


def test_pause_and_resume_keep_a_cooldown() -> None:
    account = make()
    health.usage_limit(account, NOW + 100, NOW)
    health.pause(account)
    assert account.status is AccountStatus.PAUSED and not account.usable(NOW + 200)
    health.resume(account)
    assert status_of(account) is AccountStatus.COOLING
    assert not account.usable(NOW + 50) and account.usable(NOW + 200)
    plain = make()
    health.pause(plain)
    health.resume(plain)
    assert plain.status is AccountStatus.ACTIVE


def test_resume_brings_back_a_disabled_account() -> None:
    account = make()
    health.forbidden(account, "account deactivated", NOW)
    health.resume(account)
    assert account.usable(NOW) and account.disabled_reason is None


def test_windows_update_from_headers_and_events() -> None:
    account = make()
    snapshot = rate_limits.from_headers(
        {
            "x-codex-primary-used-percent": "42.5",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-after-seconds": "120",
            "x-codex-secondary-used-percent": "12",
            "x-codex-secondary-reset-at": str(int(NOW + 86400)),
            "x-codex-plan-type": "plus",
        }
    )
    assert snapshot is not None
    health.update_windows(account, snapshot, NOW)
    assert account.primary == UsageWindow(42.5, NOW + 120, 300)
    assert account.secondary is not None and account.secondary.reset_at == NOW + 86400
    assert account.plan == "plus" and account.used_percent(NOW) == 42.5
    assert account.used_percent(NOW + 120) == 12.0  # the primary window's reset passed

    event = {"type": "codex.rate_limits", "rate_limits": {"secondary": {"used_percent": 88, "reset_at": NOW + 50}}}
    from_event = rate_limits.from_event(event)
    assert from_event is not None
    health.update_windows(account, from_event, NOW + 10)
    assert account.primary == UsageWindow(42.5, NOW + 120, 300)  # missing from the event: kept
    assert account.used_percent(NOW + 10) == 88.0
    assert account.used_percent(NOW + 50) == 42.5
