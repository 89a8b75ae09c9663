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
* **Sessions** (:mod:`codexgate.pool.shared_bindings`) — a session bound to an account (router's
  ``on_session``) is written to the ``sessions`` map (key: a hash of the scoped session key; TTL: the
  router's session TTL, refreshed as the session goes on); before routing, the request's session is read
  through ``cluster.cache`` (memory when known, invalidated by pub/sub when another instance rebinds it)
  and seeds the router.
* **Content** — content keys the router remembers (``on_content``) are written to the ``content`` map in
  the background; before routing, the request's content keys unknown here are read through the cache.

Redis down: nothing on the request path waits on it (lookups are skipped while the store is known to be
unreachable, and bounded by ``lookup_timeout`` otherwise) and nothing raises; writes wait in memory
(bounded) and go out when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from codexgate.pool.accounts import AccountState
from codexgate.pool.router import Router
from codexgate.pool.shared_bindings import CONTENT_NAMESPACE, LOOKUP_TIMEOUT_SECONDS, SESSIONS_NAMESPACE, SharedBindings
from codexgate.pool.shared_fields import GROUPS, apply_group, snapshot, snapshots
from codexgate.state.interface import StateUnavailable

if TYPE_CHECKING:
    from codexgate.state.cluster import Cluster

__all__ = [
    "CONTENT_NAMESPACE",
    "SESSIONS_NAMESPACE",
    "STATES_CHANNEL",
    "STATES_NAMESPACE",
    "SharedPool",
    "set_paused_in_store",
]

logger = logging.getLogger("codexgate.pool")

STATES_NAMESPACE: Final = "pool-state"
STATES_CHANNEL: Final = "pool-state"
STATE_TTL_SECONDS: Final = 7 * 24 * 3600.0
CHECK_INTERVAL_SECONDS: Final = 0.25
SYNC_INTERVAL_SECONDS: Final = 2.0
RETRY_SECONDS: Final = 0.25


@dataclass(slots=True)
class _Record:
    version: int
    fields: dict[str, Any]


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
        self._wake = asyncio.Event()
        self.bindings = SharedBindings(cluster, router, self._wake.set, clock=clock, lookup_timeout=lookup_timeout)
        self._tasks: list[asyncio.Task[None]] = []
        self._loaded = False
        self._resync_due = False
        self.subscribed = False
        #: groups applied from other instances (tests and diagnostics)
        self.applied = 0

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Install the router hooks, read the shared states once (an outage is not fatal), start the tasks."""
        self.bindings.install()
        with contextlib.suppress(StateUnavailable):
            if self.cluster.available:
                await self.resync()
        self.cluster.on_reconnect(self._resync_soon)
        for name, work in (("listen", self._listen), ("write", self._write_loop), ("tick", self._tick)):
            self._tasks.append(asyncio.create_task(work(), name=f"codexgate-shared-pool-{name}"))

    async def close(self) -> None:
        """Stop the tasks; what is still unwritten gets one bounded try."""
        self.bindings.uninstall()
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

    async def before_route(
        self, session_key: str | None, reasoning_keys: Iterable[str] = (), compaction_keys: Iterable[str] = ()
    ) -> None:
        """Seed the router with the request's shared session and content bindings (never raises)."""
        await self.bindings.before_route(session_key, reasoning_keys, compaction_keys)

    # -- background work ------------------------------------------------------------------------------

    def _has_pending(self) -> bool:
        return bool(self._unwritten) or self.bindings.pending

    async def _write_all(self) -> None:
        """Write what is pending (raises :class:`StateUnavailable`; what was not written stays pending)."""
        state = self.cluster.state
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
        await self.bindings.write()

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
            if self.bindings.reachable():
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


async def set_paused_in_store(
    cluster: Cluster, key: str, paused: bool, *, clock: Callable[[], float] = time.time
) -> None:
    """``accounts pause/resume`` from a home where no server runs (a one-off container): write the account's
    health group with the operator's change, under a version newer than the stored one, and publish it, so
    every instance applies it at once. Raises :class:`StateUnavailable` when the store cannot be reached."""
    from codexgate.pool import health

    account_id, _, user_id = key.partition(":")
    state = AccountState(chatgpt_account_id=account_id, user_id=user_id or "-", alias=key)
    name, stored_version = f"health/{key}", 0
    raw = await cluster.state.get(STATES_NAMESPACE, name)
    with contextlib.suppress(orjson.JSONDecodeError):
        record = orjson.loads(raw) if raw is not None else None
        if isinstance(record, dict) and isinstance(record.get("f"), dict) and isinstance(record.get("v"), int):
            apply_group(state, "health", record["f"])
            stored_version = record["v"]
    (health.pause if paused else health.resume)(state)
    version = max(int(clock() * 1000) * 1000, stored_version + 1)
    fields = snapshot(state, "health")
    value = orjson.dumps({"g": "health", "k": key, "v": version, "o": "cli", "f": fields})
    if await cluster.state.put_if_newer(STATES_NAMESPACE, name, value, version, STATE_TTL_SECONDS):
        await cluster.state.publish(STATES_CHANNEL, value)


def _raise_if_cancelled() -> None:
    """Re-raise a cancellation a store error stood in for (a cancelled Redis call may end as a connection
    error): a task being stopped must stop, not carry on as if the store were merely down."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
