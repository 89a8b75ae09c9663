"""The account pool: account states, the routing policy and the health transitions (pure), and the router's
memory of sessions and account-bound content."""

from codexgate.pool.accounts import AccountState, AccountStatus, UsageWindow, account_key, alias_from_email
from codexgate.pool.router import Router
from codexgate.pool.routing import Decision, NoAccountReason, Refusal, RouteRequest, RoutingPolicy, Strategy, choose
from codexgate.pool.sticky import BoundedTTLMap, content_key, scoped_session_key

__all__ = [
    "AccountState",
    "AccountStatus",
    "BoundedTTLMap",
    "Decision",
    "NoAccountReason",
    "Refusal",
    "RouteRequest",
    "Router",
    "RoutingPolicy",
    "Strategy",
    "UsageWindow",
    "account_key",
    "alias_from_email",
    "choose",
    "content_key",
    "scoped_session_key",
]
