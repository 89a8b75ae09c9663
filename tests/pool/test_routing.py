"""The routing policy (pool/routing.py) and the router's memory (pool/router.py), scenario by scenario."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexgate.pool import health
from codexgate.pool.accounts import AccountState, AccountStatus, UsageWindow
from codexgate.pool.router import Router
from codexgate.pool.routing import NoAccountReason, RouteRequest, RoutingPolicy, Strategy, _least_used, choose
from codexgate.pool.sticky import content_key, scoped_session_key

NOW = 1_800_000_000.0
MODEL = "gpt-5"
DAY = "2027-01-15"


def pool(*aliases: str) -> dict[str, AccountState]:
    accounts = [AccountState(f"ws-{a}", f"user-{a}", a, email=f"{a}.person@example.com") for a in aliases]
    return {account.key: account for account in accounts}


def by_alias(accounts: dict[str, AccountState], alias: str) -> AccountState:
    return next(account for account in accounts.values() if account.alias == alias)


def serve(router: Router, accounts: dict[str, AccountState], now: float, **kwargs: object) -> AccountState:
    """Route one request and run it to a successful end, as the upstream layer would."""
    decision = router.route(accounts, model=MODEL, now=now, **kwargs)  # type: ignore[arg-type]
    assert decision.account is not None, decision.refusal
    health.begin_stream(decision.account, decision.probe, DAY)
    health.success(decision.account)
    health.end_stream(decision.account)
    return decision.account


# --- the scenarios ----------------------------------------------------------------------------


def test_a_hits_its_limit_b_gets_everything_until_the_reset_then_a_gets_exactly_one_probe() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router(RoutingPolicy(Strategy.LEAST_USED))
    reset = NOW + 300
    # A answers usage_limit_reached to the first request sent to it; the same request fails over to B.
    first = router.route(accounts, model=MODEL, now=NOW)
    assert first.account is a
    health.usage_limit(a, reset, NOW)
    retry = router.route(accounts, model=MODEL, now=NOW, tried=frozenset({a.key}))
    assert retry.account is b
    # Until the reset, every request (new sessions included) goes to B.
    for n in range(50):
        assert serve(router, accounts, NOW + n * 5, session_key=f"s{n}") is b
    # B is now the busier one and A's windows are stale: least_used would send everything to A.
    health.update_windows(b, {"primary": {"used_percent": 60, "reset_at": reset + 9000}}, NOW + 250)
    a.primary = UsageWindow(100.0, reset)
    # After the reset, the first request probes A; while the probe is open nothing else goes to A.
    probe = router.route(accounts, model=MODEL, now=reset + 1)
    assert probe.account is a and probe.probe
    health.begin_stream(a, probe=True)
    during = [router.route(accounts, model=MODEL, now=reset + 2).account for _ in range(20)]
    assert all(account is b for account in during)
    health.success(a)
    health.end_stream(a)
    assert a.status is AccountStatus.ACTIVE
    after = router.route(accounts, model=MODEL, now=reset + 3)
    assert after.account is a and not after.probe


def test_200_requests_of_one_session_stay_on_one_account_while_two_other_sessions_spread() -> None:
    accounts = pool("a", "b", "c")
    router = Router()  # sticky
    used_by: dict[str, Counter[str]] = {"s1": Counter(), "s2": Counter(), "s3": Counter()}
    for n in range(200):
        now = NOW + n
        chosen = serve(router, accounts, now, session_key="s1")
        used_by["s1"][chosen.alias] += 1
        # Its account gets busier and busier; the session stays anyway (its prompt cache lives there).
        health.update_windows(chosen, {"primary": {"used_percent": min(n, 90), "reset_at": NOW + 9000}}, now)
        if n % 10 == 0:
            for session in ("s2", "s3"):
                used_by[session][serve(router, accounts, now, session_key=session).alias] += 1
    assert len(used_by["s1"]) == 1 and sum(used_by["s1"].values()) == 200
    assert len(used_by["s2"]) == 1 and len(used_by["s3"]) == 1
    homes = {next(iter(counter)) for counter in used_by.values()}
    assert len(homes) == 3  # the three sessions live on three different accounts


def test_encrypted_reasoning_goes_to_its_account_and_is_dropped_when_that_account_cools() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router(RoutingPolicy(Strategy.LEAST_USED))
    reasoning = content_key("gAAAA-encrypted-reasoning-from-a")
    router.remember_content([reasoning], a.key, NOW)
    a.primary = UsageWindow(80.0, NOW + 3600)  # least_used alone would pick B
    to_a = router.route(accounts, model=MODEL, now=NOW, reasoning_keys=[reasoning])
    assert to_a.account is a and not to_a.drop_reasoning_from
    health.usage_limit(a, NOW + 600, NOW)
    to_b = router.route(accounts, model=MODEL, now=NOW + 1, reasoning_keys=[reasoning])
    assert to_b.account is b and to_b.drop_reasoning_from == frozenset({a.key})


def test_compaction_bound_to_a_cooling_account_fails_clearly_naming_it_and_its_reset() -> None:
    accounts = pool("a", "b")
    a = by_alias(accounts, "a")
    router = Router()
    compaction = content_key("compacted-history-from-a")
    router.remember_content([compaction], a.key, NOW)
    assert router.route(accounts, model=MODEL, now=NOW, compaction_keys=[compaction]).account is a
    health.usage_limit(a, NOW + 1800, NOW)
    decision = router.route(accounts, model=MODEL, now=NOW + 600, compaction_keys=[compaction])
    assert decision.account is None and decision.refusal is not None
    refusal = decision.refusal
    assert refusal.reason is NoAccountReason.BOUND_UNAVAILABLE and refusal.status == 429
    assert refusal.accounts == ("a",) and refusal.retry_after == 1200
    assert "account a" in refusal.message and "2027-01-15" in refusal.message  # NOW + 1800 as a date
    error = refusal.to_error()
    assert error.status_code == 429 and error.headers["retry-after"] == "1200"
    assert error.extra["resets_at"] == int(NOW + 1800)
    assert "a.person@example.com" not in error.message  # only the alias is shown


def test_compaction_bound_to_an_account_that_left_the_pool_fails_with_409() -> None:
    accounts = pool("a", "b")
    router = Router()
    compaction = content_key("compacted")
    router.remember_content([compaction], "ws-gone:user-gone", NOW)
    decision = router.route(accounts, model=MODEL, now=NOW, compaction_keys=[compaction])
    assert decision.refusal is not None and decision.refusal.status == 409


def test_compaction_wins_over_reasoning_from_another_account() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router()
    router.remember_content([content_key("c")], b.key, NOW)
    router.remember_content([content_key("r")], a.key, NOW)
    decision = router.route(
        accounts, model=MODEL, now=NOW, reasoning_keys=[content_key("r")], compaction_keys=[content_key("c")]
    )
    assert decision.account is b and decision.drop_reasoning_from == frozenset({a.key})


def test_all_cooling_gives_429_with_the_earliest_reset() -> None:
    accounts = pool("a", "b", "c")
    for alias, seconds in (("a", 900), ("b", 300), ("c", 3600)):
        health.usage_limit(by_alias(accounts, alias), NOW + seconds, NOW)
    decision = choose(accounts, RouteRequest(MODEL), NOW + 100, RoutingPolicy())
    refusal = decision.refusal
    assert decision.account is None and refusal is not None
    assert refusal.reason is NoAccountReason.ALL_COOLING and refusal.status == 429
    assert refusal.resets_at == NOW + 300 and refusal.retry_after == 200
    error = refusal.to_error()
    assert error.code == "usage_limit_reached" and error.headers == {"retry-after": "200"}
    assert error.extra == {"resets_at": int(NOW + 300), "resets_in_seconds": 200}
    assert choose(accounts, RouteRequest(MODEL), NOW + 300, RoutingPolicy()).account is by_alias(accounts, "b")


def test_one_500_does_not_bench_the_only_account() -> None:
    accounts = pool("solo")
    solo = by_alias(accounts, "solo")
    router = Router()
    for n in range(12):  # each failure doubles the backoff, capped; the account keeps serving
        health.transient_failure(solo, NOW + n)
        decision = router.route(accounts, model=MODEL, now=NOW + n, session_key="s")
        assert decision.account is solo and not decision.passthrough  # by the backoff rule itself
    for strategy in Strategy:
        policy = RoutingPolicy(strategy, one_account_passthrough=False)
        assert choose(accounts, RouteRequest(MODEL, "s"), NOW, policy).account is solo


def test_a_backed_off_account_is_avoided_while_another_can_serve_and_used_when_none_can() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    health.transient_failure(a, NOW)
    for strategy in Strategy:
        assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy(strategy)).account is b
    health.transient_failure(b, NOW)
    health.transient_failure(b, NOW)
    for strategy in Strategy:
        assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy(strategy)).account is not None
    health.usage_limit(b, NOW + 600, NOW)
    assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).account is a


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("backing_off", ["a", "b", "c"])
def test_an_account_in_backoff_is_never_preferred_wherever_it_stands(strategy: Strategy, backing_off: str) -> None:
    accounts = pool("a", "b", "c")
    for account in accounts.values():
        account.primary = UsageWindow(50.0, NOW + 100)
    off = by_alias(accounts, backing_off)
    off.primary = UsageWindow(0.0, NOW + 100)  # the least used, but backing off
    health.transient_failure(off, NOW)
    router = Router(RoutingPolicy(strategy))
    chosen = [serve(router, accounts, NOW + 0.5, session_key=f"s{n}").alias for n in range(6)]
    assert backing_off not in chosen


# --- sticky sessions ---------------------------------------------------------------------------------


def test_a_session_whose_account_backs_off_goes_elsewhere_for_now_and_comes_back() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router()
    assert serve(router, accounts, NOW, session_key="s") is a
    health.transient_failure(a, NOW)
    retry = router.route(accounts, model=MODEL, now=NOW, session_key="s", tried=frozenset({a.key}))
    assert retry.account is b and not retry.bind_session
    assert router.route(accounts, model=MODEL, now=NOW + 0.5, session_key="s").account is b
    assert router.route(accounts, model=MODEL, now=NOW + 2, session_key="s").account is a


def test_a_session_moves_for_good_when_its_account_cools() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router()
    assert serve(router, accounts, NOW, session_key="s") is a
    health.usage_limit(a, NOW + 60, NOW)
    assert serve(router, accounts, NOW + 1, session_key="s") is b
    assert router.route(accounts, model=MODEL, now=NOW + 120, session_key="s").account is b


def test_sessions_are_scoped_per_api_key() -> None:
    accounts = pool("a", "b")
    router = Router()
    first = serve(router, accounts, NOW, session_key=scoped_session_key("key-1", "same-id"))
    second = serve(router, accounts, NOW, session_key=scoped_session_key("key-2", "same-id"))
    assert first is not second  # not the same session: the second is new, so it goes to the less used


def test_an_account_removed_from_the_pool_loses_its_sessions() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router()
    assert serve(router, accounts, NOW, session_key="s") is a
    del accounts[a.key]
    router.forget_account(a.key)
    assert serve(router, accounts, NOW + 1, session_key="s") is b
    assert router.sessions.get("s", NOW + 2) == b.key


def test_the_session_map_forgets_after_its_ttl() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    router = Router(session_ttl=60)
    assert serve(router, accounts, NOW, session_key="s") is a
    b.requests_today, a.requests_today = 0, 5
    assert router.route(accounts, model=MODEL, now=NOW + 59, session_key="s").account is a
    assert router.route(accounts, model=MODEL, now=NOW + 200, session_key="s").account is b


# --- the strategies ----------------------------------------------------------------------------------


def test_least_used_picks_the_lowest_of_the_highest_window_with_no_data_as_zero() -> None:
    accounts = pool("a", "b", "c")
    by_alias(accounts, "a").primary = UsageWindow(30.0, NOW + 100)
    by_alias(accounts, "b").secondary = UsageWindow(20.0, NOW + 100)
    by_alias(accounts, "b").primary = UsageWindow(5.0, NOW + 100)
    by_alias(accounts, "c").primary = UsageWindow(25.0, NOW + 100)
    least = RoutingPolicy(Strategy.LEAST_USED)
    assert choose(accounts, RouteRequest(MODEL), NOW, least).account is by_alias(accounts, "b")
    by_alias(accounts, "b").secondary = UsageWindow(40.0, NOW + 100)
    assert choose(accounts, RouteRequest(MODEL), NOW, least).account is by_alias(accounts, "c")
    fresh = AccountState("ws-d", "user-d", "d")
    accounts[fresh.key] = fresh
    assert choose(accounts, RouteRequest(MODEL), NOW, least).account is fresh
    # A stale 100 % never keeps an account out: once its reset passed it ranks as 0 %.
    fresh.primary = UsageWindow(100.0, NOW + 10)
    assert choose(accounts, RouteRequest(MODEL), NOW + 11, least).account is fresh


def test_round_robin_takes_turns_and_skips_accounts_that_cannot_serve() -> None:
    accounts = pool("a", "b", "c")
    router = Router(RoutingPolicy(Strategy.ROUND_ROBIN))
    order = [serve(router, accounts, NOW).alias for _ in range(6)]
    assert order == ["a", "b", "c", "a", "b", "c"]
    health.usage_limit(by_alias(accounts, "b"), NOW + 600, NOW)
    order = [serve(router, accounts, NOW).alias for _ in range(4)]
    assert "b" not in order and Counter(order) == {"a": 2, "c": 2}


def test_fill_first_moves_on_at_the_threshold() -> None:
    accounts = pool("a", "b", "c")
    a, b, c = (by_alias(accounts, x) for x in "abc")
    policy = RoutingPolicy(Strategy.FILL_FIRST)
    a.primary = UsageWindow(94.9, NOW + 100)
    assert choose(accounts, RouteRequest(MODEL), NOW, policy).account is a
    a.primary = UsageWindow(95.0, NOW + 100)
    assert choose(accounts, RouteRequest(MODEL), NOW, policy).account is b
    assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy(Strategy.FILL_FIRST, 96.0)).account is a
    b.primary = UsageWindow(99.0, NOW + 100)
    c.primary = UsageWindow(97.0, NOW + 100)
    assert choose(accounts, RouteRequest(MODEL), NOW, policy).account is a  # all full: the least used
    assert choose(accounts, RouteRequest(MODEL), NOW + 100, policy).account is a  # windows reset: back to a


# --- stream cap, states, tried --------------------------------------------------------------------------


def test_stream_cap_skips_a_full_account_and_refuses_with_429_when_all_are_full() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    policy = RoutingPolicy(Strategy.STICKY, account_max_streams=2)
    router = Router(policy)
    held: list[AccountState] = []
    for _ in range(4):
        decision = router.route(accounts, model=MODEL, now=NOW)
        assert decision.account is not None
        health.begin_stream(decision.account, decision.probe)
        held.append(decision.account)
    assert Counter(account.alias for account in held) == {"a": 2, "b": 2}
    full = router.route(accounts, model=MODEL, now=NOW)
    assert full.refusal is not None and full.refusal.reason is NoAccountReason.ALL_FULL
    error = full.refusal.to_error()
    assert error.status_code == 429 and error.headers == {"retry-after": "1"}
    health.end_stream(b)
    assert router.route(accounts, model=MODEL, now=NOW).account is b
    # Without a cap nothing is ever refused for being busy.
    a.streams_in_flight = b.streams_in_flight = 10_000
    assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).account is not None


def test_needs_login_and_disabled_name_the_accounts() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    health.unauthorized_after_refresh(a, NOW)
    health.unauthorized_after_refresh(b, NOW)
    refusal = choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.status == 401 and refusal.reason is NoAccountReason.NEEDS_LOGIN
    assert refusal.accounts == ("a", "b") and "codexgate login" in refusal.message
    health.forbidden(b, '{"detail": "account deactivated"}', NOW)
    refusal = choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.status == 503 and set(refusal.accounts) == {"a", "b"}
    assert "a: needs login" in refusal.message and "b: disabled" in refusal.message
    assert "example.com" not in refusal.message


def test_cooling_beats_needs_login_in_the_refusal_because_waiting_helps() -> None:
    accounts = pool("a", "b")
    health.unauthorized_after_refresh(by_alias(accounts, "a"), NOW)
    health.usage_limit(by_alias(accounts, "b"), NOW + 50, NOW)
    refusal = choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.status == 429 and refusal.retry_after == 50
    assert "a: needs login" in refusal.message


def test_paused_accounts_are_skipped() -> None:
    accounts = pool("a", "b")
    health.pause(by_alias(accounts, "a"))
    assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).account is by_alias(accounts, "b")
    health.pause(by_alias(accounts, "b"))
    refusal = choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.status == 503 and "paused" in refusal.message


def test_model_not_included_routes_that_model_elsewhere() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    health.usage_not_included(a, "gpt-5-pro", NOW)
    assert choose(accounts, RouteRequest("gpt-5-pro"), NOW, RoutingPolicy()).account is b
    assert choose(accounts, RouteRequest(MODEL), NOW, RoutingPolicy()).account is a
    health.usage_not_included(b, "gpt-5-pro", NOW)
    refusal = choose(accounts, RouteRequest("gpt-5-pro"), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.code == "usage_not_included"


def test_each_account_is_tried_at_most_once_per_request() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    assert choose(accounts, RouteRequest(MODEL, tried=frozenset({a.key})), NOW, RoutingPolicy()).account is b
    refusal = choose(accounts, RouteRequest(MODEL, tried=frozenset({a.key, b.key})), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.reason is NoAccountReason.ALL_TRIED


def test_an_empty_pool_asks_for_a_login() -> None:
    refusal = choose({}, RouteRequest(MODEL), NOW, RoutingPolicy()).refusal
    assert refusal is not None and refusal.status == 401 and "codexgate login" in refusal.message


# --- properties ----------------------------------------------------------------------------------------

account_states = st.fixed_dictionaries(
    {
        "status": st.sampled_from([AccountStatus.ACTIVE] * 4 + list(AccountStatus)),
        "cooling_until": st.none() | st.floats(NOW - 100, NOW + 100, allow_nan=False),
        "probe_in_flight": st.booleans(),
        "backoff_until": st.none() | st.floats(NOW - 10, NOW + 10, allow_nan=False),
        "streams_in_flight": st.integers(0, 3),
        "requests_today": st.integers(0, 3),
        "primary": st.none()
        | st.builds(
            UsageWindow,
            st.sampled_from([0.0, 10.0, 50.0, 100.0]),
            st.none() | st.floats(NOW - 50, NOW + 50, allow_nan=False),
        ),
        "secondary": st.none() | st.builds(UsageWindow, st.sampled_from([0.0, 20.0, 99.0])),
        "disabled_models": st.sampled_from([{}, {MODEL: NOW + 5}, {MODEL: NOW - 5}, {"other": NOW + 5}]),
    }
)


def build(states: list[dict[str, object]]) -> dict[str, AccountState]:
    accounts: dict[str, AccountState] = {}
    for n, fields in enumerate(states):
        account = AccountState(f"ws-{n}", f"user-{n}", f"acct{n}")
        for name, value in fields.items():
            setattr(account, name, dict(value) if isinstance(value, dict) else value)
        accounts[account.key] = account
    return accounts


@settings(max_examples=300, deadline=None)
@given(states=st.lists(account_states, min_size=1, max_size=6), cap=st.none() | st.integers(1, 3), data=st.data())
def test_the_inlined_least_used_loop_matches_the_account_methods(
    states: list[dict[str, object]], cap: int | None, data: st.DataObject
) -> None:
    accounts = build(states)
    tried = frozenset(data.draw(st.sets(st.sampled_from(list(accounts)))))
    request = RouteRequest(MODEL, tried=tried)
    candidates = [
        a
        for a in accounts.values()
        if a.key not in tried and a.usable(NOW, MODEL) and (cap is None or a.streams_in_flight < cap)
    ]
    expected = min(
        candidates,
        key=lambda a: (a.in_backoff(NOW), a.used_percent(NOW), a.streams_in_flight, a.requests_today),
        default=None,
    )
    assert _least_used(accounts, request, NOW, cap) is expected


@settings(max_examples=300, deadline=None)
@given(
    state=account_states,
    strategy=st.sampled_from(list(Strategy)),
    failures=st.integers(0, 8),
    passthrough=st.booleans(),
)
def test_a_single_account_is_refused_only_for_what_the_backend_would_refuse_too(
    state: dict[str, object], strategy: Strategy, failures: int, passthrough: bool
) -> None:
    """With one account and no stream cap, the pool never turns a request away for backoff, windows or busy
    streams. With ``one_account_passthrough`` (the default) it sends everything but a paused account's
    requests, as the gateway did before pools; without it, it also refuses for a running usage limit (or an
    open probe), a needed login, a disabled account or a model the plan lacks."""
    accounts = build([state])
    account = next(iter(accounts.values()))
    for n in range(failures):
        health.transient_failure(account, NOW - n)
    policy = RoutingPolicy(strategy, one_account_passthrough=passthrough)
    decision = choose(accounts, RouteRequest(MODEL, "s"), NOW, policy)
    hard_out = (
        account.status in (AccountStatus.NEEDS_LOGIN, AccountStatus.DISABLED, AccountStatus.PAUSED)
        or (
            account.status is AccountStatus.COOLING
            and (account.probe_in_flight or (account.cooling_until is not None and account.cooling_until > NOW))
        )
        or account.disabled_models.get(MODEL, NOW) > NOW
    )
    if passthrough:
        assert (decision.account is None) == (account.status is AccountStatus.PAUSED)
        assert decision.passthrough == (hard_out and account.status is not AccountStatus.PAUSED)
    else:
        assert (decision.account is None) == hard_out
    if decision.account is not None and not decision.passthrough:
        assert decision.probe == (account.status is AccountStatus.COOLING)


def test_the_only_account_gets_requests_while_cooling_as_before_pools_and_a_success_ends_the_cooldown() -> None:
    accounts = pool("solo")
    solo = by_alias(accounts, "solo")
    router = Router()
    reasoning, compaction = content_key("r"), content_key("c")
    router.remember_content([reasoning, compaction], solo.key, NOW)
    health.usage_limit(solo, NOW + 3600, NOW)
    decision = router.route(
        accounts, model=MODEL, now=NOW + 1, session_key="s", reasoning_keys=[reasoning], compaction_keys=[compaction]
    )
    assert decision.account is solo and decision.passthrough and not decision.drop_reasoning_from
    health.begin_stream(solo, decision.probe)
    health.success(solo)  # the backend lifted the limit early: the account is active again at once
    health.end_stream(solo)
    assert solo.status is AccountStatus.ACTIVE
    assert not router.route(accounts, model=MODEL, now=NOW + 2).passthrough
    # Each account is still tried once per request, and a paused account stays paused.
    assert router.route(accounts, model=MODEL, now=NOW + 3, tried=frozenset({solo.key})).account is None
    health.pause(solo)
    assert router.route(accounts, model=MODEL, now=NOW + 3).account is None


@pytest.mark.parametrize("strategy", list(Strategy))
def test_no_strategy_ever_picks_an_unusable_account(strategy: Strategy) -> None:
    accounts = pool("a", "b", "c", "d")
    health.usage_limit(by_alias(accounts, "a"), NOW + 10, NOW)
    health.unauthorized_after_refresh(by_alias(accounts, "b"), NOW)
    health.pause(by_alias(accounts, "c"))
    router = Router(RoutingPolicy(strategy))
    for n in range(8):
        assert serve(router, accounts, NOW + n, session_key=f"s{n % 3}").alias == "d"


def test_content_binding_moves_a_session_only_under_sticky_and_only_when_it_has_no_usable_account() -> None:
    accounts = pool("a", "b")
    a, b = by_alias(accounts, "a"), by_alias(accounts, "b")
    reasoning = content_key("from-a")
    sticky = Router()
    sticky.remember_content([reasoning], a.key, NOW)
    assert serve(sticky, accounts, NOW, session_key="new", reasoning_keys=[reasoning]) is a
    assert sticky.sessions.get("new", NOW) == a.key  # a new session follows its content
    sticky.sessions.put("on-b", b.key, NOW)
    assert serve(sticky, accounts, NOW, session_key="on-b", reasoning_keys=[reasoning]) is a
    assert sticky.sessions.get("on-b", NOW) == b.key  # its account still serves: the binding stays
    least = Router(RoutingPolicy(Strategy.LEAST_USED))
    least.remember_content([reasoning], a.key, NOW)
    serve(least, accounts, NOW, session_key="s", reasoning_keys=[reasoning])
    assert len(least.sessions) == 0  # other strategies keep no session map


@pytest.mark.parametrize(
    ("prepare", "status", "error_type"),
    [
        ("cool", 429, "usage_limit_reached"),
        ("login", 401, "authentication_error"),
        ("disable", 503, "server_error"),
        ("exclude_model", 429, "usage_not_included"),
    ],
)
def test_refusals_become_errors_of_the_usual_shape(prepare: str, status: int, error_type: str) -> None:
    accounts = pool("a")
    a = by_alias(accounts, "a")
    {
        "cool": lambda: health.usage_limit(a, NOW + 60, NOW),
        "login": lambda: health.unauthorized_after_refresh(a, NOW),
        "disable": lambda: health.forbidden(a, "deactivated", NOW),
        "exclude_model": lambda: health.usage_not_included(a, MODEL, NOW),
    }[prepare]()
    single_as_a_pool = RoutingPolicy(one_account_passthrough=False)
    refusal = choose(accounts, RouteRequest(MODEL), NOW, single_as_a_pool).refusal
    assert refusal is not None
    error = refusal.to_error()
    assert (error.status_code, error.type) == (status, error_type)
    assert error.envelope()["error"]["message"] == refusal.message and "a" in refusal.accounts


def test_compaction_bound_to_an_account_that_needs_login_or_is_disabled() -> None:
    accounts = pool("a", "b")
    a = by_alias(accounts, "a")
    router = Router()
    compaction = content_key("compacted")
    router.remember_content([compaction], a.key, NOW)
    health.unauthorized_after_refresh(a, NOW)
    refusal = router.route(accounts, model=MODEL, now=NOW, compaction_keys=[compaction]).refusal
    assert refusal is not None and refusal.status == 401 and "needs login" in refusal.message
    assert refusal.retry_after is None
    health.forbidden(a, "account deactivated", NOW)
    refusal = router.route(accounts, model=MODEL, now=NOW, compaction_keys=[compaction]).refusal
    assert refusal is not None and refusal.status == 503 and "disabled" in refusal.message
