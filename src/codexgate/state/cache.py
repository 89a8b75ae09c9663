"""A local read-through cache over a :class:`SharedState`'s maps, kept fresh by pub/sub invalidations.

Every instance wraps its shared state in a :class:`CachedState` and reads maps through it: a hit answers
from this process's memory (no round trip), a miss reads the store once and remembers the answer — the
absence of an entry too (a key that is not revoked stays cheap to check). Writes through the cache go to
the store first, then an invalidation ``<origin> <namespace>:<key>`` is published on one channel; every
other instance's listener drops that entry, so its next read fetches the new value (the writer dropped
its own entry already and ignores the echo: ``origin`` is a random id per cache). Entries also expire locally when the
stored entry's TTL runs out.

Consistency rules:

* A read that races an invalidation never stores its (possibly stale) answer: each miss registers a ticket
  that an invalidation of the same key (or a reset) withdraws.
* Nothing is stored while the invalidation channel is not subscribed: without it the cache could not
  learn of changes.
* When the subscription drops (store outage), entries already held keep answering — requests go on with
  what this instance last saw — and as soon as the listener subscribes again the whole cache is dropped,
  since invalidations may have been missed meanwhile. The listener retries every ``retry_interval``
  seconds (0.25 by default), well inside the 5 s the gateway promises for recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from codexgate.state.interface import SharedState, StateUnavailable, check_namespace

__all__ = ["CachedState"]

logger = logging.getLogger("codexgate.state")

_Cached = tuple[bytes | None, float | None]  # value (None: known absent), monotonic expiry (None: never)


class CachedState:
    """Read-through cache of a shared state's maps (see the module docstring). Call :meth:`start` first."""

    def __init__(
        self,
        state: SharedState,
        *,
        channel: str = "cache-invalidation",
        max_entries: int = 100_000,
        retry_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.channel = channel
        self.max_entries = max_entries
        self.retry_interval = retry_interval
        self._clock = clock
        self._entries: dict[tuple[str, str], _Cached] = {}
        self._tickets: dict[tuple[str, str], object] = {}
        self._subscribed = False
        self._ready = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self.origin = secrets.token_hex(8)
        self.hits = 0
        self.misses = 0

    @property
    def subscribed(self) -> bool:
        """Whether invalidations are being received now (entries are only added while they are)."""
        return self._subscribed

    async def start(self, wait: float = 2.0) -> bool:
        """Start the invalidation listener; wait up to ``wait`` seconds for it to subscribe."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"cache-listener:{self.channel}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait)
        return self._subscribed

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._subscribed = False

    # -- reads ----------------------------------------------------------------------------------------

    async def get(self, namespace: str, key: str) -> bytes | None:
        """The entry from memory when known, else from the store (raises :class:`StateUnavailable`)."""
        slot = (namespace, key)
        cached = self._entries.get(slot)
        if cached is not None and (cached[1] is None or cached[1] > self._clock()):
            self.hits += 1
            return cached[0]
        self.misses += 1
        ticket = object()
        self._tickets[slot] = ticket
        try:
            value, ttl = await self.state.get_with_ttl(check_namespace(namespace), key)
        finally:
            still_valid = self._tickets.get(slot) is ticket
            if still_valid:
                del self._tickets[slot]
        if still_valid and self._subscribed:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[slot] = (value, self._clock() + ttl if ttl is not None else None)
        return value

    # -- writes (store first, then tell every instance) -----------------------------------------------

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.state.put(namespace, key, value, ttl)
        await self.invalidate(namespace, key)

    async def put_if_newer(
        self, namespace: str, key: str, value: bytes, version: int, ttl: float | None = None
    ) -> bool:
        written = await self.state.put_if_newer(namespace, key, value, version, ttl)
        if written:
            await self.invalidate(namespace, key)
        return written

    async def delete(self, namespace: str, key: str) -> bool:
        existed = await self.state.delete(namespace, key)
        await self.invalidate(namespace, key)
        return existed

    async def invalidate(self, namespace: str, key: str) -> None:
        """Drop the entry here and publish its invalidation to every instance."""
        self._drop((namespace, key))
        await self.state.publish(self.channel, f"{self.origin} {check_namespace(namespace)}:{key}".encode())

    # -- invalidations --------------------------------------------------------------------------------

    def _drop(self, slot: tuple[str, str]) -> None:
        self._entries.pop(slot, None)
        self._tickets.pop(slot, None)

    def _reset(self) -> None:
        self._entries.clear()
        self._tickets.clear()

    def _on_message(self, message: bytes) -> None:
        origin, _, slot = message.decode("utf-8", "replace").partition(" ")
        if origin == self.origin:
            return
        namespace, sep, key = slot.partition(":")
        if sep:
            self._drop((namespace, key))
        else:
            self._reset()  # not an entry: drop everything rather than guess

    async def _listen(self) -> None:
        while True:
            try:
                subscription = await self.state.subscribe(self.channel)
            except Exception as exc:  # StateUnavailable, or a store error: retry, never let the listener die
                if not isinstance(exc, StateUnavailable):
                    logger.warning("cache listener could not subscribe: %s", type(exc).__name__)
                await asyncio.sleep(self.retry_interval)
                continue
            self._reset()  # whatever was published while not subscribed is unknown
            self._subscribed = True
            self._ready.set()
            try:
                async for message in subscription:
                    self._on_message(message)
            except Exception as exc:
                if not isinstance(exc, StateUnavailable):
                    logger.warning("cache listener lost its subscription: %s", type(exc).__name__)
            finally:
                self._subscribed = False
                await subscription.close()
            await asyncio.sleep(self.retry_interval)
