"""The one small interface for state several codexgate instances share, and the lock built on it.

Two implementations satisfy :class:`SharedState`: :class:`codexgate.state.local.LocalState` (in-process,
the embedded default) and :class:`codexgate.state.redis_state.RedisState` (Redis, when ``state_url`` is
set). Callers hold a ``SharedState`` and never know which one they have.

What it offers:

* **locks with expiry** — :meth:`SharedState.lock` returns a :class:`StateLock` with a random owner token.
  Acquiring sets the lock only if nobody holds it, with an expiry (``ttl``), so a crashed holder never
  blocks anyone for longer than ``ttl``. :meth:`StateLock.extend` pushes the expiry out, and only while the
  caller still owns it; :meth:`StateLock.hold` runs a background extender for as long as the work takes,
  so a slow holder is never overtaken. Release deletes the lock only if the token still matches.
* **counters** — :meth:`SharedState.incr` with an optional window (``ttl`` set when the counter is created).
* **maps with per-entry expiry** — ``put/get/delete/scan`` in a namespace; every entry is its own key with
  its own TTL. :meth:`SharedState.put_if_newer` writes only when the stored version is not newer.
* **pub/sub** — :meth:`SharedState.publish` and :meth:`SharedState.subscribe`.
* **health** — :meth:`SharedState.health` never raises.

Values are ``bytes``: callers serialize (``orjson``) and the credential store encrypts before they get here.
Any operation may raise :class:`StateUnavailable` when the backing store cannot be reached; it is a 503
``state_unavailable`` with ``Retry-After`` ready for the server to answer with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, runtime_checkable

from codexgate.errors import APIError

__all__ = [
    "LockBackend",
    "LockLost",
    "SharedState",
    "StateLock",
    "StateUnavailable",
    "Subscription",
    "check_namespace",
]

logger = logging.getLogger("codexgate.state")


class StateUnavailable(APIError):
    """The shared state store cannot be reached (or did not answer in time)."""

    def __init__(self, message: str = "shared state is unavailable", *, retry_after: int = 1) -> None:
        super().__init__(
            503,
            message,
            type="server_error",
            code="state_unavailable",
            headers={"Retry-After": str(retry_after)},
        )


class LockLost(Exception):
    """A held lock expired or was taken over before its holder finished (raised by :meth:`StateLock.hold`)."""


def check_namespace(namespace: str) -> str:
    """A map namespace: non-empty, without ``:`` (it separates the namespace from the key in Redis)."""
    if not namespace or ":" in namespace:
        raise ValueError(f"invalid namespace {namespace!r}: non-empty and without ':'")
    return namespace


class Subscription(Protocol):
    """Messages published on one channel after the subscription started; close it when done."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class LockBackend(Protocol):
    """The three atomic steps a :class:`StateLock` is made of; ``ttl`` in seconds."""

    async def _lock_acquire(self, name: str, token: str, ttl: float) -> bool: ...

    async def _lock_extend(self, name: str, token: str, ttl: float) -> bool: ...

    async def _lock_release(self, name: str, token: str) -> bool: ...


@runtime_checkable
class SharedState(Protocol):
    """State shared by every instance of one gateway (see the module docstring)."""

    def lock(self, name: str, ttl: float) -> StateLock:
        """A lock named ``name`` expiring ``ttl`` seconds after it is taken or extended (not yet acquired)."""
        ...

    async def incr(self, name: str, by: int = 1, ttl: float | None = None) -> int:
        """Add ``by`` to a counter and return the new value; ``ttl`` starts when the counter is created."""
        ...

    async def get_counter(self, name: str) -> int:
        """A counter's value (0 when absent or expired)."""
        ...

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store one entry; ``ttl`` seconds until it disappears (None: no expiry)."""
        ...

    async def put_if_newer(
        self, namespace: str, key: str, value: bytes, version: int, ttl: float | None = None
    ) -> bool:
        """Store the entry unless the stored one carries a higher ``version``; True when written."""
        ...

    async def get(self, namespace: str, key: str) -> bytes | None:
        """One entry, or None when absent or expired."""
        ...

    async def get_with_ttl(self, namespace: str, key: str) -> tuple[bytes | None, float | None]:
        """One entry and its remaining lifetime in seconds (None: no expiry) — what a cache needs."""
        ...

    async def delete(self, namespace: str, key: str) -> bool:
        """Remove one entry; True when it existed."""
        ...

    async def scan(self, namespace: str) -> dict[str, bytes]:
        """Every live entry of a namespace."""
        ...

    async def publish(self, channel: str, message: bytes) -> int:
        """Send ``message`` to the channel's current subscribers; the number that received it."""
        ...

    async def subscribe(self, channel: str) -> Subscription:
        """Start receiving the channel's messages (those published from now on)."""
        ...

    async def health(self) -> bool:
        """Whether the store answers now; never raises."""
        ...

    async def close(self) -> None:
        """Release connections and background tasks."""
        ...


class StateLock:
    """A lock with an owner token and an expiry, on any :class:`LockBackend`.

    ``acquire`` / ``extend`` / ``release`` are single atomic steps; ``hold`` is the usual way to use it::

        async with state.lock("refresh:acct-1", ttl=30).hold(wait=10):
            ...  # refresh; the lock is extended every ttl/3 while this runs
    """

    def __init__(self, backend: LockBackend, name: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("a lock needs a positive ttl")
        self.backend = backend
        self.name = name
        self.ttl = ttl
        self.token = secrets.token_hex(16)
        self.held = False
        self.lost = False

    def __repr__(self) -> str:
        return f"StateLock(name={self.name!r}, ttl={self.ttl}, held={self.held})"

    async def acquire(self, wait: float = 0.0, poll: float = 0.05) -> bool:
        """Take the lock, retrying for up to ``wait`` seconds; True when this object now owns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if await self.backend._lock_acquire(self.name, self.token, self.ttl):
                self.held = True
                self.lost = False
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(poll, remaining))

    async def extend(self, ttl: float | None = None) -> bool:
        """Push the expiry to ``ttl`` (default: the lock's) from now, only if still the owner."""
        ok = await self.backend._lock_extend(self.name, self.token, ttl or self.ttl)
        if not ok:
            self.held = False
            self.lost = True
        return ok

    async def release(self) -> bool:
        """Delete the lock only if this object still owns it; True when it did."""
        self.held = False
        return await self.backend._lock_release(self.name, self.token)

    @contextlib.asynccontextmanager
    async def hold(self, wait: float = 0.0, extend_every: float | None = None) -> AsyncIterator[StateLock]:
        """Acquire (or raise :class:`TimeoutError`), extend in the background while the body runs, release.

        When an extension finds the lock gone (expired during an outage, or taken), :attr:`lost` is set; the
        body calls :meth:`check` before an irreversible step (spending a single-use refresh token). Leaving
        the block releases only if still owned.
        """
        if not await self.acquire(wait=wait):
            raise TimeoutError(f"lock {self.name!r} is held by another owner")
        interval = extend_every if extend_every is not None else self.ttl / 3
        extender = asyncio.create_task(self._keep_extended(interval), name=f"lock-extender:{self.name}")
        try:
            yield self
        finally:
            extender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await extender
            if not self.lost:
                with contextlib.suppress(StateUnavailable):
                    await self.release()
            self.held = False

    def check(self) -> None:
        """Raise :class:`LockLost` unless this object still holds the lock as far as it knows."""
        if self.lost or not self.held:
            raise LockLost(f"lock {self.name!r} is no longer held")

    async def _keep_extended(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        expires_at = loop.time() + self.ttl
        while True:
            await asyncio.sleep(interval)
            attempt_at = loop.time()
            try:
                if not await self.extend():
                    logger.warning("lock %s was lost before its holder finished", self.name)
                    return
                expires_at = attempt_at + self.ttl
            except StateUnavailable:
                if loop.time() >= expires_at:  # it may have expired unseen: someone else may own it now
                    self.held = False
                    self.lost = True
                    logger.warning("lock %s could not be extended before its expiry", self.name)
                    return
