"""The pool's side of the shared state (``state_url``): accounts imported into the store, listed from it.

:class:`SharedAccounts` is what :class:`codexgate.pool.registry.AccountRegistry` holds when it is given a
:class:`~codexgate.state.cluster.Cluster` (this module and the state modules are imported only then):

- **Import**: every credential file the registry finds on disk (``auth.json``, ``accounts/*.json``, the
  Codex CLI's file) is stored into the shared store with ``put_if_newer`` — at start, and again whenever
  the file changes — so a newer file replaces older stored credentials and an older one never does. A file
  that could not be imported (store unreachable) is tried again every ``sync_interval``.
- **Listing**: every ``sync_interval`` (1 s) and right after the store returns from an outage (when each
  account's newest document known here is stored again, in case the store came back empty), the
  store's accounts are scanned; the registry lists the union of these and its files, so an instance with
  an empty home serves the accounts the others imported. The scan also hands each account's sealed
  document to its manager (a resync that does not depend on pub/sub). An account gone from the store and
  from this home was removed (``accounts remove``): its manager is dropped, so no later refill stores it
  again.
- **Credentials**: one :class:`~codexgate.pool.shared_tokens.SharedTokenManager` per account key.
- A document sealed under a key this instance does not have is skipped, with one log line per document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codexgate.auth.credentials import CredentialFileError, read_document
from codexgate.auth.oauth_client import OAuthClient
from codexgate.pool.account_files import AccountFile, FileStamp, file_stamp, identity
from codexgate.pool.shared_tokens import SharedTokenManager
from codexgate.state.interface import StateUnavailable
from codexgate.state.secrets_box import SecretBoxError

if TYPE_CHECKING:
    import httpx

    from codexgate.state.cluster import Cluster

__all__ = ["SharedAccount", "SharedAccounts"]

logger = logging.getLogger("codexgate.pool")

SYNC_INTERVAL_SECONDS = 1.0
#: a marker written once per store: its absence means the store lost what it held
GENERATION_NAMESPACE = "cluster"
GENERATION_KEY = "generation"


@dataclass(frozen=True, slots=True)
class SharedAccount:
    """An account as the shared store knows it (from its document's token claims)."""

    key: str
    chatgpt_account_id: str
    user_id: str
    email: str | None
    plan: str | None
    version: int


class SharedAccounts:
    """Imports, lists and serves the credentials of the accounts in the shared store (module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        issuer: str,
        client_id: str,
        refresh_margin: float,
        http: Callable[[], httpx.AsyncClient],
        describe: Callable[[str], str],
        on_change: Callable[[], None],
        sync_interval: float = SYNC_INTERVAL_SECONDS,
    ) -> None:
        self.cluster = cluster
        self.issuer = issuer
        self.client_id = client_id
        self.refresh_margin = refresh_margin
        self.sync_interval = sync_interval
        self._http = http
        self._describe = describe
        self._on_change = on_change
        self.managers: dict[str, SharedTokenManager] = {}
        #: accounts in the store that this instance can open, by key
        self.remote: dict[str, SharedAccount] = {}
        self._files: dict[str, AccountFile] = {}
        self._imported: dict[Path, FileStamp] = {}
        self._unreadable_logged: set[tuple[str, bytes]] = set()
        self._syncer: asyncio.Task[None] | None = None
        self._pass_lock = asyncio.Lock()

    # ---- managers -----------------------------------------------------------------------------------
    def manager(self, key: str, source: Path | None = None) -> SharedTokenManager:
        """The account's manager (made on first use); ``source`` is its file on this instance, if any."""
        found = self.managers.get(key)
        if found is None:
            found = SharedTokenManager(
                key,
                self.cluster,
                OAuthClient(self.issuer, self.client_id, self._http()),
                refresh_margin=self.refresh_margin,
                source=source,
                describe=lambda: self._describe(key),
            )
            self.managers[key] = found
        elif source is not None:
            found.source = source
        return found

    # ---- files --------------------------------------------------------------------------------------
    def note_files(self, files: Mapping[str, AccountFile]) -> None:
        """The registry's current files (called on every rescan): changed ones are imported by the next pass."""
        self._files = dict(files)
        for key, found in files.items():
            self.manager(key, found.path)

    def _pending_files(self) -> list[tuple[AccountFile, FileStamp]]:
        pending: list[tuple[AccountFile, FileStamp]] = []
        for found in self._files.values():
            stamp = file_stamp(found.path)
            if stamp is not None and self._imported.get(found.path) != stamp:
                pending.append((found, stamp))
        return pending

    async def import_files(self) -> int:
        """Store every file that changed since its last import (never over newer credentials); how many
        replaced what the store held. Raises :class:`StateUnavailable` when the store cannot be reached."""
        replaced = 0
        for found, stamp in self._pending_files():
            try:
                document = read_document(found.path)
            except CredentialFileError as exc:
                logger.warning("skipping an unusable credential file: %s", exc)
                document = None
            if document is None:
                self._imported[found.path] = stamp
                continue
            manager = self.manager(found.key, found.path)
            manager.seed(document)
            if await self.cluster.credentials.store_credentials(found.key, document):
                replaced += 1
                with contextlib.suppress(StateUnavailable):
                    await self.cluster.cache.invalidate(self.cluster.credentials.namespace, found.key)
                logger.info("account %s: credentials from %s stored in the shared state", self._describe(found.key),
                            found.path.name)  # fmt: skip
            self._imported[found.path] = stamp
        return replaced

    # ---- the store's accounts -----------------------------------------------------------------------
    async def scan(self) -> bool:
        """Read every stored account, hand each manager its document; True when the list of accounts changed.

        Raises :class:`StateUnavailable` when the store cannot be reached."""
        stored = await self.cluster.state.scan(self.cluster.credentials.namespace)
        remote: dict[str, SharedAccount] = {}
        for key, sealed in stored.items():
            manager = self.manager(key, self._files[key].path if key in self._files else None)
            try:
                credentials = manager.observe(sealed)
            except SecretBoxError as exc:
                self._log_unreadable(key, sealed, exc)
                continue
            if credentials is None:
                continue
            account_id, sep, user_id = key.partition(":")  # the key names it (a refresh may drop claims)
            if not sep:
                account_id, user_id = identity(credentials)
            remote[key] = SharedAccount(
                key, account_id, user_id, credentials.email, credentials.plan_type, manager.version
            )
        for key in [key for key in self.managers if key not in stored and key not in self._files]:
            # gone from the store and from this home: removed (`accounts remove`), not to be stored again
            # by a later refill (the pass that finds the store emptied refills it before scanning)
            await self.managers.pop(key).discard()
        changed = remote != self.remote
        self.remote = remote
        return changed

    def _log_unreadable(self, key: str, sealed: bytes, exc: SecretBoxError) -> None:
        marker = (key, bytes(sealed[:48]))  # the format and key id: one line per document, not per scan
        if marker not in self._unreadable_logged:
            self._unreadable_logged.add(marker)
            logger.warning("shared credentials of one account are skipped: %s", exc)

    def reachable(self) -> bool:
        """Whether the shared store answered lately (the probe's view and the last command's)."""
        return self.cluster.available and bool(getattr(self.cluster.state, "available", True))

    # ---- the background pass ------------------------------------------------------------------------
    async def sync_once(self) -> None:
        """Import changed files, then rescan the store; tells the registry when its list must change.

        A store that lost everything (restarted without persistence: its generation marker is gone) first
        gets back what this instance knows, so that the scan does not read the empty store as "every
        account was removed" — which would answer requests "not signed in" until the refill."""
        async with self._pass_lock:
            try:
                if not await self._same_store():
                    await self._store_known()
                await self.import_files()
                changed = await self.scan()
            except StateUnavailable:
                return  # the store logs its outage once; the next pass tries again
            if changed:
                self._on_change()

    async def _same_store(self) -> bool:
        """False when the store's generation marker is missing (a new store, or one that lost its data);
        the marker is then written."""
        state = self.cluster.state
        if await state.get(GENERATION_NAMESPACE, GENERATION_KEY) is not None:
            return True
        await state.put(GENERATION_NAMESPACE, GENERATION_KEY, secrets.token_hex(8).encode())
        return False

    async def _store_known(self) -> None:
        """Store again each account's newest document known here (``put_if_newer``: never over a newer one)
        and import every file again on the next pass."""
        for manager in list(self.managers.values()):
            with contextlib.suppress(StateUnavailable):
                await manager.store_known()
        self._imported.clear()

    async def resync_after_outage(self) -> None:
        """The store answers again (a ``cluster.on_reconnect`` hook): put back what this instance knows, then
        rescan — so a store that came back empty holds every account again, with the newest tokens any
        instance kept, within one pass."""
        await self._store_known()
        await self.sync_once()

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync_once()
            except Exception as exc:  # a pass that fails must not end the loop
                logger.warning("shared accounts resync failed: %s", type(exc).__name__)

    async def start(self, files: Mapping[str, AccountFile]) -> None:
        """Import the files and read the store once (an unreachable store is not fatal), then keep syncing."""
        self.note_files(files)
        await self.sync_once()
        self.cluster.on_reconnect(self.resync_after_outage)
        if self._syncer is None:
            self._syncer = asyncio.create_task(self._sync_loop(), name="codexgate-shared-accounts")

    async def aclose(self) -> None:
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
            self._syncer = None
        for manager in self.managers.values():
            await manager.aclose()
