"""API keys shared by every instance of a gateway through Redis (``state_url``): :class:`SharedKeyStore`.

It has :class:`~codexgate.storage.api_keys.KeyStore`'s API (``has_keys``/``verify``/``list``/``get``/
``create``/``update``/``revoke``) and keeps the same document: the keys' ids, names, dates, limits and
SHA-256 hashes — never a key. Layout under the key prefix (default ``codexgate:``):

* ``keys:doc`` — the keys document (the same JSON as ``keys.json``);
* ``keys:rev`` — its revision, an integer raised by one on every write;
* channel ``ch:keys-changed`` — the new revision, published by every write.

Every write is one Lua script that stores the document only if the revision is still the one the writer
read (compare-and-set), so the CLI (a sync process), the console (a server thread) and several instances
can change keys at the same time without losing a change; a writer that lost the race reads again.

Reading: a server keeps the whole document in memory (the *mirror*), so :meth:`SharedKeyStore.verify` and
:meth:`SharedKeyStore.has_keys` stay synchronous and free. The mirror is reloaded when a change is
published (every instance refuses a revoked key within milliseconds), after the channel is subscribed
again, when the store returns after an outage, and every ``reload_interval`` seconds (2 by default)
whatever happens — a missed message costs at most that.

Redis down: the last mirror keeps answering, so a key revoked before the outage stays refused and a key
the mirror does not know is refused (fail closed). An instance that never loaded a mirror answers every
keyed request with 503 ``state_unavailable`` (``has_keys`` is then True, so nothing falls open).

First start: when Redis holds no keys document, the local ``keys.json`` (if any) is imported, once — it is
never written over existing keys. Should Redis lose its data (a restart without persistence), the first
instance that notices writes its mirror back, so the keys in use survive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from codexgate.state.interface import StateUnavailable
from codexgate.storage.api_keys import (
    KeyInfo,
    KeyStore,
    KeyStoreError,
    StoredKey,
    add_key,
    find_key,
    lookup,
    parse_keys,
    remove_key,
    serialize_keys,
    set_limits,
    validate_name,
)
from codexgate.storage.key_limits import NO_LIMITS, KeyLimits

if TYPE_CHECKING:
    from codexgate.config import Settings
    from codexgate.state.interface import SharedState, Subscription

__all__ = ["CHANGE_CHANNEL", "RELOAD_INTERVAL", "SharedKeyStore"]

logger = logging.getLogger("codexgate.keys")

CHANGE_CHANNEL = "keys-changed"
RELOAD_INTERVAL = 2.0
_WRITE_ATTEMPTS = 50
_T = TypeVar("_T")
_Infos = list[KeyInfo]
_Keys = list[StoredKey]  # named here: inside the class, ``list`` is a method

#: KEYS: document, revision; ARGV: expected revision, new document, channel. The new revision, or 0.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[1] then return 0 end
local revision = tonumber(current) + 1
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], revision)
redis.call('PUBLISH', ARGV[3], revision)
return revision
"""


class SharedKeyStore(KeyStore):
    """The keys in Redis, mirrored in memory (see the module docstring).

    ``path`` is the local ``keys.json``, only read to import it when Redis has no keys yet. A server calls
    :meth:`start` (and :meth:`close`); a command-line process just calls the methods (each reads Redis).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "codexgate:",
        path: Path | None = None,
        reload_interval: float = RELOAD_INTERVAL,
        timeout: float = 1.0,
    ) -> None:
        super().__init__(path or Path("/nonexistent/keys.json"))
        self.import_path = path
        self.prefix = prefix
        self.reload_interval = reload_interval
        self._doc_key = f"{prefix}keys:doc"
        self._rev_key = f"{prefix}keys:rev"
        self._channel = f"{prefix}ch:{CHANGE_CHANNEL}"
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._script = self._client.register_script(_COMPARE_AND_SET)
        self._mirror: tuple[StoredKey, ...] | None = None  # None: never loaded
        self._revision = 0
        self._io_lock = threading.Lock()  # a read and the mirror it installs, or a whole write, at a time
        self._wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._outage_logged = False
        self._closing = False
        self._subscription: Subscription | None = None
        # its own thread: the default executor may be busy with other parts' long blocking work
        self._reload_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="codexgate-keys")

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SharedKeyStore:
        url = settings.state.state_url
        if not url:
            raise ValueError("a shared key store needs state_url")
        return cls(url, prefix=settings.state.state_prefix, path=settings.keys_file, **options)

    @property
    def loaded(self) -> bool:
        """Whether a mirror was ever loaded (until then every keyed request gets 503)."""
        return self._mirror is not None

    # ---- reading (server hot path: memory only) -------------------------------------------------

    def has_keys(self) -> bool:
        mirror = self._mirror
        return True if mirror is None else bool(mirror)

    def verify(self, presented: str) -> KeyInfo | None:
        mirror = self._mirror
        if mirror is None:
            raise StateUnavailable("API keys could not be loaded from the shared state yet")
        return find_key(mirror, presented)

    def get(self, name_or_id: str) -> KeyInfo | None:
        mirror = self._mirror
        return lookup(mirror, name_or_id) if mirror is not None else None

    def mirrored(self) -> _Infos:
        """The keys of the mirror, without reading Redis (for the budget refresh)."""
        return [stored.info for stored in self._mirror or ()]

    def list(self) -> _Infos:
        """The keys as Redis has them now; the mirror when Redis cannot be reached but one was loaded."""
        try:
            self.load()
        except KeyStoreError:
            if self._mirror is None:
                raise
        return [stored.info for stored in self._mirror or ()]

    # ---- writing (CLI, console) -----------------------------------------------------------------

    def create(self, name: str, limits: KeyLimits = NO_LIMITS) -> str:
        name = validate_name(name)
        return self._write(lambda keys: add_key(keys, name, limits, time.time()))

    def update(self, name_or_id: str, limits: KeyLimits) -> KeyInfo:
        return self._write(lambda keys: set_limits(keys, name_or_id, limits))

    def revoke(self, name_or_id: str) -> bool:
        return self._write(lambda keys: remove_key(keys, name_or_id))

    def _write(self, change: Callable[[_Keys], _T]) -> _T:
        with self._io_lock, self._reachable():
            for _ in range(_WRITE_ATTEMPTS):
                revision, keys = self._read()
                if keys is None:  # nothing in Redis yet: what this instance knows, else keys.json
                    keys = list(self._mirror) if self._mirror else self._local_keys()
                result = change(keys)
                written = self._compare_and_set(revision, keys)
                if written:
                    self._install(written, keys)
                    return result
            raise KeyStoreError("the keys in the shared state kept changing; try again")

    # ---- Redis ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise KeyStoreError(f"the shared state (Redis) is unreachable ({type(exc).__name__}); try again") from None

    def _read(self) -> tuple[int, _Keys | None]:
        document, raw_revision = self._client.mget(self._doc_key, self._rev_key)
        revision = int(raw_revision or 0)
        if document is None:
            return revision, None
        if self._mirror is not None and revision == self._revision:
            return revision, list(self._mirror)  # unchanged: no parsing
        try:
            return revision, parse_keys(document if isinstance(document, bytes) else str(document).encode())
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError("the keys document in the shared state is not valid") from exc

    def _compare_and_set(self, expected: int, keys: Sequence[StoredKey]) -> int:
        result = self._script(
            keys=[self._doc_key, self._rev_key], args=[str(expected), serialize_keys(keys), self._channel]
        )
        return int(result)

    def _install(self, revision: int, keys: Sequence[StoredKey]) -> None:
        if self._mirror is None or revision != self._revision:
            if self._mirror is None or len(keys) != len(self._mirror):
                logger.info("API keys loaded from the shared state: %d key(s)", len(keys))
            self._mirror = tuple(keys)
            self._revision = revision

    def _local_keys(self) -> _Keys:
        if self.import_path is None or not self.import_path.exists():
            return []
        try:
            return parse_keys(self.import_path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"{self.import_path} is not a valid keys file; fix or remove it") from exc

    def load(self) -> None:
        """Read the keys from Redis into the mirror (importing ``keys.json`` or restoring the mirror when
        Redis has none); :class:`KeyStoreError` when Redis cannot be reached."""
        with self._io_lock, self._reachable():
            revision, keys = self._read()
            if keys is not None:
                self._install(revision, keys)
                return
            seed = list(self._mirror) if self._mirror else self._local_keys()
            if not seed:
                self._install(revision, [])
                return
            written = self._compare_and_set(revision, seed)
            if written:
                what = "restored this instance's copy of" if self._mirror else f"imported {self.import_path}:"
                logger.warning("the shared state had no API keys: %s %d key(s)", what, len(seed))
                self._install(written, seed)
                return
            revision, keys = self._read()  # another writer was first
            if keys is not None:
                self._install(revision, keys)

    # ---- server: keep the mirror current --------------------------------------------------------

    async def start(self, state: SharedState | None = None) -> None:
        """Load the mirror (an unreachable store is not fatal: keyed requests get 503 until it loads), then
        follow changes: the ``keys-changed`` channel through ``state``, and a reload every ``reload_interval``."""
        await self.reload()
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._reloader(), name="codexgate-keys-reloader"))
        if state is not None:
            self._tasks.append(asyncio.create_task(self._listen(state), name="codexgate-keys-listener"))

    async def close(self) -> None:
        self._closing = True
        if self._subscription is not None:  # ends its iteration even if a cancel is swallowed inside redis-py
            with contextlib.suppress(Exception):
                await self._subscription.close()
        for _ in range(3):
            pending = [task for task in self._tasks if not task.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=2.0)
        self._tasks.clear()
        self._reload_thread.shutdown(wait=False)
        self.close_client()

    def close_client(self) -> None:
        """Close the connections of the sync client (what a command-line use opened)."""
        self._client.close()

    def request_reload(self) -> None:
        """Ask the reloader to read Redis now (a change message, a reconnect)."""
        self._wanted.set()

    async def resync(self) -> None:
        """For :meth:`Cluster.on_reconnect`."""
        self.request_reload()

    async def reload(self) -> bool:
        """Load the mirror in a thread; False (logged once per outage) when Redis cannot be reached."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._reload_thread, self.load)
        except KeyStoreError as exc:
            if not self._outage_logged:
                self._outage_logged = True
                logger.warning("API keys not reloaded from the shared state: %s", exc)
            return False
        if self._outage_logged:
            self._outage_logged = False
            logger.warning("API keys reloaded from the shared state")
        return True

    async def _reloader(self) -> None:
        while not self._closing:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the event
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reload_interval):
                    await self._wanted.wait()
            self._wanted.clear()
            await self.reload()

    async def _listen(self, state: SharedState) -> None:
        while not self._closing:
            try:
                async with await state.subscribe(CHANGE_CHANNEL) as subscription:
                    self._subscription = subscription
                    self.request_reload()  # changes made while not subscribed
                    async for _revision in subscription:
                        self.request_reload()
            except Exception as exc:  # StateUnavailable, or a store error: retry, never let the listener die
                if not isinstance(exc, StateUnavailable) and not self._closing:
                    logger.warning("keys listener lost its subscription: %s", type(exc).__name__)
            finally:
                self._subscription = None
            await asyncio.sleep(0.25)
