"""The Redis :class:`~codexgate.state.interface.SharedState`, on ``redis.asyncio``.

Layout under the key prefix (default ``codexgate:``): ``lock:<name>`` holds a lock's owner token with a
``PX`` expiry; ``ctr:<name>`` a counter; ``map:<namespace>:<key>`` one map entry, each a plain key with
its own TTL (Redis 7.0 has no per-field hash expiry) and ``ver:<namespace>:<key>`` the version written by
``put_if_newer``; channels are ``ch:<channel>``. Every compare-then-write step is one Lua script, so it is
atomic on the server.

Failure model: every command has a socket timeout (default 1 s) and one retry on a fresh connection (a
connection pooled before Redis restarted is broken; the retry replaces it), and the whole operation is
bounded, so when Redis is down or stalled an operation raises :class:`StateUnavailable` within a few
seconds at most and never hangs. Work resumes as soon as Redis answers again. One
warning is logged when an outage starts and one line when it ends (never the URL: it may hold a password).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from codexgate.state.interface import StateLock, StateUnavailable, check_namespace

__all__ = ["RedisState", "RedisSubscription"]

logger = logging.getLogger("codexgate.state")

T = TypeVar("T")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)

_LOCK_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_LOCK_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ttl) end
return value
"""
_PUT_IF_NEWER = """
local stored = redis.call('GET', KEYS[2])
if stored and redis.call('EXISTS', KEYS[1]) == 1 and tonumber(stored) > tonumber(ARGV[2]) then return 0 end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
"""


def _ms(ttl: float | None) -> int:
    """A TTL in whole milliseconds for Redis; 0 means none."""
    return max(1, round(ttl * 1000)) if ttl else 0


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _resurface_cancel(task: asyncio.Task[Any] | None, cancelling_before: int) -> None:
    """Raise the cancellation redis-py swallowed: a command cancelled at the wrong moment returns normally
    (seen with redis 8.1 on a connection pool), and a cancelled background loop would then never end."""
    if task is not None and task.cancelling() > cancelling_before:
        raise asyncio.CancelledError


class RedisSubscription:
    """Messages of one Redis channel; raises :class:`StateUnavailable` (once, then ends) when the link drops.

    It never reconnects by itself: a subscriber that lost its link may have missed messages, so whoever
    subscribed decides what to do (the cache drops what it holds) and subscribes again.
    """

    def __init__(self, owner: RedisState, pubsub: PubSub) -> None:
        self._owner = owner
        self._pubsub = pubsub
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        while not self._closed:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                _resurface_cancel(task, cancelling)
            except _UNREACHABLE as exc:
                await self.close()
                self._owner._mark_down(exc)
                raise StateUnavailable() from None
            if message is not None and message.get("type") == "message":
                data = message["data"]
                return data if isinstance(data, bytes) else str(data).encode()
        raise StopAsyncIteration

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(RedisError, OSError):  # already broken: nothing to release
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> RedisSubscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class RedisState:
    """Shared state in Redis (see the module docstring). Build it with :meth:`from_url`."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "codexgate:", timeout: float = 1.0) -> None:
        self._client = client
        self.prefix = prefix
        self.timeout = timeout
        self._down_since: float | None = None
        self._extend = client.register_script(_LOCK_EXTEND)
        self._release = client.register_script(_LOCK_RELEASE)
        self._incr = client.register_script(_INCR)
        self._put_if_newer = client.register_script(_PUT_IF_NEWER)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "codexgate:",
        timeout: float = 1.0,
        ssl_ca_certs: str | None = None,
        max_connections: int = 64,
    ) -> RedisState:
        """``redis://[:password@]host:port/db`` or ``rediss://…`` (TLS; ``ssl_ca_certs`` to trust a private CA)."""
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("state_url must start with redis://, rediss:// or unix://")
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # one retry on a fresh connection: after Redis restarts, the pooled connections from before are broken
            "retry": Retry(NoBackoff(), 1),
            # a connection idle this long is pinged before use: a half-open link (and a silent pub/sub) shows
            "health_check_interval": max(5.0, timeout * 5),
            "max_connections": max_connections,
            "timeout": timeout,  # past max_connections a command waits that long for a free connection
        }
        if ssl_ca_certs and url.startswith("rediss://"):
            options["ssl_ca_certs"] = ssl_ca_certs
        pool = aioredis.BlockingConnectionPool.from_url(url, **options)
        client = aioredis.Redis.from_pool(pool)
        return cls(client, prefix=prefix, timeout=timeout)

    @property
    def client(self) -> aioredis.Redis:
        """The underlying client (for tests and the credential scan)."""
        return self._client

    @property
    def available(self) -> bool:
        """False from the first failed command until a health ping succeeds again (the cluster probes every 0.5 s)."""
        return self._down_since is None

    # -- outage bookkeeping ---------------------------------------------------------------------------

    def _mark_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            reason = type(exc).__name__
            logger.warning("shared state (Redis) unreachable (%s); working on what this instance knows", reason)

    def _mark_up(self) -> None:
        if self._down_since is not None:
            logger.warning("shared state (Redis) reachable again after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None

    async def _run(self, operation: Callable[[], Awaitable[T]], *, proves_up: bool = False) -> T:
        """Run one operation within a bound; an unreachable store is :class:`StateUnavailable`. Only a ping
        (``proves_up``) ends an outage: another command may seem to succeed without reaching the server
        (seen right after a restart), which would log a return and a new outage within milliseconds."""
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(self.timeout * 2 + 0.5):
                result = await operation()
        except _UNREACHABLE as exc:
            _resurface_cancel(task, cancelling)
            self._mark_down(exc)
            raise StateUnavailable() from None
        _resurface_cancel(task, cancelling)
        if proves_up:
            self._mark_up()
        return result

    # -- keys -----------------------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def _map_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}map:{check_namespace(namespace)}:{key}"

    def _version_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}ver:{namespace}:{key}"

    # -- locks ----------------------------------------------------------------------------------------

    def lock(self, name: str, ttl: float) -> StateLock:
        return StateLock(self, name, ttl)

    async def _lock_acquire(self, name: str, token: str, ttl: float) -> bool:
        key = self._key("lock", name)
        return bool(await self._run(lambda: self._client.set(key, token, nx=True, px=_ms(ttl))))

    async def _lock_extend(self, name: str, token: str, ttl: float) -> bool:
        keys = [self._key("lock", name)]
        return bool(await self._run(lambda: self._extend(keys=keys, args=[token, _ms(ttl)])))

    async def _lock_release(self, name: str, token: str) -> bool:
        keys = [self._key("lock", name)]
        return bool(await self._run(lambda: self._release(keys=keys, args=[token])))

    # -- counters -------------------------------------------------------------------------------------

    async def incr(self, name: str, by: int = 1, ttl: float | None = None) -> int:
        keys = [self._key("ctr", name)]
        return int(await self._run(lambda: self._incr(keys=keys, args=[by, _ms(ttl)])))

    async def get_counter(self, name: str) -> int:
        value = await self._run(lambda: self._client.get(self._key("ctr", name)))
        return int(value) if value is not None else 0

    # -- maps -----------------------------------------------------------------------------------------

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        map_key, version_key = self._map_key(namespace, key), self._version_key(namespace, key)

        async def write() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(map_key, value, px=_ms(ttl) or None)
                pipe.delete(version_key)
                await pipe.execute()

        await self._run(write)

    async def put_if_newer(
        self, namespace: str, key: str, value: bytes, version: int, ttl: float | None = None
    ) -> bool:
        keys = [self._map_key(namespace, key), self._version_key(namespace, key)]
        return bool(await self._run(lambda: self._put_if_newer(keys=keys, args=[value, int(version), _ms(ttl)])))

    async def get(self, namespace: str, key: str) -> bytes | None:
        map_key = self._map_key(namespace, key)
        value = await self._run(lambda: self._client.get(map_key))
        return _as_bytes(value) if value is not None else None

    async def get_with_ttl(self, namespace: str, key: str) -> tuple[bytes | None, float | None]:
        map_key = self._map_key(namespace, key)

        async def read() -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(map_key)
                pipe.pttl(map_key)
                result: list[Any] = await pipe.execute()
                return result

        value, pttl = await self._run(read)
        if value is None:
            return None, None
        return value, (pttl / 1000 if pttl is not None and pttl >= 0 else None)

    async def delete(self, namespace: str, key: str) -> bool:
        map_key, version_key = self._map_key(namespace, key), self._version_key(namespace, key)

        async def remove() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(map_key)
                pipe.delete(version_key)
                result: list[Any] = await pipe.execute()
                return result

        return bool((await self._run(remove))[0])

    async def scan(self, namespace: str) -> dict[str, bytes]:
        start = self._map_key(namespace, "")
        pattern = _glob_escape(start) + "*"

        async def collect() -> dict[str, bytes]:
            keys = [key async for key in self._client.scan_iter(match=pattern, count=1000)]
            found: dict[str, bytes] = {}
            for offset in range(0, len(keys), 500):
                batch = keys[offset : offset + 500]
                for key, value in zip(batch, await self._client.mget(batch), strict=True):
                    if value is not None:  # expired between SCAN and MGET
                        found[key.decode()[len(start) :]] = _as_bytes(value)
            return found

        return await self._run(collect)

    # -- pub/sub --------------------------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> int:
        return int(await self._run(lambda: self._client.publish(self._key("ch", channel), message)))

    async def subscribe(self, channel: str) -> RedisSubscription:
        pubsub = self._client.pubsub()

        async def start() -> None:
            await pubsub.subscribe(self._key("ch", channel))

        try:
            await self._run(start)
        except StateUnavailable:
            await RedisSubscription(self, pubsub).close()
            raise
        return RedisSubscription(self, pubsub)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def health(self) -> bool:
        try:
            await self._run(lambda: self._client.ping(), proves_up=True)
        except (StateUnavailable, RedisError):
            return False
        return True

    async def close(self) -> None:
        await self._client.aclose()
