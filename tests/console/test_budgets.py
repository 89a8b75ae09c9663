"""Budgets: calendar windows, the sliding RPM window, model globs, expiry, persistence, the keys file."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codexgate.storage.api_keys import KeyInfo, KeyStore, KeyStoreError
from codexgate.storage.budgets import NO_LIMITS, BudgetTracker, KeyLimits, window_bounds


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def key(limits: KeyLimits, name: str = "team") -> KeyInfo:
    return KeyInfo(id="key_" + name, name=name, created_at=0.0, limits=limits)


def test_calendar_windows_are_utc_day_monday_week_and_month() -> None:
    now = ts("2026-12-02T15:30:00")  # a Wednesday
    assert window_bounds("day", now) == (ts("2026-12-02T00:00:00"), ts("2026-12-03T00:00:00"))
    assert window_bounds("week", now) == (ts("2026-11-30T00:00:00"), ts("2026-12-07T00:00:00"))
    assert window_bounds("month", now) == (ts("2026-12-01T00:00:00"), ts("2027-01-01T00:00:00"))
    assert window_bounds("month", ts("2028-02-10T00:00:00"))[1] == ts("2028-03-01T00:00:00")  # leap year


def test_day_budget_refuses_with_retry_after_at_midnight_and_resets_next_day() -> None:
    tracker = BudgetTracker()
    info = key(KeyLimits(tokens_per_day=1000))
    now = ts("2026-12-02T23:00:00")
    assert tracker.check(info, "gpt-5", now) is None
    tracker.record(info, 999, now)
    assert tracker.check(info, "gpt-5", now) is None  # under budget: admitted
    tracker.record(info, 5, now)  # a request that crosses the budget is counted in full
    error = tracker.check(info, "gpt-5", now)
    assert error is not None
    assert (error.status_code, error.code, error.type) == (429, "budget_exceeded", "rate_limit_error")
    assert error.headers["Retry-After"] == "3600"
    assert "tokens_per_day" in error.message and "1004 of 1000" in error.message
    assert error.extra["limit"] == "tokens_per_day"
    assert tracker.check(info, "gpt-5", ts("2026-12-03T00:00:01")) is None


def test_week_and_month_budgets_span_days() -> None:
    tracker = BudgetTracker()
    info = key(KeyLimits(tokens_per_week=100, tokens_per_month=140))
    tracker.record(info, 60, ts("2026-11-30T10:00:00"))  # Monday
    tracker.record(info, 50, ts("2026-12-01T10:00:00"))
    error = tracker.check(info, None, ts("2026-12-06T23:00:00"))  # Sunday, same week
    assert error is not None and error.extra["limit"] == "tokens_per_week"
    # Next Monday: a new week; the month (December) has only the 50 from the 1st.
    assert tracker.check(info, None, ts("2026-12-07T00:00:00")) is None
    tracker.record(info, 95, ts("2026-12-08T00:00:00"))
    error = tracker.check(info, None, ts("2026-12-08T01:00:00"))
    assert error is not None and error.extra["limit"] == "tokens_per_month"
    assert int(error.headers["Retry-After"]) == int(ts("2027-01-01T00:00:00") - ts("2026-12-08T01:00:00"))


def test_requests_per_minute_is_a_sliding_window() -> None:
    tracker = BudgetTracker()
    info = key(KeyLimits(requests_per_minute=3))
    start = 1_000_000.0
    for offset in (0.0, 10.0, 20.0):
        assert tracker.check(info, "m", start + offset) is None
    error = tracker.check(info, "m", start + 30.0)
    assert error is not None and error.extra["limit"] == "requests_per_minute"
    assert error.headers["Retry-After"] == "30"  # the first request leaves the window at start + 60
    assert tracker.check(info, "m", start + 60.5) is None  # one slot freed, not a fixed-minute reset
    assert tracker.check(info, "m", start + 61.0) is not None
    assert tracker.usage(info.id, start + 61.0).requests_last_minute == 3


def test_allowed_models_are_globs_over_the_requested_name() -> None:
    tracker = BudgetTracker()
    info = key(KeyLimits(allowed_models=("gpt-5*", "codex-mini")))
    assert tracker.check(info, "gpt-5.1-codex", 0.0) is None
    assert tracker.check(info, "codex-mini", 0.0) is None
    error = tracker.check(info, "o3", 0.0)
    assert error is not None
    assert (error.status_code, error.code, error.param) == (403, "model_not_allowed", "model")
    assert "'o3'" in error.message
    assert tracker.check(info, "GPT-5", 0.0) is not None  # case-sensitive


def test_expired_key_is_a_401() -> None:
    tracker = BudgetTracker()
    info = key(KeyLimits(expires_at=ts("2026-12-01T00:00:00")))
    assert tracker.check(info, "m", ts("2026-11-30T23:59:59")) is None
    error = tracker.check(info, "m", ts("2026-12-01T00:00:00"))
    assert error is not None and (error.status_code, error.code) == (401, "key_expired")


def test_allowed_accounts() -> None:
    assert BudgetTracker.account_allowed(key(KeyLimits(allowed_accounts=("alice",))), "alice")
    assert not BudgetTracker.account_allowed(key(KeyLimits(allowed_accounts=("alice",))), "bob")
    assert BudgetTracker.account_allowed(key(NO_LIMITS), "bob")


def test_counters_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"
    info = key(KeyLimits(tokens_per_day=100))
    now = time.time()
    first = BudgetTracker(path, flush_interval=60)
    first.open()
    first.record(info, 70, now)
    first.record(info, 40, now)
    first.close()
    assert path.stat().st_mode & 0o777 == 0o600
    second = BudgetTracker(path)
    second.open()
    try:
        assert second.usage(info.id, now).tokens["day"] == 110
        error = second.check(info, "m", now)
        assert error is not None and error.code == "budget_exceeded"
    finally:
        second.close()


def test_background_flush_saves_without_close(tmp_path: Path) -> None:
    path = tmp_path / "budgets.db"
    tracker = BudgetTracker(path, flush_interval=0.05)
    tracker.open()
    try:
        tracker.record("key_x", 12, time.time())
        deadline = time.monotonic() + 5
        reader = BudgetTracker(path)
        while time.monotonic() < deadline:
            reader = BudgetTracker(path)
            reader.open()
            found = reader.usage("key_x", time.time()).tokens["day"]
            reader.close()
            if found == 12:
                break
            time.sleep(0.05)
        assert found == 12
    finally:
        tracker.close()


def test_keys_file_keeps_limits_and_old_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = {"version": 1, "keys": [{"id": "key_a", "name": "a", "created_at": 1.0, "sha256": "00" * 32}]}
    path.write_text(json.dumps(old))
    store = KeyStore(path)
    [info] = store.list()
    assert info.limits is NO_LIMITS
    limits = KeyLimits(tokens_per_day=10, allowed_models=("gpt-*",), expires_at=2e9)
    updated = store.update("a", limits)
    assert updated.limits == limits
    document = json.loads(path.read_text())
    assert document["keys"][0]["limits"] == {"tokens_per_day": 10, "expires_at": 2e9, "allowed_models": ["gpt-*"]}
    assert KeyStore(path).list()[0].limits == limits
    secret = store.create("b", KeyLimits(requests_per_minute=5))
    verified = store.verify(secret)
    assert verified is not None and verified.limits.requests_per_minute == 5
    assert store.update("b", KeyLimits()).limits is NO_LIMITS
    with pytest.raises(KeyStoreError):
        store.update("nobody", limits)


def test_bad_limits_in_the_keys_file_fail_closed(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry = {"id": "key_a", "name": "a", "created_at": 1.0, "sha256": "00" * 32, "limits": {"tokens_per_day": "x"}}
    path.write_text(json.dumps({"version": 1, "keys": [entry]}))
    store = KeyStore(path)
    assert store.has_keys()
    with pytest.raises(KeyStoreError):
        store.list()


def test_limits_changed_in_the_file_reach_a_running_store_within_a_second(tmp_path: Path) -> None:
    server_store = KeyStore(tmp_path / "keys.json")
    secret = server_store.create("live")
    tracker = BudgetTracker()
    info = server_store.verify(secret)
    assert info is not None and tracker.check(info, "o3", time.time()) is None
    KeyStore(tmp_path / "keys.json").update("live", KeyLimits(allowed_models=("gpt-*",)))  # another process: the CLI
    deadline = time.monotonic() + 1.0
    error = None
    while time.monotonic() < deadline and error is None:
        info = server_store.verify(secret)
        assert info is not None
        error = tracker.check(info, "o3", time.time())
        time.sleep(0.02)
    assert error is not None and error.code == "model_not_allowed"
