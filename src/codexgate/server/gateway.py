"""The gateway's per-process state and the one path every upstream call takes.

:class:`Gateway` owns the upstream client, the credentials, the stream cap and the observers
(usage rows, metrics, rate-limit state). Routes call :meth:`Gateway.begin` for a
:class:`Call`, then :meth:`Gateway.open` with a Responses body to get a live
:class:`~codexgate.upstream.client.UpstreamStream`; the call records how the request ended exactly
once (usage row, metrics, access log).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection, Request

from codexgate.config import Settings
from codexgate.errors import APIError
from codexgate.observability.logging import log_usage
from codexgate.observability.metrics import Metrics
from codexgate.pool.accounts import AccountState
from codexgate.pool.sticky import scoped_session_key
from codexgate.protocol.catalog_rules import ModelRules
from codexgate.protocol.lite_shape import LITE_HEADER
from codexgate.server.limits import StreamLimiter
from codexgate.server.request_id import request_id_of
from codexgate.server.streaming import OpenStreams, StreamOutcome
from codexgate.storage import rate_limits
from codexgate.storage.api_keys import KeyInfo
from codexgate.storage.budgets import BudgetTracker
from codexgate.storage.usage_writer import UsageRecord, UsageWriter
from codexgate.upstream.client import TokenSource, UpstreamClient, UpstreamStream, codex_headers
from codexgate.upstream.headers import client_metadata, installation_id
from codexgate.upstream.models import ModelCatalog
from codexgate.upstream.pooled import PooledUpstream, usage_day
from codexgate.upstream.session import session_and_cache_key
from codexgate.upstream.shaping import shape_for_codex

__all__ = ["Call", "Gateway", "gateway_of", "token_counts"]

logger = logging.getLogger("codexgate.server")

RATE_LIMIT_SAVE_INTERVAL = 5.0


def gateway_of(request: Request) -> Gateway:
    """The :class:`Gateway` of the app serving ``request``."""
    gateway: Gateway = request.app.state.gateway
    return gateway


@dataclass
class Call:
    """An upstream call in flight; :meth:`finish` releases its stream slot and records it once."""

    gateway: Gateway
    request_id: str
    endpoint: str
    method: str
    path: str
    key_name: str | None
    model_requested: str | None
    model_sent: str | None
    stream: bool
    started_at: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    upstream_request_id: str | None = None
    holds_slot: bool = False
    #: the live upstream answer, closed (at the latest) when the call finishes
    upstream: UpstreamStream | None = None
    finished: bool = False
    #: the API key's record (its budgets), when keys are on
    key_info: KeyInfo | None = None
    #: the pool account that served the call (its state; its alias goes to usage rows and logs)
    account: AccountState | None = None

    def release(self) -> None:
        """Give back the stream slot and close the upstream answer; idempotent, never raises."""
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.close()
        if self.holds_slot:
            self.holds_slot = False
            self.gateway.limiter.release()
            if self.gateway.metrics is not None:
                self.gateway.metrics.stream_closed()

    def finish(self, outcome: StreamOutcome) -> None:
        """Record how the call ended, once; the slot and the upstream go first, whatever happens next."""
        if self.finished:
            return
        self.finished = True
        gateway = self.gateway
        counted_slot = self.holds_slot
        self.release()
        if outcome.rate_limits:
            gateway.record_rate_limit_event(outcome.rate_limits)
        end = outcome.finished_at or time.monotonic()
        input_tokens, cached_tokens, output_tokens, reasoning_tokens = token_counts(outcome.usage)
        if self.key_info is not None and gateway.budgets is not None:
            gateway.budgets.record(self.key_info, input_tokens + output_tokens, time.time())
        account = self.account
        if account is not None:
            gateway.account_finished(account, outcome, input_tokens + output_tokens)
        record = UsageRecord(
            endpoint=self.endpoint,
            status=outcome.status,
            time=self.started_wall,
            key_name=self.key_name,
            model_requested=self.model_requested,
            model_sent=self.model_sent,
            stream=self.stream,
            error_code=outcome.error_code,
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            ttft_ms=(outcome.first_output_at - self.started_at) * 1000 if outcome.first_output_at else None,
            duration_ms=(end - self.started_at) * 1000,
            upstream_request_id=self.upstream_request_id,
            request_id=self.request_id,
            account=account.alias if account is not None else None,
        )
        if counted_slot and outcome.error_code and outcome.error_code != "client_disconnected":
            gateway.count_upstream_error(outcome.error_code)
        gateway.record(self.method, self.path, record)

    def fail(self, error: APIError) -> None:
        self.finish(StreamOutcome(status=error.status_code, error_code=error.code or error.type))


def token_counts(usage: Mapping[str, Any] | None) -> tuple[int, int, int, int]:
    """``(input, cached, output, reasoning)`` from a Responses ``usage`` object (0 when absent)."""
    if not usage:
        return 0, 0, 0, 0

    def number(value: Any) -> int:
        return int(value) if isinstance(value, int | float) else 0

    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return (
        number(usage.get("input_tokens")),
        number(input_details.get("cached_tokens") if isinstance(input_details, Mapping) else 0),
        number(usage.get("output_tokens")),
        number(output_details.get("reasoning_tokens") if isinstance(output_details, Mapping) else 0),
    )


class Gateway:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenSource,
        upstream: UpstreamClient,
        *,
        usage_writer: UsageWriter | None = None,
        metrics: Metrics | None = None,
        pool: PooledUpstream | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.upstream = upstream
        #: the account pool (routing and failover); None: every request goes through ``upstream`` as is
        self.pool = pool
        self.usage_writer = usage_writer
        self.metrics = metrics
        #: per-key budgets (set by the app factory); None: no budget is checked
        self.budgets: BudgetTracker | None = None
        self.limiter = StreamLimiter(settings.limits.max_concurrent_streams)
        self.models = ModelCatalog(
            upstream.fetch_models, ttl=settings.upstream.models_cache_ttl, fallback=settings.upstream.models
        )
        if metrics is not None:
            metrics.known_model = self.models.known  # the model label: catalog models, else "other"
        self.latest_rate_limits: rate_limits.RateLimitSnapshot | None = None
        self._rate_limits_saved_at = 0.0
        self._last_raw_rate_limits: dict[str, Any] = {}  # source -> what it reported last
        self._default_instructions: Callable[[str], str] = lambda _model: ""
        #: the streams being pumped; a shutdown ends those still open after its grace period.
        self.open_streams = OpenStreams()
        self._shutdown_timer: asyncio.TimerHandle | None = None
        self._installation_id: str | None = None
        upstream.on_headers = self._on_upstream_headers

    # ---- the model catalog ------------------------------------------------------------------
    async def model_rules(self) -> ModelRules:
        """The catalog's rules (the fallback table's while it cannot be had): what every route reads.
        Not signed in: the rules there are, without asking the backend."""
        has = getattr(self.tokens, "has_credentials", None)
        if has is not None and not has():
            return self.models.rules
        return await self.models.current_rules()

    @property
    def installation_id(self) -> str:
        """The stable installation id in ``$CODEXGATE_HOME`` (read, or created, once per process)."""
        if self._installation_id is None:
            self._installation_id = installation_id(self.settings.home)
        return self._installation_id

    def _after_upstream_error(self, error: APIError) -> None:
        """A backend answer naming an unknown or gated model: read the catalog again on the next request."""
        if error.code in ("model_not_found", "client_version_too_old") or (
            error.status_code == 404 and "model" in error.message.lower()
        ):
            self.models.invalidate()

    def begin_shutdown(self, grace: float) -> None:
        """Called on SIGTERM (once or more): open streams get ``grace`` s from the first call, then end.
        New connections are refused by uvicorn, which is shutting down."""
        if self._shutdown_timer is None:
            self._shutdown_timer = asyncio.get_running_loop().call_later(grace, self.open_streams.stop_all)

    def set_default_instructions(self, resolver: Callable[[str], str]) -> None:
        self._default_instructions = resolver

    # ---- rate limits --------------------------------------------------------------------
    def _on_upstream_headers(self, headers: Mapping[str, str]) -> None:
        codex = codex_headers(headers)
        if not self._repeated_rate_limits("headers", codex):
            self.record_rate_limits(rate_limits.from_headers(codex))

    def record_rate_limit_event(self, event: Mapping[str, Any]) -> None:
        """A ``codex.rate_limits`` stream event."""
        if not self._repeated_rate_limits("event", event.get("rate_limits")):
            self.record_rate_limits(rate_limits.from_event(event))

    def _repeated_rate_limits(self, source: str, raw: Any) -> bool:
        """Whether ``source`` (headers or events) reports just what it did last time, as it does for
        most requests: then only the time of the observation moves, without parsing it again."""
        latest = self.latest_rate_limits
        if raw and latest is not None and self._last_raw_rate_limits.get(source) == raw:
            latest["observed_at"] = time.time()
            self._save_rate_limits_if_due(latest)
            return True
        self._last_raw_rate_limits[source] = raw
        return False

    def record_rate_limits(self, snapshot: rate_limits.RateLimitSnapshot | None) -> None:
        if not snapshot:
            return
        merged = {**(self.latest_rate_limits or {}), **snapshot}
        self.latest_rate_limits = merged
        if self.metrics is not None:
            self.metrics.rate_limits(merged)
        self._save_rate_limits_if_due(merged)

    def _save_rate_limits_if_due(self, snapshot: rate_limits.RateLimitSnapshot) -> None:
        now = time.monotonic()
        if now - self._rate_limits_saved_at >= RATE_LIMIT_SAVE_INTERVAL:
            self._rate_limits_saved_at = now
            path = self.settings.rate_limits_file
            try:
                asyncio.get_running_loop().run_in_executor(None, rate_limits.save, path, dict(snapshot))
            except RuntimeError:
                rate_limits.save(path, snapshot)

    def flush_rate_limits(self) -> None:
        if self.latest_rate_limits:
            rate_limits.save(self.settings.rate_limits_file, self.latest_rate_limits)

    # ---- usage ----------------------------------------------------------------------------
    def record(self, method: str, path: str, record: UsageRecord) -> None:
        """One finished request: a usage row (queued, off the request path), metrics, the access log."""
        if self.usage_writer is not None:
            self.usage_writer.submit(record)
        if self.metrics is not None:
            self.metrics.request_finished(record)
        log_usage(method, path, record)

    def account_finished(self, account: AccountState, outcome: StreamOutcome, tokens: int) -> None:
        """A call an account served ended: its rate-limit event and tokens go to that account."""
        pool = self.pool
        if pool is None:
            return
        if outcome.rate_limits:
            pool.update_windows_from_event(account, outcome.rate_limits)
        if tokens:
            account.count_usage(usage_day(time.time()), tokens=tokens)

    def count_upstream_error(self, code: str | None) -> None:
        if self.metrics is not None:
            self.metrics.upstream_error(code)

    # ---- calls ----------------------------------------------------------------------------
    async def require_credentials(self) -> None:
        """401 with a login hint when no credentials are present (with several instances: not even in the
        shared store, read once more before answering)."""
        has = getattr(self.tokens, "has_credentials", None)
        if has is None or has():
            return
        catch_up = getattr(self.tokens, "catch_up", None)
        if catch_up is not None:
            await catch_up()
        if not has():
            own = self.settings.auth_file
            codex = self.settings.codex_auth_file
            raise APIError(
                401,
                f"Not signed in to ChatGPT: no credentials in {own} or {codex}. Run `codexgate login`.",
                type="authentication_error",
                code="not_logged_in",
            )

    def begin(self, request: Request, endpoint: str, *, model_requested: str | None, stream: bool) -> Call:
        """A new upstream call, after the key's budget allows it (its error, in the client's dialect,
        before anything goes upstream: expired 401, model not allowed 403, over budget 429)."""
        state = request.scope.setdefault("state", {})
        key_info = state.get("key_info")
        if key_info is not None and self.budgets is not None:
            refused = self.budgets.check(key_info, model_requested, time.time())
            if refused is not None:
                raise refused
        call = Call(
            gateway=self,
            request_id=request_id_of(request.scope),
            endpoint=endpoint,
            method=request.method,
            path=request.scope["path"],
            key_name=state.get("key_name"),
            model_requested=model_requested,
            model_sent=None,
            stream=stream,
            key_info=key_info,
        )
        # The layer in front finishes the call if the endpoint did not (an unexpected error): the
        # slot and the upstream connection are given back on every path.
        state["call"] = call
        return call

    def shape(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str],
        *,
        lite: bool,
        client_headers: Mapping[str, str],
        fill_instructions: bool = True,
        fill_summary: bool = True,
    ) -> tuple[dict[str, Any], str]:
        """The body the backend gets (shaped; ``prompt_cache_key`` and ``client_metadata`` set) and its session id."""
        shaped = shape_for_codex(
            body,
            default_instructions=self._default_instructions,
            reasoning_summary=self.settings.translation.reasoning_summary,
            lite=lite,
            fill_instructions=fill_instructions,
            fill_summary=fill_summary,
        )
        if shaped.dropped:
            logger.debug("dropped fields the Codex backend rejects: %s", ", ".join(shaped.dropped))
        session_id, cache_key = session_and_cache_key(shaped.body, headers)
        shaped.body["prompt_cache_key"] = cache_key
        if not isinstance(shaped.body.get("client_metadata"), Mapping):
            shaped.body["client_metadata"] = client_metadata(
                installation=self.installation_id,
                session_id=session_id,
                thread_id=client_headers.get("thread-id", session_id),
                turn_id=str(uuid.uuid4()),
                extra=client_headers,
            )
        return shaped.body, session_id

    async def open(
        self,
        call: Call,
        request: HTTPConnection,
        body: dict[str, Any],
        *,
        lite: bool = False,
        client_headers: Mapping[str, str] | None = None,
        fill_instructions: bool = True,
        fill_summary: bool = True,
    ) -> UpstreamStream:
        """Shape ``body`` for the backend and open the stream; on error the call is recorded.

        ``lite``: the body is in the Responses Lite shape (nothing added that Lite has not);
        ``client_headers``: a Codex client's own headers to carry over (already checked);
        ``fill_instructions`` / ``fill_summary``: see :func:`~codexgate.upstream.shaping.shape_for_codex`."""
        carried = dict(client_headers or {})
        if lite:
            carried[LITE_HEADER] = "true"
        try:
            shaped, session_id = self.shape(
                body,
                request.headers,
                lite=lite,
                client_headers=carried,
                fill_instructions=fill_instructions,
                fill_summary=fill_summary,
            )
            call.model_sent = str(shaped.get("model"))
            self.limiter.acquire()
            call.holds_slot = True
            if self.metrics is not None:
                self.metrics.stream_opened()
            cache_key = shaped.get("prompt_cache_key")
            session_key = scoped_session_key(call.key_name, cache_key) if isinstance(cache_key, str) else None
            if isinstance(request, Request):  # an HTTP client whose disconnect can be watched
                upstream = await self._open_watching_client(request, call, shaped, session_id, session_key, carried)
            else:  # a WebSocket turn: its socket's own loop notices a close
                upstream = await self._open_upstream(call, shaped, session_id, session_key, carried)
        except APIError as error:
            self._after_upstream_error(error)
            call.fail(error)
            raise
        except BaseException:
            call.finish(StreamOutcome(status=499, error_code="cancelled"))
            raise
        call.upstream_request_id = upstream.request_id
        call.upstream = upstream
        return upstream

    async def _open_upstream(
        self,
        call: Call,
        body: dict[str, Any],
        session_id: str,
        session_key: str | None,
        client_headers: Mapping[str, str],
    ) -> UpstreamStream:
        """The live stream: through the account pool when there is one (``call.account`` says which)."""
        pool = self.pool
        if pool is None:
            return await self.upstream.open_stream(
                body, session_id=session_id, request_id=call.request_id, client_headers=client_headers
            )
        opened = await pool.open(
            body,
            session_id=session_id,
            request_id=call.request_id,
            session_key=session_key,
            client_headers=client_headers,
            allowed_accounts=frozenset(call.key_info.limits.allowed_accounts) if call.key_info else frozenset(),
        )
        call.account = opened.account
        return opened.stream

    async def _open_watching_client(
        self,
        request: Request,
        call: Call,
        body: dict[str, Any],
        session_id: str,
        session_key: str | None,
        client_headers: Mapping[str, str],
    ) -> UpstreamStream:
        """Open the upstream stream while watching the client (its body has been read, so the next
        message can only be its disconnect): a client that leaves while the backend has not answered
        yet cancels the upstream request at once (499, slot freed), instead of holding both until
        ``read_timeout``."""
        opening = asyncio.ensure_future(self._open_upstream(call, body, session_id, session_key, client_headers))
        watcher = asyncio.ensure_future(_client_gone(request.receive))
        try:
            await asyncio.wait((opening, watcher), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            opening.cancel()
            raise
        finally:
            watcher.cancel()
        if opening.done():
            return opening.result()
        opening.cancel()
        try:
            await opening
        except BaseException:  # noqa: S110 - cancelled as asked (or failed meanwhile): either way nobody waits
            pass
        else:  # it answered just as the client left: close what arrived
            opening.result().close()
        raise client_gone_error()


async def _client_gone(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def client_gone_error() -> APIError:
    return APIError(
        499,
        "The client disconnected before the Codex backend answered.",
        type="client_disconnected",
        code="client_disconnected",
    )
