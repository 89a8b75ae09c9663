"""The upstream path over the account pool: route, open with that account's credentials, fail over.

:class:`PooledUpstream` wraps :meth:`codexgate.upstream.client.UpstreamClient.open_stream`. Per request:

1. ask the :class:`~codexgate.pool.router.Router` for an account (the session key scoped per API key; the
   keys of the encrypted reasoning and compaction items the request carries), then
   :func:`~codexgate.pool.health.begin_stream` with no await in between;
2. open the stream with that account's credentials (the client refreshes once on a 401);
3. **before the first byte**, an error answer changes the account's health and, where another account may
   do better, the same request goes at once to the next usable account (at most once per account):

   - ``usage_limit_reached`` (HTTP 429): the account cools until the answer's ``resets_at``;
   - ``usage_not_included``: the account is disabled for that model;
   - 401 that the refresh could not fix: the account needs a login;
   - 403: disabled only when the body says the account is deactivated, else a transient failure;
   - 5xx, timeouts, connection errors, other 429s: a backoff of seconds (which never takes the last
     usable account out: see :mod:`codexgate.pool.routing`);
   - a refresh the account needs while the shared state (``state_url``) is away (503 ``state_unavailable``):
     the next account, this one's health unchanged (it is not the account's fault);
   - any other error (a 400 for the request itself) reaches the client as it is.

   With more than one account, the head of a 200 stream is read ahead (:mod:`codexgate.upstream.read_ahead`,
   every byte handed on to the consumer): a ``usage_limit_reached`` reported in the stream (an ``error``
   event or ``response.failed``) before any output is failed over like the 429 (the stream is closed, the
   account cools until the event's ``resets_at``, else ``resets_in_seconds`` from now), and so is a read
   that fails there (a transient failure). Once output has begun, an error reaches the client as it is.
   With a single account nothing is read ahead: the client sees the backend's error event as before.
4. When no account can serve: the router's refusal (429 with the earliest reset and ``Retry-After`` when
   accounts are cooling), or the last upstream error when every usable account failed this request or
   the pool has a single account (so one account behaves exactly as before pools existed).

Encrypted reasoning bound to an account that cannot serve is dropped from the body (logged with the
account's alias); a compaction item is never dropped (the router refuses with a clear error). The account
that produced each encrypted item of an answer is remembered (the stream's bytes are scanned for
``encrypted_content`` only while the pool has more than one account, so the single-account path does not
pay for it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from codexgate.errors import APIError
from codexgate.pool import health
from codexgate.pool.accounts import AccountState, AccountStatus
from codexgate.pool.refusals import NoAccountReason
from codexgate.pool.router import Router
from codexgate.pool.sticky import content_key
from codexgate.storage import rate_limits
from codexgate.upstream.client import TokenSource, UpstreamClient, UpstreamStream, codex_headers
from codexgate.upstream.content_scan import ContentScanner, content_keys, scanning
from codexgate.upstream.read_ahead import read_ahead

if TYPE_CHECKING:
    from codexgate.pool.shared_pool import SharedPool

__all__ = [
    "AccountSource",
    "ContentScanner",
    "Opened",
    "PoolTokens",
    "PooledUpstream",
    "SingleSource",
    "content_keys",
    "usage_day",
]

logger = logging.getLogger("codexgate.upstream")


class AccountSource(Protocol):
    """What the pool needs from the accounts: states, and credentials per account."""

    def accounts(self) -> Mapping[str, AccountState]: ...
    async def credentials(self, key: str) -> Any: ...
    async def refresh_after_unauthorized(self, key: str, rejected: Any) -> Any: ...


class SingleSource:
    """One token source (``create_app``'s ``tokens=`` hook) as a one-account pool."""

    def __init__(self, tokens: TokenSource, alias: str = "default") -> None:
        self.tokens = tokens
        state = AccountState(chatgpt_account_id="default", user_id="-", alias=alias)
        self._accounts = {state.key: state}

    def accounts(self) -> Mapping[str, AccountState]:
        return self._accounts

    async def credentials(self, key: str) -> Any:
        return await self.tokens.get()

    async def refresh_after_unauthorized(self, key: str, rejected: Any) -> Any:
        return await self.tokens.refresh_after_unauthorized(rejected)

    def has_credentials(self) -> bool:
        has = getattr(self.tokens, "has_credentials", None)
        return bool(has()) if has is not None else True


class _AccountTokens:
    """The :class:`TokenSource` of one account of the pool."""

    __slots__ = ("key", "source")

    def __init__(self, source: AccountSource, key: str) -> None:
        self.source = source
        self.key = key

    async def get(self) -> Any:
        return await self.source.credentials(self.key)

    async def refresh_after_unauthorized(self, rejected: Any) -> Any:
        return await self.source.refresh_after_unauthorized(self.key, rejected)


class PoolTokens:
    """A :class:`TokenSource` over the pool for calls that are not routed (the model list): the credentials
    of the least-used usable account."""

    def __init__(self, source: AccountSource, router: Router, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.router = router
        self._clock = clock
        self._last_key: str | None = None

    def _pick(self) -> str:
        accounts = self.source.accounts()
        decision = self.router.route(accounts, model="", now=self._clock())
        if decision.account is None:
            assert decision.refusal is not None
            raise decision.refusal.to_error()
        return decision.account.key

    async def get(self) -> Any:
        key = self._pick()
        self._last_key = key
        return await self.source.credentials(key)

    async def refresh_after_unauthorized(self, rejected: Any) -> Any:
        key = self._last_key or self._pick()
        return await self.source.refresh_after_unauthorized(key, rejected)

    def credential_source(self) -> str | None:
        """Where the credentials come from, for the start-up line: the file of a single account, else a count."""
        accounts = self.source.accounts()
        where = getattr(self.source, "credential_file", None)
        if not accounts:
            return None
        if len(accounts) == 1 and where is not None:
            path = where(next(iter(accounts)))
            return str(path) if path is not None else None
        return f"{len(accounts)} accounts"

    async def catch_up(self) -> None:
        """Learn accounts added elsewhere now, when the source can (several instances share the accounts)."""
        catch_up = getattr(self.source, "catch_up", None)
        if catch_up is not None:
            await catch_up()

    def has_credentials(self) -> bool:
        """Whether some account's credential file is there (checked on disk: a logout is seen at once)."""
        has = getattr(self.source, "has_credentials", None)
        if has is not None:  # the registry knows (with several instances: the shared store's accounts too)
            return bool(has())
        accounts = self.source.accounts()
        where = getattr(self.source, "credential_file", None)
        if where is None:
            return bool(accounts)
        for key in accounts:
            path = where(key)
            if path is not None and path.exists():
                return True
        return False


@dataclass(slots=True)
class Opened:
    """A live stream and the account it came from."""

    stream: UpstreamStream
    account: AccountState


def usage_day(now: float) -> str:
    """The (UTC) day the per-account counters are kept for."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def _resets_at(extra: Mapping[str, Any], now: float) -> float | None:
    """A usage limit's reset time: its ``resets_at``, else ``now`` + its ``resets_in_seconds``."""
    resets_at = extra.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        return float(resets_at)
    seconds = extra.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return now + float(seconds)
    return None


class PooledUpstream:
    """Routes each request to an account of the pool and fails over before the first byte."""

    def __init__(
        self,
        client: UpstreamClient,
        source: AccountSource,
        router: Router,
        *,
        clock: Callable[[], float] = time.time,
        shared: SharedPool | None = None,
    ) -> None:
        self.client = client
        self.source = source
        self.router = router
        self._clock = clock
        self._last_headers: dict[str, Mapping[str, str]] = {}
        #: the cluster's view of the pool (``state_url`` set); None: this process alone decides
        self.shared = shared

    def accounts(self) -> Mapping[str, AccountState]:
        return self.source.accounts()

    async def open(
        self,
        body: dict[str, Any],
        *,
        session_id: str,
        request_id: str,
        session_key: str | None,
        client_headers: Mapping[str, str] | None = None,
        allowed_accounts: frozenset[str] = frozenset(),
    ) -> Opened:
        """A live stream from the first account that answers it (see the module's docstring).

        ``allowed_accounts``: the aliases the API key may use (its budget's allowed accounts; empty: all)."""
        source = self.source

        def usable_accounts() -> Mapping[str, AccountState]:
            every = source.accounts()
            if not allowed_accounts:
                return every
            return {key: state for key, state in every.items() if state.alias in allowed_accounts}

        accounts = usable_accounts()
        if allowed_accounts and not accounts:
            raise APIError(
                403,
                "This API key may only use the accounts " + ", ".join(sorted(allowed_accounts)) + "; none of them"
                " is in the pool.",
                type="permission_error",
                code="account_not_allowed",
            )
        many = len(accounts) > 1
        reasoning, compaction = content_keys(body) if many else ((), ())
        model = str(body.get("model") or "")
        shared = self.shared
        if shared is not None:
            await shared.before_route(session_key, reasoning, compaction)
        tried: frozenset[str] = frozenset()
        last_error: APIError | None = None
        while True:
            now = self._clock()
            decision = self.router.route(
                accounts,
                model=model,
                now=now,
                session_key=session_key,
                tried=tried,
                reasoning_keys=reasoning,
                compaction_keys=compaction,
            )
            account = decision.account
            if account is None:
                raise self._refusal(decision.refusal, accounts, last_error)
            health.begin_stream(account, decision.probe, usage_day(now))
            try:
                sent = self._without_reasoning(body, decision.drop_reasoning_from, now, request_id)
                stream = await self.client.open_stream(
                    sent,
                    session_id=session_id,
                    request_id=request_id,
                    client_headers=client_headers,
                    tokens=_AccountTokens(source, account.key),
                )
                if many:
                    stream._readany = scanning(stream._readany, ContentScanner(self.router, account.key))
                    await self._read_ahead(stream, account)
            except APIError as error:
                health.end_stream(account)
                self.update_windows(account, error.headers)
                judged = self._judge(account, error, model, now)
                if shared is not None:
                    shared.changed(account)
                if not judged:
                    raise
                logger.log(
                    logging.DEBUG if error.code == "state_unavailable" else logging.INFO,  # not one line per request
                    "account %s could not serve request %s (%s); trying another account",
                    account.alias,
                    request_id,
                    error.code or error.status_code,
                )
                last_error = error
                tried = tried | {account.key}
                accounts = usable_accounts()
                continue
            except BaseException:
                health.end_stream(account)
                raise
            lifts = shared is not None and (
                account.transient_failures > 0
                or account.backoff_until is not None
                or account.status is AccountStatus.COOLING
            )
            health.success(account)
            if lifts and shared is not None:  # a cooldown or backoff lifted: the other instances learn it now
                shared.changed(account)
            stream.on_close = partial(health.end_stream, account)
            asyncio.get_running_loop().call_soon(self.update_windows, account, stream.headers)
            return Opened(stream, account)

    async def _read_ahead(self, stream: UpstreamStream, account: AccountState) -> None:
        """Raise the usage limit the stream reports before any output (the stream closed); else leave the
        stream to be read from its first byte. A failed read closes the stream and raises its error."""
        try:
            head = await read_ahead(stream)
        except BaseException:
            stream.close()
            raise
        if head.usage_limit is None:
            return
        stream.close()
        self.update_windows(account, stream.headers)
        for event in head.rate_limit_events:
            self.update_windows_from_event(account, event)
        raise head.usage_limit

    def _refusal(self, refusal: Any, accounts: Mapping[str, AccountState], last_error: APIError | None) -> APIError:
        assert refusal is not None
        if last_error is not None and (refusal.reason is NoAccountReason.ALL_TRIED or len(accounts) <= 1):
            return last_error
        error: APIError = refusal.to_error()
        logger.info("no account can serve: %s", refusal.reason.value)
        return error

    def _judge(self, account: AccountState, error: APIError, model: str, now: float) -> bool:
        """Apply the error to the account's health; whether another account should get the request."""
        status, code = error.status_code, error.code
        if code == "state_unavailable":  # the shared state is away and this account needs a refresh: not the
            return True  # account's fault (no backoff, which would outlast the outage); another may have a token
        if code == "usage_limit_reached":
            health.usage_limit(account, _resets_at(error.extra, now), now, "usage limit reached")
            logger.info("account %s reached its usage limit", account.alias)
            return True
        if code == "usage_not_included":
            health.usage_not_included(account, model, now)
            return True
        if status == 401 and code == "refresh_lock_timeout":  # another process is refreshing: not a dead login
            health.transient_failure(account, now, "waited too long for a refresh in another process")
            return True
        if status == 401:
            if code not in ("account_removed", "not_logged_in"):  # gone from the pool: not a dead login
                health.unauthorized_after_refresh(account, now)
                logger.warning("account %s needs a new login", account.alias)
            return True
        if status == 403:
            health.forbidden(account, error.message, now)
            return True
        if status >= 500 or status == 429:
            health.transient_failure(account, now, f"{status} {code or ''}".strip())
            return True
        return False

    def _without_reasoning(
        self, body: dict[str, Any], drop_from: frozenset[str], now: float, request_id: str
    ) -> dict[str, Any]:
        """``body`` without the encrypted reasoning produced by the accounts in ``drop_from``."""
        if not drop_from:
            return body
        items = body.get("input")
        if not isinstance(items, list):
            return body
        kept: list[Any] = []
        dropped: dict[str, int] = {}
        for item in items:
            if isinstance(item, dict) and item.get("type") == "reasoning":
                encrypted = item.get("encrypted_content")
                if isinstance(encrypted, str) and encrypted:
                    owner = self.router.account_of(content_key(encrypted), now)
                    if owner is not None and owner in drop_from:
                        dropped[owner] = dropped.get(owner, 0) + 1
                        continue
            kept.append(item)
        if not dropped:
            return body
        accounts = self.source.accounts()
        for owner, count in dropped.items():
            state = accounts.get(owner)
            logger.info(
                "dropped %d encrypted reasoning item(s) of account %s from request %s: that account cannot serve it",
                count,
                state.alias if state is not None else "(removed)",
                request_id,
            )
        return {**body, "input": kept}

    def update_windows(self, account: AccountState, headers: Mapping[str, str]) -> None:
        """The ``x-codex-*`` windows of an answer, for its account (skipped when they did not change)."""
        codex = codex_headers(headers)
        if not codex or self._last_headers.get(account.key) == codex:
            return
        self._last_headers[account.key] = codex
        snapshot = rate_limits.from_headers(codex)
        if snapshot:
            health.update_windows(account, snapshot, self._clock())
            if self.shared is not None:
                self.shared.changed(account)

    def update_windows_from_event(self, account: AccountState, event: Mapping[str, Any]) -> None:
        """A ``codex.rate_limits`` stream event, for its account."""
        snapshot = rate_limits.from_event(event)
        if snapshot:
            health.update_windows(account, snapshot, self._clock())
            if self.shared is not None:
                self.shared.changed(account)
