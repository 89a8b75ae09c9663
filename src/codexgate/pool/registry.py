"""The accounts of this install, live: their states for the router and fresh credentials for each.

How it works
------------
- **Files** (see :mod:`codexgate.pool.account_files`): every own account has its own 0600 credential file
  in the Codex CLI's ``auth.json`` format: ``$CODEXGATE_HOME/auth.json`` (the single account of an
  install from before the pool — read in place, never moved, so existing installs need no step and
  one account behaves exactly as before) and ``$CODEXGATE_HOME/accounts/<name>.json``. The Codex CLI's
  ``auth.json`` is one more account, refreshed and written back in place as before.
- **One account, one chain**: an account is its ``chatgpt_account_id`` plus user id. When one account
  is in several files (logged in with codexgate and with the Codex CLI), codexgate's own file wins and
  only it is read and refreshed; the Codex CLI keeps its own chain untouched.
- **Credentials**: each file has its own :class:`codexgate.auth.refresh.TokenManager` (a single-flight
  ``asyncio.Lock`` plus the file lock beside the file), so fifty concurrent requests to two accounts
  whose tokens expired spend exactly one refresh token each. All managers share one HTTP client.
- **Seeing the CLI's changes**: at most every ``check_interval`` seconds (0.25 s), :meth:`accounts`
  stats three entries — the ``accounts/`` directory (every CLI change is an atomic rename inside it),
  the Codex CLI's file and ``auth.json`` — and rescans only when one of them changed.
- **The operator's word** (``accounts/index.json``, written only by the CLI) gives aliases and pauses;
  ``accounts resume`` counts up a resume counter, applied once here when it differs from the count
  last applied (so it also lifts "disabled" or "needs login" once, even from a recreated index). A
  pause is applied when the index turns paused, not on every rescan (both remembered in
  ``state.json``), so a pause or resume that came from another instance's home stands.
- **States persist** in ``accounts/state.json`` (atomic, 0600): a background task writes them when
  they changed, at most every ``save_interval`` seconds (5 s), off the request path, and once more at
  :meth:`aclose`; a restart restores cooldowns, windows, counters and errors.
- **Logs** name an account by its alias only.

- **Several instances** (``cluster=``, with ``state_url``): the shared store is the source of truth for
  credentials (:mod:`codexgate.pool.shared_accounts`): files found on disk are imported into it, never
  written to, the accounts the other instances imported are listed too, and each account's credentials come
  from a :class:`~codexgate.pool.shared_tokens.SharedTokenManager` (one refresh per account cluster-wide).

Wiring (the lead): ``registry = AccountRegistry.from_settings(settings, cluster=cluster)``;
``await registry.start()`` at startup and ``await registry.aclose()`` at shutdown; per request
``router.route(registry.accounts(), …)``, then ``await registry.credentials(decision.account.key)``; after an
upstream 401 ``await registry.refresh_after_unauthorized(key, rejected)`` (an :class:`AuthError` from it means
``health.unauthorized_after_refresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from codexgate.auth.credentials import Credentials
from codexgate.auth.oauth_client import AuthError
from codexgate.auth.refresh import TokenManager
from codexgate.pool import health
from codexgate.pool.account_files import (
    AccountFile,
    FileStamp,
    PoolPaths,
    SavedState,
    assign_aliases,
    file_stamp,
    read_index,
    read_states,
    scan,
    state_document,
    write_states,
)
from codexgate.pool.accounts import AccountState, AccountStatus

if TYPE_CHECKING:
    import httpx

    from codexgate.config import Settings
    from codexgate.pool.shared_accounts import SharedAccount, SharedAccounts
    from codexgate.pool.shared_tokens import SharedTokenManager
    from codexgate.state.cluster import Cluster

__all__ = ["AccountRegistry", "UnknownAccountError"]

logger = logging.getLogger("codexgate.pool")

CHECK_INTERVAL_SECONDS = 0.25
SAVE_INTERVAL_SECONDS = 5.0


class UnknownAccountError(AuthError):
    """The account is no longer in the pool (removed or logged out)."""

    def __init__(self, alias: str) -> None:
        super().__init__(f"The account {alias!r} is no longer in the pool.", code="account_removed")


class AccountRegistry:
    """The pool's accounts: states for :meth:`codexgate.pool.router.Router.route`, credentials per account."""

    def __init__(
        self,
        paths: PoolPaths,
        *,
        issuer: str,
        client_id: str,
        refresh_margin: float,
        http: httpx.AsyncClient | None = None,
        check_interval: float = CHECK_INTERVAL_SECONDS,
        save_interval: float = SAVE_INTERVAL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        cluster: Cluster | None = None,
    ) -> None:
        self.paths = paths
        self.issuer = issuer
        self.client_id = client_id
        self.refresh_margin = refresh_margin
        self.check_interval = check_interval
        self.save_interval = save_interval
        self._monotonic = monotonic
        self._http = http
        self._owns_http = http is None
        self._states: dict[str, AccountState] = {}
        self._files: dict[str, AccountFile] = {}
        self._managers: dict[Path, TokenManager] = {}
        self._file_stamps: dict[str, object] = {}
        self._resumes_applied: dict[str, int] = {}
        self._pauses_applied: dict[str, bool] = {}  # the index's ``paused`` last applied, per account
        self._restored: dict[str, SavedState] | None = None
        self._signature: tuple[FileStamp, ...] | None = None
        self._next_check = -float("inf")
        self._written: bytes | None = None
        self._saver: asyncio.Task[None] | None = None
        self._shared: SharedAccounts | None = None
        self._catching_up: asyncio.Future[None] | None = None
        self._caught_up_at = -float("inf")
        if cluster is not None:  # several instances: the state modules are imported only then
            from codexgate.pool.shared_accounts import SharedAccounts

            self._shared = SharedAccounts(
                cluster,
                issuer=issuer,
                client_id=client_id,
                refresh_margin=refresh_margin,
                http=self._http_client,
                describe=self.alias,
                on_change=self._rescan_soon,
            )

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.AsyncClient | None = None, *, cluster: Cluster | None = None
    ) -> AccountRegistry:
        return cls(
            PoolPaths(settings.home, settings.codex_auth_file),
            issuer=settings.auth.auth_issuer,
            client_id=settings.auth.client_id,
            refresh_margin=settings.auth.refresh_margin,
            http=http,
            cluster=cluster,
        )

    # ---- what the router reads ------------------------------------------------------------------
    def accounts(self) -> Mapping[str, AccountState]:
        """Key → state of every account, current within ``check_interval`` of a change on disk.

        The same :class:`AccountState` objects are handed out for as long as their account stays, so
        that the health transitions the upstream layer applies to them last."""
        now = self._monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_interval
            signature = self._disk_signature()
            if signature != self._signature:
                self._reload(signature)
        return self._states

    def alias(self, key: str) -> str:
        state = self._states.get(key)
        return state.alias if state is not None else "unknown account"

    def credential_file(self, key: str) -> Path | None:
        """The file the account's tokens are read from and refreshed into."""
        found = self._files.get(key)
        return found.path if found is not None else None

    def reload(self) -> None:
        """Rescan now (tests, and after a change made in this process)."""
        self._rescan_soon()
        self.accounts()

    def _rescan_soon(self) -> None:
        """Make the next :meth:`accounts` rebuild the list (the shared store's accounts changed)."""
        self._next_check = -float("inf")
        self._signature = None

    def has_credentials(self) -> bool:
        """Whether some account has credentials: a file on disk, or (several instances) the shared store's."""
        accounts = self.accounts()
        if self._shared is not None:
            return any(self._shared.managers[key].has_credentials() for key in accounts if key in self._shared.managers)
        return any(found.path.exists() for found in self._files.values())

    async def catch_up(self) -> None:
        """Several instances: read the shared store now, for a request that found no account (an instance
        that started before another imported the accounts learns them here rather than at the next
        background pass). One pass serves every caller waiting at the time, and passes are at least
        ``check_interval`` apart; without shared state, nothing to do."""
        if self._shared is None:
            return
        if self._catching_up is None or (
            self._catching_up.done() and self._monotonic() - self._caught_up_at >= self.check_interval
        ):
            self._caught_up_at = self._monotonic()
            self._catching_up = asyncio.ensure_future(self._shared.sync_once())
        await asyncio.shield(self._catching_up)
        if not self.accounts() and not self._shared.reachable():
            from codexgate.state.interface import StateUnavailable

            # no account known here and the store that lists them is away: say that, not "not signed in"
            raise StateUnavailable("the shared state is unavailable, so this instance knows no account yet")

    # ---- credentials ----------------------------------------------------------------------------
    def _manager(self, key: str) -> TokenManager | SharedTokenManager:
        self.accounts()
        if self._shared is not None:
            shared = self._shared.managers.get(key) if key in self._states else None
            if shared is None:
                raise UnknownAccountError(self.alias(key))
            return shared
        found = self._files.get(key)
        if found is None:
            raise UnknownAccountError(self.alias(key))
        return self._managers[found.path]

    async def credentials(self, key: str) -> Credentials:
        """Credentials of the account ``key`` valid for at least ``refresh_margin`` seconds (refreshed
        once for all concurrent callers, and once across processes)."""
        return await self._manager(key).get()

    async def refresh_after_unauthorized(self, key: str, rejected: Credentials) -> Credentials:
        """After an upstream 401 for ``key``: newer tokens from the file, else one forced refresh."""
        return await self._manager(key).refresh_after_unauthorized(rejected)

    # ---- reloading ------------------------------------------------------------------------------
    def _disk_signature(self) -> tuple[FileStamp, ...]:
        paths = self.paths
        return (file_stamp(paths.accounts_dir), file_stamp(paths.legacy_file), file_stamp(paths.codex_file))

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx  # only when a token is refreshed: the server starts without it

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), trust_env=False)
        return self._http

    def _new_manager(self, path: Path) -> TokenManager:
        return TokenManager(
            own_file=path,
            issuer=self.issuer,
            client_id=self.client_id,
            refresh_margin=self.refresh_margin,
            http=self._http_client(),
        )

    def _reload(self, signature: tuple[FileStamp, ...]) -> None:
        self._signature = signature
        files, shadowed = scan(self.paths)
        entries: dict[str, AccountFile | SharedAccount] = dict(files)
        if self._shared is not None:  # several instances: the shared store's accounts too
            self._shared.note_files(files)
            for key, remote in self._shared.remote.items():
                entries.setdefault(key, remote)
        index = read_index(self.paths)
        if self._restored is None:
            self._restored = read_states(self.paths)
            self._resumes_applied = {key: saved.resumes_applied for key, saved in self._restored.items()}
            self._pauses_applied = {
                key: saved.paused_applied for key, saved in self._restored.items() if saved.paused_applied is not None
            }
        previous = {key: state.alias for key, state in self._states.items()}
        for key, saved in self._restored.items():
            alias = saved.state.get("alias")
            if key not in previous and isinstance(alias, str):
                previous[key] = alias
        aliases = assign_aliases(((key, found.email) for key, found in entries.items()), index, previous)

        states: dict[str, AccountState] = {}
        for key, found in entries.items():
            state = self._states.get(key) or self._restore(key, found)
            state.alias = aliases[key]
            state.email = found.email or state.email
            state.plan = found.plan or state.plan
            entry = index.get(key)
            if entry is not None:
                self._apply_operator(key, state, entry.paused, entry.resume_count)
            stamp = self._credentials_stamp(key, found)
            if self._file_stamps.get(key, stamp) != stamp and state.status is AccountStatus.NEEDS_LOGIN:
                health.credentials_renewed(state)  # a new login (or import) wrote the file
                logger.info("account %s has new credentials", state.alias)
            self._file_stamps[key] = stamp
            if isinstance(found, AccountFile) and self._shared is None and found.path not in self._managers:
                self._managers[found.path] = self._new_manager(found.path)
            states[key] = state
        for key in self._states.keys() - states.keys():
            logger.info("account %s left the pool", self._states[key].alias)
            self._file_stamps.pop(key, None)
        for key in states.keys() - self._states.keys():
            kind = files[key].kind.value if key in files else "shared state"
            logger.info("account %s is in the pool (%s)", states[key].alias, kind)
        for duplicate in shadowed:
            logger.debug("account %s is also in a file that is not used", aliases.get(duplicate.key, "?"))
        used = {found.path for found in files.values()}
        self._managers = {path: manager for path, manager in self._managers.items() if path in used}
        self._files = files
        self._states = states

    def _credentials_stamp(self, key: str, found: AccountFile | SharedAccount) -> object:
        """What changes when the account gets new credentials: its file, and its version in the shared store."""
        on_disk = (found.path, file_stamp(found.path)) if isinstance(found, AccountFile) else None
        remote = self._shared.remote.get(key) if self._shared is not None else None
        return (on_disk, remote.version if remote is not None else None)

    def _restore(self, key: str, found: AccountFile | SharedAccount) -> AccountState:
        saved = self._restored.get(key) if self._restored is not None else None
        if saved is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                return AccountState.from_dict(saved.state)
        return AccountState(
            chatgpt_account_id=found.chatgpt_account_id,
            user_id=found.user_id,
            alias=found.email or key,  # replaced by the assigned alias right away
            email=found.email,
            plan=found.plan,
        )

    def _apply_operator(self, key: str, state: AccountState, paused: bool, resume_count: int) -> None:
        done = health.apply_operator(
            state,
            paused=paused,
            resume_count=resume_count,
            resumes_applied=self._resumes_applied.get(key, 0),
            paused_applied=self._pauses_applied.get(key),
        )
        if done is not None:
            logger.info("account %s %s", state.alias, done)
        self._resumes_applied[key] = resume_count
        self._pauses_applied[key] = paused

    # ---- persisting the states ------------------------------------------------------------------
    def state_bytes(self) -> bytes:
        """``state.json`` as it would be written now."""
        saved = {
            key: SavedState(
                state=state.to_dict(),
                resumes_applied=self._resumes_applied.get(key, 0),
                paused_applied=self._pauses_applied.get(key),
            )
            for key, state in self._states.items()
        }
        return state_document(saved)

    def save(self) -> bool:
        """Write ``state.json`` if the states changed since the last write; returns whether it wrote."""
        document = self.state_bytes()
        if document == self._written:
            return False
        write_states(self.paths, document)
        self._written = document
        return True

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(self.save_interval)
            document = self.state_bytes()  # taken on the event loop: one consistent picture
            if document == self._written:
                continue
            try:
                await asyncio.to_thread(write_states, self.paths, document)
            except OSError as exc:
                logger.warning("could not save the account states: %s", exc.strerror or type(exc).__name__)
                continue
            self._written = document

    async def start(self) -> None:
        """Load the accounts (several instances: import them and read the store's) and start saving their
        states in the background."""
        self.accounts()
        if self._shared is not None:
            await self._shared.start(self._files)
            self.reload()
        if self._saver is None:
            self._saver = asyncio.create_task(self._save_loop(), name="codexgate-account-states")

    async def aclose(self) -> None:
        """Stop the background saver, save the states one last time, close the HTTP client."""
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self._shared is not None:
            await self._shared.aclose()
        if self._states:
            try:
                self.save()
            except OSError as exc:
                logger.warning("could not save the account states: %s", exc.strerror or type(exc).__name__)
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None
