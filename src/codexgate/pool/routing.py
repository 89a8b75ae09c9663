"""The routing policy: which account serves a request, or why none can. A pure function over states.

:func:`choose` reads the accounts (key → :class:`AccountState`, in the pool's order), a
:class:`RouteRequest` and ``now``, and returns a :class:`Decision`. It changes nothing: the caller
(see :class:`codexgate.pool.router.Router`) remembers session bindings and calls
:func:`codexgate.pool.health.begin_stream` on the chosen account before its next await.

Order of preference: the account bound to content the request carries; then, with ``sticky``, the
session's account; then the strategy's pick among usable accounts not yet tried for this request and
under the stream cap. Accounts in a transient backoff are picked only when no other account can serve,
so a backoff never takes the last usable account out. With a single account the pool sends every request
but a paused account's (``RoutingPolicy.one_account_passthrough``), exactly as before pools existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from codexgate.pool.accounts import AccountState, AccountStatus
from codexgate.pool.refusals import NoAccountReason, Refusal, bound_refusal, no_accounts, refusal_for

__all__ = ["Decision", "NoAccountReason", "Refusal", "RouteRequest", "RoutingPolicy", "Strategy", "choose"]


class Strategy(StrEnum):
    STICKY = "sticky"
    LEAST_USED = "least_used"
    ROUND_ROBIN = "round_robin"
    FILL_FIRST = "fill_first"


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    strategy: Strategy = Strategy.STICKY
    fill_threshold: float = 95.0  # fill_first moves to the next account at this used %
    account_max_streams: int | None = None  # concurrent streams per account; None: no cap
    #: With exactly one account the pool sends every request the gateway would have sent before pools
    #: existed (all but a paused account's, or past the stream cap): the backend's own answer (a 429 with
    #: its reset time, a 401, a 403) reaches the client, and a limit lifted early is seen at once.
    one_account_passthrough: bool = True


@dataclass(slots=True)
class RouteRequest:
    """What the policy needs to know about one request (read-only; not frozen only because a frozen
    dataclass costs a microsecond to build, a twentieth of a decision's budget)."""

    model: str
    session_key: str | None = None  # scoped per API key (see sticky.scoped_session_key)
    session_account: str | None = None  # the account the session is bound to (looked up by the caller)
    tried: frozenset[str] = frozenset()  # accounts that already failed this request
    bound_account: str | None = None  # the account that produced account-bound content in the request
    bound_droppable: bool = True  # encrypted reasoning: True; a compaction item: False
    rotation: int = 0  # round_robin's counter (the caller advances it)


@dataclass(slots=True)
class Decision:
    """The policy's answer (read-only): an account, or the refusal saying why none can serve."""

    account: AccountState | None
    probe: bool = False  # the account's cooldown is over: this request is its one probe
    #: accounts whose encrypted reasoning the caller must drop from the request (they cannot be read here)
    drop_reasoning_from: frozenset[str] = frozenset()
    #: whether the session should now be bound to ``account`` (False when only this request goes elsewhere)
    bind_session: bool = False
    #: the only account of the pool, sent the request although its state says it cannot serve
    passthrough: bool = False
    refusal: Refusal | None = field(default=None)


def _serves(account: AccountState, request: RouteRequest, now: float, cap: int | None) -> bool:
    return (
        account.key not in request.tried
        and account.usable(now, request.model)
        and (cap is None or account.streams_in_flight < cap)
    )


def choose(accounts: Mapping[str, AccountState], request: RouteRequest, now: float, policy: RoutingPolicy) -> Decision:
    """The account for ``request``, or a :class:`Refusal` saying why none can serve it."""
    if not accounts:
        return Decision(None, refusal=no_accounts())
    cap = policy.account_max_streams
    drop: frozenset[str] = frozenset()

    bound_key = request.bound_account
    if bound_key is not None:
        bound = accounts.get(bound_key)
        if bound is not None and _serves(bound, request, now, cap):
            bind = policy.strategy is Strategy.STICKY and _session_lost(request, accounts, now)
            return Decision(bound, probe=bound.probing(now), bind_session=bind)
        if not request.bound_droppable:
            only = _passthrough(accounts, request, cap, policy)
            if only is not None and only is bound:
                return Decision(only, passthrough=True)
            return Decision(None, refusal=bound_refusal(bound, request.model, now, cap))
        drop = frozenset((bound_key,))

    strategy = policy.strategy
    fallback: AccountState | None = None
    rebind = False
    if strategy is Strategy.STICKY and request.session_key is not None:
        held = accounts.get(request.session_account) if request.session_account is not None else None
        if held is not None and _serves(held, request, now, cap):
            if not held.in_backoff(now):
                return Decision(held, probe=held.probing(now), drop_reasoning_from=drop)
            fallback = held  # in a short backoff: another account serves this request if one can
        # Tried, full or backing off: only this request goes elsewhere; the session moves when its account
        # cannot serve at all (or it had none).
        rebind = held is None or not held.usable(now, request.model)

    if strategy is Strategy.ROUND_ROBIN:
        best = _round_robin(accounts, request, now, cap)
    elif strategy is Strategy.FILL_FIRST:
        best = _fill_first(accounts, request, now, cap, policy.fill_threshold)
    else:
        best = _least_used(accounts, request, now, cap)
    if best is None:
        only = _passthrough(accounts, request, cap, policy)
        if only is not None:
            return Decision(only, drop_reasoning_from=drop - {only.key}, passthrough=True)
        return Decision(None, refusal=refusal_for(accounts, request.model, request.tried, now, cap))
    if fallback is not None and best.in_backoff(now):
        return Decision(fallback, probe=fallback.probing(now), drop_reasoning_from=drop)
    return Decision(best, probe=best.probing(now), drop_reasoning_from=drop, bind_session=rebind)


def _passthrough(
    accounts: Mapping[str, AccountState], request: RouteRequest, cap: int | None, policy: RoutingPolicy
) -> AccountState | None:
    """The pool's only account when the request goes to it whatever its state (see ``one_account_passthrough``)."""
    if not policy.one_account_passthrough or len(accounts) != 1:
        return None
    (only,) = accounts.values()
    if only.status is AccountStatus.PAUSED or only.key in request.tried:
        return None
    if cap is not None and only.streams_in_flight >= cap:
        return None
    return only


def _session_lost(request: RouteRequest, accounts: Mapping[str, AccountState], now: float) -> bool:
    """Whether the request's session has no account that can serve it (a request that follows its bound
    content moves its session only then)."""
    held = accounts.get(request.session_account) if request.session_account is not None else None
    return request.session_key is not None and (held is None or not held.usable(now, request.model))


def _least_used(
    accounts: Mapping[str, AccountState], request: RouteRequest, now: float, cap: int | None
) -> AccountState | None:
    """The usable account ranked lowest by (in backoff, used %, streams in flight, requests today).

    The hot loop of a sticky miss: :meth:`AccountState.usable` and :meth:`AccountState.used_percent` are
    inlined here (tests check this loop against them) to keep a decision over 100 accounts within budget.
    """
    active, cooling = AccountStatus.ACTIVE, AccountStatus.COOLING
    tried, model = request.tried, request.model
    best: AccountState | None = None
    best_off, best_used, best_streams, best_requests = True, 0.0, 0, 0
    for account in accounts.values():
        status = account.status
        if status is not active:
            if status is not cooling or account.probe_in_flight:
                continue
            until = account.cooling_until
            if until is not None and until > now:
                continue
        if account.disabled_models:
            until = account.disabled_models.get(model)
            if until is not None and until > now:
                continue
        if tried and account.key in tried:
            continue
        streams = account.streams_in_flight
        if cap is not None and streams >= cap:
            continue
        backoff = account.backoff_until
        off = backoff is not None and backoff > now
        if best is not None and off and not best_off:
            continue
        used = account._used if account._used_from <= now < account._used_until else account.refresh_used(now)
        if best is not None and off == best_off:
            if used > best_used:
                continue
            if used == best_used:
                if streams > best_streams:
                    continue
                if streams == best_streams and account.requests_today >= best_requests:
                    continue
        best, best_off, best_used, best_streams, best_requests = account, off, used, streams, account.requests_today
    return best


def _round_robin(
    accounts: Mapping[str, AccountState], request: RouteRequest, now: float, cap: int | None
) -> AccountState | None:
    count = len(accounts)
    start = request.rotation % count
    best: AccountState | None = None
    best_rank: tuple[bool, int] | None = None
    for index, account in enumerate(accounts.values()):
        if not _serves(account, request, now, cap):
            continue
        rank = (account.in_backoff(now), (index - start) % count)
        if best_rank is None or rank < best_rank:
            best, best_rank = account, rank
    return best


def _fill_first(
    accounts: Mapping[str, AccountState], request: RouteRequest, now: float, cap: int | None, threshold: float
) -> AccountState | None:
    for account in accounts.values():
        if (
            _serves(account, request, now, cap)
            and not account.in_backoff(now)
            and account.used_percent(now) < threshold
        ):
            return account
    return _least_used(accounts, request, now, cap)
