"""One pool account's credentials when several instances share them through the state store (``state_url``).

:class:`SharedTokenManager` is what :class:`codexgate.auth.refresh.TokenManager` is for one file, with the
shared store as the source of truth instead of the file:

- **Reads** come from memory. :meth:`SharedTokenManager.get` asks ``cluster.cache`` for the account's sealed
  document (a dict look-up once known; the cache drops the entry when any instance announces a write, by
  pub/sub) and keeps the decrypted copy of the sealed bytes it last opened, so a request costs neither a
  Redis round trip nor a decryption while nothing changed. The newest document seen wins: a copy is only
  replaced by one whose ``last_refresh`` is not older.
- **One refresh per account, cluster-wide**: an ``asyncio.Lock`` makes one task per instance try, then the
  cluster lock ``refresh:<account>`` (short ttl, extended while the refresh runs, so a crashed holder frees
  it within ttl). Under it the stored document is read again and used when another instance refreshed
  meanwhile; otherwise ``lock.check()`` is the last step before the single-use refresh token is spent. The
  new document is stored with ``put_if_newer`` (its ``last_refresh`` is later than the one it replaces,
  whatever the clocks say) and announced through the cache's invalidation channel.
- **Store unreachable**: nothing is refreshed (a refresh here could spend the token under another
  instance). A token that is still valid, even inside the margin, keeps serving; otherwise, and after an
  upstream 401, :class:`~codexgate.state.interface.StateUnavailable` (503 ``state_unavailable``). Tokens
  refreshed just before the store went away are kept here and stored as soon as it answers again.
- A permanent refresh failure is remembered for that refresh token, as ``TokenManager`` does.
- Nothing is ever written to a credential file: in this mode an account belongs to the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from codexgate.auth.credentials import Credentials, credentials_from
from codexgate.auth.jwt_claims import claims_of
from codexgate.auth.oauth_client import LOGIN_HINT, AuthError, OAuthClient, TokenSet
from codexgate.auth.refresh import SpentRefreshTokens
from codexgate.state.interface import LockLost, StateUnavailable
from codexgate.state.secrets_box import CredentialStore, SecretBoxError, version_of

if TYPE_CHECKING:
    from codexgate.state.cluster import Cluster

__all__ = ["SHARED_SOURCE", "SharedTokenManager", "refreshed_document"]

logger = logging.getLogger("codexgate.pool")

#: the ``source`` of credentials that came from the shared store and from no file of this instance
SHARED_SOURCE: Final = Path("<shared state>")
LOCK_TTL_SECONDS: Final = 6.0  # extended every 2 s while a refresh runs; a crashed holder's lapses
LOCK_WAIT_SECONDS: Final = 20.0
#: after the store failed, this long without trying it again from the request path (the prober watches it)
DOWN_BACKOFF_SECONDS: Final = 0.5
SAVE_RETRY_SECONDS: Final = 0.25


def _rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stamp_after(version: int, now: dt.datetime) -> str:
    """A ``last_refresh`` for a new document: now, or just after ``version`` when a clock is ahead of ours."""
    earliest = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=version + 1)
    moment = max(now, earliest)
    while version_of({"last_refresh": _rfc3339(moment)}) <= version:  # float rounding: make sure it is later
        moment += dt.timedelta(milliseconds=1)
    return _rfc3339(moment)


def refreshed_document(
    document: Mapping[str, Any], tokens: TokenSet, account_id: str | None, now: dt.datetime
) -> dict[str, Any]:
    """``document`` (auth.json-shaped) with the refreshed ``tokens`` and a ``last_refresh`` later than its own."""
    raw_tokens = document.get("tokens")
    new_tokens = dict(raw_tokens) if isinstance(raw_tokens, dict) else {}
    new_tokens["access_token"] = tokens.access_token
    if tokens.refresh_token is not None:
        new_tokens["refresh_token"] = tokens.refresh_token
    if tokens.id_token is not None:
        new_tokens["id_token"] = tokens.id_token
    account = account_id or claims_of(tokens.access_token, tokens.id_token).account_id
    if account:
        new_tokens["account_id"] = account
    updated = dict(document)
    updated.setdefault("OPENAI_API_KEY", None)
    updated["tokens"] = new_tokens
    updated["last_refresh"] = _stamp_after(version_of(document), now)
    return updated


class SharedTokenManager:
    """Credentials of one account, shared by every instance (see the module docstring).

    ``account`` is the pool's account key (also the key in the store); ``source`` the file this instance
    imported it from (None: known only from the store); ``describe`` names the account in logs (its alias).
    """

    def __init__(
        self,
        account: str,
        cluster: Cluster,
        oauth: OAuthClient,
        *,
        refresh_margin: float,
        source: Path | None = None,
        describe: Callable[[], str] | None = None,
        lock_ttl: float = LOCK_TTL_SECONDS,
        lock_wait: float = LOCK_WAIT_SECONDS,
        save_retry: float = SAVE_RETRY_SECONDS,
    ) -> None:
        self.account = account
        self.cluster = cluster
        self.oauth = oauth
        self.refresh_margin = refresh_margin
        self.source = source
        self.describe = describe or (lambda: "an account")
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.save_retry = save_retry
        self.last_refresh: dt.datetime | None = None
        self.refresh_count = 0
        self._lock = asyncio.Lock()
        self._local: Credentials | None = None
        self._document: dict[str, Any] | None = None
        self._version = -1
        self._seen_sealed: bytes | None = None
        self._refresher = SpentRefreshTokens(self.oauth)
        self._unsaved: dict[str, Any] | None = None
        self._saver: asyncio.Task[None] | None = None
        self._down_until = -float("inf")

    def __repr__(self) -> str:
        return f"SharedTokenManager(account={self.account!r}, version={self._version})"

    @property
    def namespace(self) -> str:
        return self.cluster.credentials.namespace

    @property
    def version(self) -> int:
        """The ``last_refresh`` (µs) of the newest document known here; -1 when none."""
        return self._version

    @property
    def saved(self) -> bool:
        """False while a refreshed document waits to be stored (the store was unreachable)."""
        return self._unsaved is None

    # ---- what this instance knows ---------------------------------------------------------------------
    def _adopt(self, document: dict[str, Any]) -> bool:
        """Take ``document`` as the current credentials unless what is known here is newer."""
        version = version_of(document)
        if version < self._version:
            return False
        credentials = credentials_from(document, self.source or SHARED_SOURCE)
        if credentials is None:
            return False
        self._local, self._document, self._version = credentials, document, version
        return True

    def seed(self, document: dict[str, Any]) -> None:
        """Credentials read from this instance's file (they serve while the store is unreachable)."""
        self._adopt(document)

    def observe(self, sealed: bytes) -> Credentials | None:
        """Open a sealed document read from the store and adopt it if it is not older than the one known.

        Raises :class:`SecretBoxError` when it cannot be opened (sealed under a key not configured here)."""
        if sealed is self._seen_sealed or sealed == self._seen_sealed:
            return self._local
        try:
            document = orjson.loads(self.cluster.box.open(sealed, CredentialStore._context(self.account)))
        except orjson.JSONDecodeError:
            raise SecretBoxError("stored credentials are not JSON") from None
        if not isinstance(document, dict):
            raise SecretBoxError("stored credentials are not a JSON object")
        self._seen_sealed = sealed
        self._adopt(document)
        return self._local

    def _absent_from_store(self) -> None:
        """The store holds nothing for the account. What is known here keeps serving: a store that restarted
        empty is refilled by :meth:`SharedAccounts.resync_after_outage`, and an account removed on purpose
        leaves the pool through the registry (the next scan of the store no longer lists it), never by
        failing requests here — a request answered "not signed in" would mark the account as needing a
        login on every instance."""

    async def _read(self) -> Credentials | None:
        """The current credentials: the cache's document (memory once known), else what is known here."""
        try:
            sealed = await self.cluster.cache.get(self.namespace, self.account)
        except StateUnavailable:
            if self._local is None:
                raise
            return self._local
        if sealed is None:
            self._absent_from_store()
            return self._local
        try:
            return self.observe(sealed)
        except SecretBoxError:
            if self._local is not None:
                return self._local
            raise self._unreadable() from None

    async def _read_store(self) -> Credentials | None:
        """The stored document, read from the store itself (under the refresh lock)."""
        try:
            document = await self.cluster.credentials.load_credentials(self.account)
        except SecretBoxError:
            raise self._unreadable() from None
        if document is None:
            self._absent_from_store()
        else:
            self._adopt(document)
        return self._local

    def _unreadable(self) -> AuthError:
        return AuthError(
            f"The shared credentials of {self.describe()} cannot be opened with this instance's secret_key.",
            code="credentials_unreadable",
        )

    def _not_logged_in(self) -> AuthError:
        return AuthError(f"Not signed in to ChatGPT: {self.describe()} has no shared credentials. {LOGIN_HINT}")

    # ---- the API of TokenManager ----------------------------------------------------------------------
    def peek(self) -> Credentials | None:
        """The credentials known here, as they are (no refresh, no I/O)."""
        return self._local

    def has_credentials(self) -> bool:
        return self._local is not None

    def credential_source(self) -> Path | None:
        return self.source or (SHARED_SOURCE if self._local is not None else None)

    async def get(self) -> Credentials:
        """Credentials whose access token is valid for at least ``refresh_margin`` seconds."""
        current = await self._read()
        if current is None:
            raise self._not_logged_in()
        if current.expires_within(self.refresh_margin, time.time()):
            return await self._refresh(current)
        return current

    async def refresh_after_unauthorized(self, rejected: Credentials) -> Credentials:
        """After an upstream 401: newer tokens when any instance has stored them, else one forced refresh."""
        current = await self._read()
        if current is None:
            raise self._not_logged_in()
        if current.access_token != rejected.access_token:
            return current
        return await self._refresh(current, force=True)

    async def discard(self) -> None:
        """The account left the shared store (removed on purpose): stop, store nothing more, close."""
        self._unsaved = None
        await self.aclose()

    async def aclose(self) -> None:
        """Stop retrying a pending store (one last attempt first) and close the OAuth client."""
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self._unsaved is not None:
            with contextlib.suppress(StateUnavailable):
                await self._store(self._unsaved)
        await self.oauth.aclose()

    # ---- refreshing -----------------------------------------------------------------------------------
    def _still_good(self, candidate: Credentials, stale: Credentials, force: bool) -> bool:
        if candidate.access_token == stale.access_token:
            return False
        return force or not candidate.expires_within(self.refresh_margin, time.time())

    def _without_refresh(self, current: Credentials, force: bool) -> Credentials:
        """No refresh is possible now (store unreachable): a token still valid serves, else 503."""
        if not force and not current.expires_within(0, time.time()):
            return current
        raise StateUnavailable("shared state is unavailable: the account's token cannot be refreshed now")

    def _store_reachable(self) -> bool:
        return self.cluster.available and time.monotonic() >= self._down_until

    async def _refresh(self, stale: Credentials, *, force: bool = False) -> Credentials:
        async with self._lock:
            current = await self._read()
            if current is None:
                raise self._not_logged_in()
            if self._still_good(current, stale, force):
                return current  # another task (or instance) refreshed while this one waited
            if not self._store_reachable():
                return self._without_refresh(current, force)
            lock = self.cluster.state.lock(f"refresh:{self.account}", ttl=self.lock_ttl)
            try:
                async with lock.hold(wait=self.lock_wait):
                    stored = await self._read_store()
                    if stored is None:
                        raise self._not_logged_in()
                    if self._still_good(stored, stale, force):
                        return stored  # another instance refreshed: use its tokens
                    lock.check()  # the last moment to find out the lock was lost
                    return await self._refresh_locked(stored)
            except (StateUnavailable, LockLost):
                self._down_until = time.monotonic() + DOWN_BACKOFF_SECONDS
                return self._without_refresh(self._local or current, force)
            except TimeoutError:
                return await self._after_lock_timeout(stale, force)

    async def _after_lock_timeout(self, stale: Credentials, force: bool) -> Credentials:
        """Another instance held the refresh lock for the whole wait: its result, else a still-valid token."""
        with contextlib.suppress(StateUnavailable):
            await self._read_store()
        latest = self._local
        if latest is not None and self._still_good(latest, stale, force):
            return latest
        if latest is not None and not force and not latest.expires_within(0, time.time()):
            return latest  # still valid: serve it (after a 401 it would only be rejected again)
        raise AuthError(
            f"Timed out waiting for another instance to refresh the credentials of {self.describe()}.",
            code="refresh_lock_timeout",
        )

    async def _refresh_locked(self, current: Credentials) -> Credentials:
        refresh_token = current.refresh_token
        if not refresh_token:
            raise AuthError(f"The credentials of {self.describe()} have no refresh token. {LOGIN_HINT}")
        tokens = await self._refresher.refresh(refresh_token, self.describe())
        now = dt.datetime.now(dt.UTC)
        document = refreshed_document(self._document or {}, tokens, current.account_id, now)
        self._adopt(document)
        self.refresh_count += 1
        self.last_refresh = now
        logger.info("refreshed the access token of %s (shared with every instance)", self.describe())
        try:
            await self._store(document)
        except StateUnavailable:  # the refresh token is spent: keep the new one here until the store takes it
            self._keep_unsaved(document)
        return self._local or current

    async def _store(self, document: dict[str, Any]) -> None:
        """Store a refreshed document (never over a newer one) and tell every instance."""
        written = await self.cluster.credentials.store_credentials(self.account, document)
        if self._unsaved is not None and version_of(self._unsaved) <= version_of(document):
            self._unsaved = None  # stored, or something at least as new is
        if written:
            with contextlib.suppress(StateUnavailable):  # the periodic resync covers a lost announcement
                await self.cluster.cache.invalidate(self.namespace, self.account)
        else:
            await self._read_store()  # something newer is stored (a new login): use it

    async def store_known(self) -> None:
        """Store the newest document known here again (never over a newer one): after an outage."""
        document = self._unsaved or self._document
        if document is not None:
            await self._store(document)

    def _keep_unsaved(self, document: dict[str, Any]) -> None:
        self._unsaved = document
        if self._saver is None or self._saver.done():
            self._saver = asyncio.create_task(self._save_when_possible(), name=f"credentials-save:{self.account}")

    async def _save_when_possible(self) -> None:
        while self._unsaved is not None:
            await asyncio.sleep(self.save_retry)
            pending = self._unsaved
            if pending is not None:
                with contextlib.suppress(StateUnavailable):
                    await self._store(pending)
