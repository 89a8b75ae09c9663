"""Fresh credentials for every upstream call, with one refresh at a time — across processes too.

:class:`TokenManager` re-reads the credential file when it changes on disk (so ``codexgate login``
and ``logout`` act on a running server), refreshes the access token when it expires within
``refresh_margin`` seconds or after an upstream 401, and makes sure a single-use refresh token is
spent once: concurrent callers share one refresh (an ``asyncio.Lock``), and other processes are
kept out by a file lock beside the credential file, after which the file is re-read and the refresh
skipped if another process already did it. A permanent failure (``refresh_token_reused`` …) is
remembered for that token, so no request retries it until the file changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codexgate.auth.credentials import CredentialFileError, Credentials, CredentialStore, write_tokens
from codexgate.auth.file_lock import LockTimeout, locked
from codexgate.auth.oauth_client import LOGIN_HINT, AuthError, OAuthClient, TokenSet
from codexgate.config import Settings

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("codexgate.auth")

__all__ = ["AuthError", "Credentials", "SpentRefreshTokens", "TokenManager"]


class SpentRefreshTokens:
    """Refreshes that remember a refresh token the issuer refused for good (``refresh_token_reused`` …), so
    that no request tries that token again until new credentials arrive."""

    def __init__(self, oauth: OAuthClient) -> None:
        self.oauth = oauth
        self._token: str | None = None
        self._error: AuthError | None = None

    async def refresh(self, refresh_token: str, what: str) -> TokenSet:
        """New tokens for ``refresh_token``; a refused token raises its error again without a call. ``what``
        names the credentials in the log line of a refusal."""
        if refresh_token == self._token and self._error is not None:
            dead = self._error  # a new error each time: re-raising one would grow its traceback
            raise AuthError(dead.message, code=dead.code or "refresh_failed")
        try:
            return await self.oauth.refresh(refresh_token)
        except AuthError as error:
            self._token = refresh_token
            self._error = AuthError(error.message, code=error.code or "refresh_failed")  # no traceback
            logger.warning("token refresh of %s failed permanently (%s); run `codexgate login`", what, error.code)
            raise


class TokenManager:
    def __init__(
        self,
        *,
        own_file: Path,
        codex_file: Path | None = None,
        issuer: str,
        client_id: str,
        refresh_margin: float,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.store = CredentialStore(own_file, codex_file)  # no codex_file: one pool account's file
        self._watched = tuple(os.fspath(path) for path in self.store.paths)  # stat()ed on every call
        self.oauth = OAuthClient(issuer, client_id, http)
        self.refresh_margin = refresh_margin
        self.last_refresh: dt.datetime | None = None
        self.refresh_count = 0
        self._lock = asyncio.Lock()
        self._cached: Credentials | None = None
        self._signature: tuple[tuple[float, int] | None, ...] | None = None
        self._refresher = SpentRefreshTokens(self.oauth)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenManager:
        return cls(
            own_file=settings.auth_file,
            codex_file=settings.codex_auth_file,
            issuer=settings.auth.auth_issuer,
            client_id=settings.auth.client_id,
            refresh_margin=settings.auth.refresh_margin,
        )

    # ---- reading the file -------------------------------------------------------------------
    def _file_signature(self) -> tuple[tuple[float, int] | None, ...]:
        signature: list[tuple[float, int] | None] = []
        for path in self._watched:
            try:
                stat = os.stat(path)
                signature.append((stat.st_mtime, stat.st_size))
            except OSError:
                signature.append(None)
        return tuple(signature)

    def _current(self) -> Credentials | None:
        """The credentials on disk, re-read only when a credential file changed."""
        signature = self._file_signature()
        if signature != self._signature:
            try:
                self._cached = self.store.load()
            except CredentialFileError as exc:
                logger.warning("credential file unusable: %s", exc)
                self._cached = None
            self._signature = signature
        return self._cached

    def peek(self) -> Credentials | None:
        """The credentials on disk as they are (no refresh); re-read only when the file changed."""
        return self._current()

    def has_credentials(self) -> bool:
        return self._current() is not None

    def credential_source(self) -> Path | None:
        current = self._current()
        return current.source if current is not None else None

    def _not_logged_in(self) -> AuthError:
        return AuthError(f"Not signed in to ChatGPT: no credentials in {self.store.searched()}. {LOGIN_HINT}")

    # ---- the API the upstream client uses ----------------------------------------------------
    async def get(self) -> Credentials:
        """Credentials whose access token is valid for at least ``refresh_margin`` seconds."""
        current = self._current()
        if current is None:
            raise self._not_logged_in()
        if current.expires_within(self.refresh_margin, time.time()):
            return await self._refresh(current)
        return current

    async def refresh_after_unauthorized(self, rejected: Credentials) -> Credentials:
        """After an upstream 401: use newer tokens if the file has them, else refresh once."""
        current = self._current()
        if current is None:
            raise self._not_logged_in()
        if current.access_token != rejected.access_token:
            return current
        return await self._refresh(current, force=True)

    async def aclose(self) -> None:
        await self.oauth.aclose()

    # ---- refreshing ---------------------------------------------------------------------------
    def _still_good(self, candidate: Credentials, stale: Credentials, force: bool) -> bool:
        if candidate.access_token == stale.access_token:
            return False
        return force or not candidate.expires_within(self.refresh_margin, time.time())

    async def _refresh(self, stale: Credentials, *, force: bool = False) -> Credentials:
        async with self._lock:
            current = self._current()
            if current is None:
                raise self._not_logged_in()
            if self._still_good(current, stale, force):
                return current  # another task refreshed while we waited
            try:
                async with locked(current.source):
                    self._signature = None  # re-read: another process may have refreshed
                    current = self._current()
                    if current is None:
                        raise self._not_logged_in()
                    if self._still_good(current, stale, force):
                        return current
                    return await self._refresh_locked(current)
            except LockTimeout:
                raise AuthError(
                    f"Timed out waiting for another process to refresh the credentials in {stale.source}.",
                    code="refresh_lock_timeout",
                ) from None

    async def _refresh_locked(self, current: Credentials) -> Credentials:
        refresh_token = current.refresh_token
        if not refresh_token:
            raise AuthError(f"The credentials in {current.source} have no refresh token. {LOGIN_HINT}")
        tokens = await self._refresher.refresh(refresh_token, f"the credentials in {current.source}")
        write_tokens(
            current.source,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            id_token=tokens.id_token,
            account_id=current.account_id,
        )
        self.refresh_count += 1
        self.last_refresh = dt.datetime.now(dt.UTC)
        logger.info("refreshed the ChatGPT access token (stored in %s)", current.source)
        self._signature = None
        refreshed = self._current()
        if refreshed is None:  # pragma: no cover - we just wrote the file
            raise self._not_logged_in()
        return refreshed
