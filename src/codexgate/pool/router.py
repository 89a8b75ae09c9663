"""The routing memory around :func:`codexgate.pool.routing.choose`: session bindings, content bindings and
the round-robin counter. No I/O and no clock reads (``now`` is passed in); one per process, used from the
event loop only.

Wiring (the upstream layer, per request)::

    decision = router.route(accounts, model=..., session_key=scoped_session_key(key_id, session_id),
                            now=now, tried=tried, reasoning_keys=[...], compaction_keys=[...])
    if decision.account is None: raise decision.refusal.to_error()   # or the last upstream error (ALL_TRIED)
    health.begin_stream(decision.account, decision.probe, day)       # before the next await
    # drop encrypted reasoning whose content key is bound to an account in decision.drop_reasoning_from
    try:
        # before the first byte, per answer:
        #   usage_limit_reached  → health.usage_limit(account, resets_at, now); tried |= {key}; route again
        #   usage_not_included   → health.usage_not_included(account, model, now); tried |= {key}; route again
        #   401 after a refresh  → health.unauthorized_after_refresh(account, now)
        #   403                  → health.forbidden(account, body_text, now)
        #   5xx, timeout, reset  → health.transient_failure(account, now)
        #   the first event      → health.success(account)
        # x-codex-* headers / codex.rate_limits → health.update_windows(account, snapshot, now)
        router.remember_content(keys of encrypted content in the answer, decision.account.key, now)
    finally:
        health.end_stream(decision.account)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from codexgate.pool.accounts import AccountState
from codexgate.pool.routing import Decision, RouteRequest, RoutingPolicy, Strategy, choose
from codexgate.pool.sticky import BoundedTTLMap

__all__ = ["Router"]

DEFAULT_SESSION_TTL = 6 * 3600.0
DEFAULT_SESSION_MAX = 50_000
DEFAULT_CONTENT_TTL = 24 * 3600.0
DEFAULT_CONTENT_MAX = 50_000


class Router:
    """Routes requests over a pool's accounts and remembers what must stay on one account."""

    __slots__ = ("_rotation", "content", "on_content", "on_session", "policy", "sessions")

    def __init__(
        self,
        policy: RoutingPolicy | None = None,
        *,
        session_ttl: float = DEFAULT_SESSION_TTL,
        session_max: int = DEFAULT_SESSION_MAX,
        content_ttl: float = DEFAULT_CONTENT_TTL,
        content_max: int = DEFAULT_CONTENT_MAX,
    ) -> None:
        self.policy = policy or RoutingPolicy()
        self.sessions: BoundedTTLMap[str, str] = BoundedTTLMap(session_max, session_ttl)
        self.content: BoundedTTLMap[str, str] = BoundedTTLMap(content_max, content_ttl)
        self._rotation = 0
        #: told of every session binding a decision makes (key, account key, now): shared state mirrors them
        self.on_session: Callable[[str, str, float], None] | None = None
        #: told of every content binding remembered (content keys, account key, now)
        self.on_content: Callable[[tuple[str, ...], str, float], None] | None = None

    def route(
        self,
        accounts: Mapping[str, AccountState],
        *,
        model: str,
        now: float,
        session_key: str | None = None,
        tried: frozenset[str] = frozenset(),
        reasoning_keys: Iterable[str] = (),
        compaction_keys: Iterable[str] = (),
    ) -> Decision:
        """Choose an account; bind the session to it when the policy says so.

        ``reasoning_keys``/``compaction_keys`` are :func:`codexgate.pool.sticky.content_key` values of the
        encrypted content the request carries, oldest first. A compaction item binds the request to its
        account (never dropped); otherwise the newest known encrypted reasoning does, and reasoning from
        any account other than the chosen one is listed in ``drop_reasoning_from``.
        """
        compaction_account: str | None = None
        for key in compaction_keys:
            found = self.content.get(key, now)
            if found is not None:
                compaction_account = found
        reasoning_accounts: list[str] = []
        for key in reasoning_keys:
            found = self.content.get(key, now)
            if found is not None:
                reasoning_accounts.append(found)
        if compaction_account is not None:
            bound, droppable = compaction_account, False
        elif reasoning_accounts:
            bound, droppable = reasoning_accounts[-1], True
        else:
            bound, droppable = None, True

        policy = self.policy
        session_account = self.sessions.get(session_key, now) if session_key is not None else None
        request = RouteRequest(
            model=model,
            session_key=session_key,
            session_account=session_account,
            tried=tried,
            bound_account=bound,
            bound_droppable=droppable,
            rotation=self._rotation,
        )
        decision = choose(accounts, request, now, policy)
        if policy.strategy is Strategy.ROUND_ROBIN:
            self._rotation += 1
        chosen = decision.account
        if chosen is None:
            return decision
        if decision.bind_session and session_key is not None:
            self.sessions.put(session_key, chosen.key, now)
            if self.on_session is not None:
                self.on_session(session_key, chosen.key, now)
        others = frozenset(account for account in reasoning_accounts if account != chosen.key)
        if others - decision.drop_reasoning_from:
            decision = dataclasses.replace(decision, drop_reasoning_from=decision.drop_reasoning_from | others)
        return decision

    def remember_content(self, keys: Iterable[str], account_key: str, now: float) -> None:
        """Bind encrypted content an account produced (its :func:`content_key` values) to that account."""
        if self.on_content is None:
            for key in keys:
                self.content.put(key, account_key, now)
            return
        remembered = tuple(keys)
        for key in remembered:
            self.content.put(key, account_key, now)
        self.on_content(remembered, account_key, now)

    def account_of(self, key: str, now: float) -> str | None:
        """The account that produced the content with this key, if remembered."""
        return self.content.get(key, now)

    def forget_account(self, account_key: str) -> None:
        """An account left the pool: its sessions will be routed afresh (its content bindings stay, so that a
        compaction item it produced still gets a clear error rather than a wrong account)."""
        self.sessions.remove_value(account_key)
