"""State shared by every instance of one gateway: locks with expiry, counters, maps with TTL, pub/sub.

:func:`open_state` gives the embedded :class:`LocalState` when no ``state_url`` is set, else a
:class:`RedisState`. :class:`CachedState` puts a pub/sub-invalidated local cache in front of the maps;
:class:`CredentialStore` keeps credentials sealed by a :class:`SecretBox`.
"""

from __future__ import annotations

from codexgate.state.cache import CachedState
from codexgate.state.interface import LockLost, SharedState, StateLock, StateUnavailable, Subscription
from codexgate.state.local import LocalState
from codexgate.state.redis_state import RedisState
from codexgate.state.secrets_box import CredentialStore, SecretBox, SecretBoxError, version_of

__all__ = [
    "CachedState",
    "CredentialStore",
    "LocalState",
    "LockLost",
    "RedisState",
    "SecretBox",
    "SecretBoxError",
    "SharedState",
    "StateLock",
    "StateUnavailable",
    "Subscription",
    "open_state",
    "version_of",
]


def open_state(state_url: str | None, *, prefix: str = "codexgate:", timeout: float = 1.0) -> SharedState:
    """The shared state for these settings: in-process without ``state_url``, Redis with it."""
    if not state_url:
        return LocalState()
    return RedisState.from_url(state_url, prefix=prefix, timeout=timeout)
