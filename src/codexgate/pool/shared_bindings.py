"""Sticky sessions and account-bound content across the instances of a cluster (part of :mod:`shared_pool`).

* **Sessions** — a session bound to an account (the router's ``on_session``) is written to the ``sessions``
  map (key: a hash of the scoped session key; TTL: the router's session TTL, written again while the session
  goes on, at most every quarter of it); before routing, the request's session is read through
  ``cluster.cache`` (memory when known, dropped by pub/sub when another instance rebinds it) and seeds the
  router. A binding not yet written is left alone by lookups.
* **Content** — content keys the router remembers (``on_content``) are written to the ``content`` map in
  the background; before routing, the request's content keys unknown here are read through the cache.

Lookups are skipped while the store is known to be unreachable, bounded by ``lookup_timeout`` otherwise, and
never raise: the request is routed on what this instance knows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Final

from codexgate.pool.router import Router
from codexgate.pool.sticky import BoundedTTLMap

if TYPE_CHECKING:
    from codexgate.state.cluster import Cluster

__all__ = ["CONTENT_NAMESPACE", "SESSIONS_NAMESPACE", "SharedBindings", "session_slot"]

logger = logging.getLogger("codexgate.pool")

SESSIONS_NAMESPACE: Final = "sessions"
CONTENT_NAMESPACE: Final = "content"
LOOKUP_TIMEOUT_SECONDS: Final = 0.25
#: writes kept while the store is unreachable (the oldest go first past this)
PENDING_MAX: Final = 20_000
#: unknown content keys of one request looked up (the newest)
LOOKUP_MAX: Final = 64
_WRITE_BATCH: Final = 32


def session_slot(session_key: str) -> str:
    """The session's key in the shared map (a hash: the scoped session key itself never leaves the process)."""
    return hashlib.sha256(session_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SharedBindings:
    """The session and content bindings of one instance, mirrored to and read from the cluster's maps."""

    def __init__(
        self,
        cluster: Cluster,
        router: Router,
        wake: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
        lookup_timeout: float = LOOKUP_TIMEOUT_SECONDS,
    ) -> None:
        self.cluster = cluster
        self.router = router
        self.lookup_timeout = lookup_timeout
        self._wake = wake
        self._clock = clock
        self.sessions_pending: dict[str, str] = {}
        self._sessions_written: BoundedTTLMap[str, tuple[str, float]] = BoundedTTLMap(
            router.sessions.max_entries, router.sessions.ttl
        )
        self.content_pending: dict[str, str] = {}
        self._content_written: BoundedTTLMap[str, str] = BoundedTTLMap(router.content.max_entries, router.content.ttl)

    def install(self) -> None:
        self.router.on_session = self.session_bound
        self.router.on_content = self.content_remembered

    def uninstall(self) -> None:
        if self.router.on_session == self.session_bound:
            self.router.on_session = None
        if self.router.on_content == self.content_remembered:
            self.router.on_content = None

    @property
    def pending(self) -> bool:
        return bool(self.sessions_pending or self.content_pending)

    def session_bound(self, session_key: str, account_key: str, now: float) -> None:
        written = self._sessions_written.get(session_key, now)
        if written is not None and written[0] == account_key and now - written[1] < self.router.sessions.ttl / 4:
            return
        self._sessions_written.put(session_key, (account_key, now), now)
        self.sessions_pending.pop(session_key, None)
        self.sessions_pending[session_key] = account_key
        _bound(self.sessions_pending)
        self._wake()

    def seed_session(self, session_key: str, bound: str, now: float) -> None:
        """The binding the store holds for a session: the router follows it; its TTL there is refreshed while the
        session goes on (at most every quarter of the TTL)."""
        if self.router.sessions.get(session_key, now) != bound:
            self.router.sessions.put(session_key, bound, now)
        written = self._sessions_written.get(session_key, now)
        if written is None or written[0] != bound:
            self._sessions_written.put(session_key, (bound, now), now)
        elif now - written[1] >= self.router.sessions.ttl / 4:
            self.session_bound(session_key, bound, now)

    def content_remembered(self, keys: tuple[str, ...], account_key: str, now: float) -> None:
        added = False
        for key in keys:
            if self._content_written.get(key, now) == account_key:
                continue
            self._content_written.put(key, account_key, now)
            self.content_pending[key] = account_key
            added = True
        if added:
            _bound(self.content_pending)
            self._wake()

    def reachable(self) -> bool:
        """Whether the store answered lately (lookups are skipped while it does not)."""
        available = getattr(self.cluster.state, "available", True)
        return self.cluster.available and bool(available)

    async def before_route(
        self, session_key: str | None, reasoning_keys: Iterable[str] = (), compaction_keys: Iterable[str] = ()
    ) -> None:
        """Seed the router with the shared session binding and content bindings of a request (never raises)."""
        if not self.reachable():
            return
        router = self.router
        now = self._clock()
        unknown = [key for key in (*compaction_keys, *reasoning_keys) if router.content.get(key, now) is None]
        lookups: list[Awaitable[bytes | None]] = []
        if session_key is not None and session_key not in self.sessions_pending:
            lookups.append(self.cluster.cache.get(SESSIONS_NAMESPACE, session_slot(session_key)))
        else:
            session_key = None
        unknown = unknown[-LOOKUP_MAX:]
        lookups.extend(self.cluster.cache.get(CONTENT_NAMESPACE, key) for key in unknown)
        if not lookups:
            return
        try:
            async with asyncio.timeout(self.lookup_timeout):
                found = [await lookups[0]] if len(lookups) == 1 else await asyncio.gather(*lookups)
        except Exception as exc:  # StateUnavailable, a timeout, a store error: route on what is known here
            logger.debug("shared lookup skipped: %s", type(exc).__name__)
            return
        now = self._clock()
        if session_key is not None:
            account = found[0]
            found = found[1:]
            if account is not None and session_key not in self.sessions_pending:
                self.seed_session(session_key, account.decode(), now)
        for key, account in zip(unknown, found, strict=True):
            if account is not None:
                router.content.put(key, account.decode(), now)
                self._content_written.put(key, account.decode(), now)

    async def write(self) -> None:
        """Write the pending bindings (raises ``StateUnavailable``; what was not written stays pending)."""
        cache = self.cluster.cache
        for pending, namespace, ttl, slot_of in (
            (self.sessions_pending, SESSIONS_NAMESPACE, self.router.sessions.ttl, session_slot),
            (self.content_pending, CONTENT_NAMESPACE, self.router.content.ttl, _same),
        ):
            while pending:
                batch = list(pending.items())[:_WRITE_BATCH]
                await asyncio.gather(
                    *(cache.put(namespace, slot_of(item), account.encode(), ttl) for item, account in batch)
                )
                for item, account in batch:  # pending until written: lookups leave a pending binding alone
                    if pending.get(item) == account:
                        del pending[item]


def _same(key: str) -> str:
    return key


def _bound(pending: dict[str, str]) -> None:
    while len(pending) > PENDING_MAX:
        pending.pop(next(iter(pending)))
