"""The in-process :class:`~codexgate.state.interface.SharedState`: the embedded default, no Redis needed.

Everything lives in dictionaries of this process; expiry is checked when an entry is read (and swept on
``scan``), against a monotonic clock that tests may replace. All operations complete without awaiting
anything, so they are atomic with respect to other tasks on the same event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from codexgate.state.interface import StateLock, check_namespace

__all__ = ["LocalState", "LocalSubscription"]

_Entry = tuple[bytes, float | None]  # value, monotonic expiry (None: never)


class LocalSubscription:
    """A queue of the messages published on one channel of a :class:`LocalState`."""

    def __init__(self, owner: LocalState, channel: str) -> None:
        self._owner = owner
        self._channel = channel
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._closed = False

    def _deliver(self, message: bytes) -> None:
        self._queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner._unsubscribe(self._channel, self)
            self._queue.put_nowait(None)

    async def __aenter__(self) -> LocalSubscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class LocalState:
    """Shared state for one process (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._locks: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, _Entry] = {}
        self._maps: dict[str, dict[str, _Entry]] = {}
        self._versions: dict[str, dict[str, int]] = {}
        self._subscribers: dict[str, set[LocalSubscription]] = {}

    # -- locks ----------------------------------------------------------------------------------------

    def lock(self, name: str, ttl: float) -> StateLock:
        return StateLock(self, name, ttl)

    def _lock_owner(self, name: str) -> str | None:
        held = self._locks.get(name)
        if held is None:
            return None
        if held[1] <= self._clock():
            del self._locks[name]
            return None
        return held[0]

    async def _lock_acquire(self, name: str, token: str, ttl: float) -> bool:
        if self._lock_owner(name) is not None:
            return False
        self._locks[name] = (token, self._clock() + ttl)
        return True

    async def _lock_extend(self, name: str, token: str, ttl: float) -> bool:
        if self._lock_owner(name) != token:
            return False
        self._locks[name] = (token, self._clock() + ttl)
        return True

    async def _lock_release(self, name: str, token: str) -> bool:
        if self._lock_owner(name) != token:
            return False
        del self._locks[name]
        return True

    # -- counters -------------------------------------------------------------------------------------

    def _live(self, entry: _Entry | None) -> bool:
        return entry is not None and (entry[1] is None or entry[1] > self._clock())

    async def incr(self, name: str, by: int = 1, ttl: float | None = None) -> int:
        entry = self._counters.get(name)
        if entry is not None and self._live(entry):
            value, expires_at = int(entry[0]) + by, entry[1]
        else:
            value, expires_at = by, (self._clock() + ttl if ttl else None)
        self._counters[name] = (str(value).encode(), expires_at)
        return value

    async def get_counter(self, name: str) -> int:
        entry = self._counters.get(name)
        return int(entry[0]) if entry is not None and self._live(entry) else 0

    # -- maps -----------------------------------------------------------------------------------------

    def _expiry(self, ttl: float | None) -> float | None:
        return self._clock() + ttl if ttl else None

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        self._maps.setdefault(check_namespace(namespace), {})[key] = (bytes(value), self._expiry(ttl))
        self._versions.get(namespace, {}).pop(key, None)

    async def put_if_newer(
        self, namespace: str, key: str, value: bytes, version: int, ttl: float | None = None
    ) -> bool:
        entries = self._maps.setdefault(check_namespace(namespace), {})
        versions = self._versions.setdefault(namespace, {})
        if self._live(entries.get(key)) and versions.get(key, version) > version:
            return False
        entries[key] = (bytes(value), self._expiry(ttl))
        versions[key] = version
        return True

    async def get(self, namespace: str, key: str) -> bytes | None:
        return (await self.get_with_ttl(namespace, key))[0]

    async def get_with_ttl(self, namespace: str, key: str) -> tuple[bytes | None, float | None]:
        entry = self._maps.get(check_namespace(namespace), {}).get(key)
        if entry is None or not self._live(entry):
            return None, None
        return entry[0], (entry[1] - self._clock() if entry[1] is not None else None)

    async def delete(self, namespace: str, key: str) -> bool:
        entry = self._maps.get(check_namespace(namespace), {}).pop(key, None)
        self._versions.get(namespace, {}).pop(key, None)
        return self._live(entry)

    async def scan(self, namespace: str) -> dict[str, bytes]:
        entries = self._maps.get(check_namespace(namespace), {})
        for key in [key for key, entry in entries.items() if not self._live(entry)]:
            del entries[key]
            self._versions.get(namespace, {}).pop(key, None)
        return {key: entry[0] for key, entry in entries.items()}

    # -- pub/sub --------------------------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> int:
        receivers = list(self._subscribers.get(channel, ()))
        for subscription in receivers:
            subscription._deliver(bytes(message))
        return len(receivers)

    async def subscribe(self, channel: str) -> LocalSubscription:
        subscription = LocalSubscription(self, channel)
        self._subscribers.setdefault(channel, set()).add(subscription)
        return subscription

    def _unsubscribe(self, channel: str, subscription: LocalSubscription) -> None:
        self._subscribers.get(channel, set()).discard(subscription)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def health(self) -> bool:
        return True

    async def close(self) -> None:
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                await subscription.close()
