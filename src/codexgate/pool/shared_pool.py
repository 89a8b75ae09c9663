"""One pool across the instances of a cluster: account states, sticky sessions and content bindings in Redis.

Built only when ``state_url`` is set (imported lazily by the app); without it nothing here runs. The router
keeps reading this process's own :class:`AccountState` objects and maps — :class:`SharedPool` keeps them in
step with the other instances:

* **Account states** — the shared groups of fields (:mod:`codexgate.pool.shared_fields`: health, errors,
  windows). When this instance changes one (:meth:`SharedPool.changed`, called by the upstream layer after
  each answer that changes an account; and a check of every account every ``check_interval`` seconds, which
  catches what the registry applied — an operator's pause or resume), the group gets a version (unix ms ×
  1000 + a per-instance tie-break, and always above the newest version seen for it) and is written in the
  background with ``put_if_newer`` (so an older version never replaces a newer one) and a TTL, then
  published on the ``pool-state`` channel: every other instance applies it to its own object at once. At
  start, on every (re)subscription, on ``cluster.on_reconnect`` and every ``sync_interval`` seconds the
  instance scans every stored group, applies the newer ones, and writes back what it holds that the store
  lacks (a Redis restarted empty gets the newest versions the instances know back).
* **Sessions** — a session bound to an account (router's ``on_session``) is written to the ``sessions``
  map (key: a hash of the scoped session key; TTL: the router's session TTL, refreshed as the session
  goes on); before routing, the request's session is read through ``cluster.cache`` (memory when known,
  invalidated by pub/sub when another instance rebinds it) and seeds the router.
* **Content** — content keys the router remembers (``on_content``) are written to the ``content`` map in
  the background; before routing, the request's content keys unknown here are read through the cache.

Redis down: nothing on the request path waits on it (lookups are skipped while the store is known to be
unreachable, and bounded by ``lookup_timeout`` otherwise) and nothing raises; writes wait in memory
(bounded) and go out when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from codexgate.pool.accounts import AccountState
from codexgate.pool.router import Router
from codexgate.pool.shared_fields import GROUPS, apply_group, snapshot, snapshots
from codexgate.pool.sticky import BoundedTTLMap
from codexgate.state.interface import StateUnavailable

if TYPE_CHECKING:
    from codexgate.state.cluster import Cluster

__all__ = ["CONTENT_NAMESPACE", "SESSIONS_NAMESPACE", "STATES_CHANNEL", "STATES_NAMESPACE", "SharedPool"]

logger = logging.getLogger("codexgate.pool")

STATES_NAMESPACE: Final = "pool-state"
STATES_CHANNEL: Final = "pool-state"
SESSIONS_NAMESPACE: Final = "sessions"
CONTENT_NAMESPACE: Final = "content"
STATE_TTL_SECONDS: Final = 7 * 24 * 3600.0
CHECK_INTERVAL_SECONDS: Final = 0.25
SYNC_INTERVAL_SECONDS: Final = 2.0
LOOKUP_TIMEOUT_SECONDS: Final = 0.25
RETRY_SECONDS: Final = 0.25
#: writes kept while the store is unreachable (the oldest go first past this)
PENDING_MAX: Final = 20_000
#: unknown content keys of one request looked up (the newest)
LOOKUP_MAX: Final = 64
_WRITE_BATCH: Final = 32


@dataclass(slots=True)
class _Record:
    version: int
    fields: dict[str, Any]


def session_slot(session_key: str) -> str:
    """The session's key in the shared map (a hash: the scoped session key itself never leaves the process)."""
    return hashlib.sha256(session_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SharedPool:
    """Keeps this instance's account states, sessions and content bindings in step with the cluster."""

    def __init__(
        self,
        cluster: Cluster,
        accounts: Callable[[], Mapping[str, AccountState]],
        router: Router,
        *,
        clock: Callable[[], float] = time.time,
        check_interval: float = CHECK_INTERVAL_SECONDS,
        sync_interval: float = SYNC_INTERVAL_SECONDS,
        state_ttl: float = STATE_TTL_SECONDS,
        lookup_timeout: float = LOOKUP_TIMEOUT_SECONDS,
    ) -> None:
        self.cluster = cluster
        self.router = router
        self._accounts = accounts
        self._clock = clock
        self.check_interval = check_interval
        self.sync_interval = sync_interval
        self.state_ttl = state_ttl
        self.lookup_timeout = lookup_timeout
        self.origin = secrets.token_hex(8)
        self._tiebreak = secrets.randbelow(1000)
        self._records: dict[tuple[str, str], _Record] = {}
        self._synced: dict[str, tuple[AccountState, dict[str, dict[str, Any]]]] = {}
        self._unwritten: dict[tuple[str, str], None] = {}  # an ordered set
        self._sessions_pending: dict[str, str] = {}
        self._sessions_written: BoundedTTLMap[str, tuple[str, float]] = BoundedTTLMap(
            router.sessions.max_entries, router.sessions.ttl
        )
        self._content_pending: dict[str, str] = {}
        self._content_written: BoundedTTLMap[str, str] = BoundedTTLMap(router.content.max_entries, router.content.ttl)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loaded = False
        self._resync_due = False
        self.subscribed = False
        #: groups applied from other instances (tests and diagnostics)
        self.applied = 0

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Install the router hooks, read the shared states once (an outage is not fatal), start the tasks."""
        self.router.on_session = self._session_bound
        self.router.on_content = self._content_remembered
        with contextlib.suppress(StateUnavailable):
            if self.cluster.available:
                await self.resync()
        self.cluster.on_reconnect(self._resync_soon)
        for name, work in (("listen", self._listen), ("write", self._write_loop), ("tick", self._tick)):
            self._tasks.append(asyncio.create_task(work(), name=f"codexgate-shared-pool-{name}"))

    async def close(self) -> None:
        """Stop the tasks; what is still unwritten gets one bounded try."""
        if self.router.on_session == self._session_bound:
            self.router.on_session = None
        if self.router.on_content == self._content_remembered:
            self.router.on_content = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.cluster.available and self._has_pending():
            with contextlib.suppress(StateUnavailable, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._write_all()

    # -- account states -------------------------------------------------------------------------------

    def changed(self, account: AccountState) -> None:
        """The upstream layer changed ``account`` (health, backoff, windows): share what changed, now."""
        self._check(account.key, account)

    def _check(self, key: str, state: AccountState) -> None:
        entry = self._synced.get(key)
        if entry is None or entry[0] is not state:
            self._adopt(key, state)
            return
        known = entry[1]
        for group in GROUPS:
            current = snapshot(state, group)
            if current != known[group]:
                known[group] = current
                self._publish(key, group, current)

    def _adopt(self, key: str, state: AccountState) -> None:
        """A local object seen for the first time: give it the newest shared groups known."""
        for group in GROUPS:
            record = self._records.get((group, key))
            if record is not None:
                apply_group(state, group, record.fields)
        self._synced[key] = (state, snapshots(state))

    def _publish(self, key: str, group: str, fields: dict[str, Any], version: int | None = None) -> None:
        slot = (group, key)
        known = self._records.get(slot)
        if version is None:
            version = int(self._clock() * 1000) * 1000 + self._tiebreak
            if known is not None and version <= known.version:
                version = known.version + 1
        self._records[slot] = _Record(version, fields)
        self._unwritten[slot] = None
        self._wake.set()

    def _receive(self, group: str, key: str, version: int, fields: dict[str, Any]) -> None:
        """A group another instance wrote: applied when newer than what this instance knows."""
        slot = (group, key)
        known = self._records.get(slot)
        if group not in GROUPS or (known is not None and known.version >= version):
            return
        self._records[slot] = _Record(version, fields)
        entry = self._synced.get(key)
        if entry is None:
            return  # not an account of this instance (yet): adopted when it appears
        state, synced = entry
        current = snapshot(state, group)
        if current != synced[group]:  # changed here and not shared yet (a pause): that is the newer change
            synced[group] = current
            self._publish(key, group, current)
            return
        apply_group(state, group, fields)
        synced[group] = snapshot(state, group)
        self.applied += 1

    def _on_message(self, message: bytes) -> None:
        try:
            record = orjson.loads(message)
        except orjson.JSONDecodeError:
            return
        if not isinstance(record, dict) or record.get("o") == self.origin:
            return
        self._take(record)

    def _take(self, record: Mapping[str, Any]) -> None:
        group, key, version, fields = record.get("g"), record.get("k"), record.get("v"), record.get("f")
        if isinstance(group, str) and isinstance(key, str) and isinstance(version, int) and isinstance(fields, dict):
            self._receive(group, key, version, fields)

    def check_all(self) -> None:
        """Compare every local account with what was last shared; share the differences."""
        for key, state in self._accounts().items():
            self._check(key, state)

    async def resync(self) -> None:
        """Read every stored group, apply the newer ones, write back what the store lacks (raises
        :class:`StateUnavailable`)."""
        stored = await self.cluster.state.scan(STATES_NAMESPACE)
        present: set[tuple[str, str]] = set()
        for raw in stored.values():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(raw)
                if isinstance(record, dict):
                    self._take(record)
                    group, key = record.get("g"), record.get("k")
                    if isinstance(group, str) and isinstance(key, str):
                        present.add((group, key))
        self._loaded = True
        accounts = self._accounts()
        for key, state in accounts.items():
            self._check(key, state)
        for slot in self._records:
            if slot not in present:
                self._unwritten[slot] = None  # expired, or the store restarted empty: the newest known goes back
        for key, state in accounts.items():
            for group in GROUPS:
                if (group, key) not in self._records:
                    self._publish(key, group, snapshot(state, group), version=1)  # any real change wins over it
        await self._write_all()

    async def _resync_soon(self) -> None:
        """The store answers again: resync on this pool's own task (never on the cluster's prober)."""
        self._resync_due = True

    # -- sessions and content -------------------------------------------------------------------------

    def _session_bound(self, session_key: str, account_key: str, now: float) -> None:
        written = self._sessions_written.get(session_key, now)
        if written is not None and written[0] == account_key and now - written[1] < self.router.sessions.ttl / 4:
            return
        self._sessions_written.put(session_key, (account_key, now), now)
        self._sessions_pending.pop(session_key, None)
        self._sessions_pending[session_key] = account_key
        _bound(self._sessions_pending)
        self._wake.set()

    def _seed_session(self, session_key: str, bound: str, now: float) -> None:
        """The binding the store holds for a session: the router follows it; its TTL there is refreshed while the
        session goes on (at most every quarter of the TTL)."""
        if self.router.sessions.get(session_key, now) != bound:
            self.router.sessions.put(session_key, bound, now)
        written = self._sessions_written.get(session_key, now)
        if written is None or written[0] != bound:
            self._sessions_written.put(session_key, (bound, now), now)
        elif now - written[1] >= self.router.sessions.ttl / 4:
            self._session_bound(session_key, bound, now)

    def _content_remembered(self, keys: tuple[str, ...], account_key: str, now: float) -> None:
        added = False
        for key in keys:
            if self._content_written.get(key, now) == account_key:
                continue
            self._content_written.put(key, account_key, now)
            self._content_pending[key] = account_key
            added = True
        if added:
            _bound(self._content_pending)
            self._wake.set()

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
        if session_key is not None and session_key not in self._sessions_pending:
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
            if account is not None and session_key not in self._sessions_pending:
                self._seed_session(session_key, account.decode(), now)
        for key, account in zip(unknown, found, strict=True):
            if account is not None:
                router.content.put(key, account.decode(), now)
                self._content_written.put(key, account.decode(), now)

    # -- background work ------------------------------------------------------------------------------

    def _has_pending(self) -> bool:
        return bool(self._unwritten or self._sessions_pending or self._content_pending)

    async def _write_all(self) -> None:
        """Write what is pending (raises :class:`StateUnavailable`; what was not written stays pending)."""
        state, cache = self.cluster.state, self.cluster.cache
        while self._unwritten:
            slot = next(iter(self._unwritten))
            record = self._records[slot]
            group, key = slot
            value = orjson.dumps({"g": group, "k": key, "v": record.version, "o": self.origin, "f": record.fields})
            name = f"{group}/{key}"
            written = await state.put_if_newer(STATES_NAMESPACE, name, value, record.version, self.state_ttl)
            if self._records.get(slot) is record:
                self._unwritten.pop(slot, None)
            if written:
                await state.publish(STATES_CHANNEL, value)
        for pending, namespace, ttl, slot_of in (
            (self._sessions_pending, SESSIONS_NAMESPACE, self.router.sessions.ttl, session_slot),
            (self._content_pending, CONTENT_NAMESPACE, self.router.content.ttl, _same),
        ):
            while pending:
                batch = list(pending.items())[:_WRITE_BATCH]
                await asyncio.gather(
                    *(cache.put(namespace, slot_of(item), account.encode(), ttl) for item, account in batch)
                )
                for item, account in batch:  # pending until written: lookups leave a pending binding alone
                    if pending.get(item) == account:
                        del pending[item]

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._write_all()
            except StateUnavailable:
                _raise_if_cancelled()
                continue  # kept: written again on the next change, the next sync or the reconnect
            except Exception as exc:
                logger.warning("could not write the shared pool state: %s", type(exc).__name__)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_sync = loop.time() + self.sync_interval
        while True:
            await asyncio.sleep(self.check_interval)
            self.check_all()
            if loop.time() < next_sync and not self._resync_due:
                continue
            next_sync = loop.time() + self.sync_interval
            if self.reachable():
                self._resync_due = False
                with contextlib.suppress(StateUnavailable):
                    await self.resync()
                _raise_if_cancelled()

    async def _listen(self) -> None:
        while True:
            try:
                subscription = await self.cluster.state.subscribe(STATES_CHANNEL)
            except Exception:  # unreachable: try again shortly (the store logs the outage once)
                _raise_if_cancelled()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                with contextlib.suppress(StateUnavailable):
                    await self.resync()  # whatever was published while not subscribed
                _raise_if_cancelled()
                self.subscribed = True
                async for message in subscription:
                    self._on_message(message)
            except Exception as exc:
                if not isinstance(exc, StateUnavailable):
                    logger.warning("shared pool listener lost its subscription: %s", type(exc).__name__)
            finally:
                self.subscribed = False
                await subscription.close()
            _raise_if_cancelled()
            await asyncio.sleep(RETRY_SECONDS)


def _raise_if_cancelled() -> None:
    """Re-raise a cancellation a store error stood in for (a cancelled Redis call may end as a connection
    error): a task being stopped must stop, not carry on as if the store were merely down."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _same(key: str) -> str:
    return key


def _bound(pending: dict[str, str]) -> None:
    while len(pending) > PENDING_MAX:
        pending.pop(next(iter(pending)))
