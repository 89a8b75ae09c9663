"""The upstream simulator: a real aiohttp server on 127.0.0.1 speaking the Codex backend's API.

``POST …/responses`` answers with the SSE stream (or HTTP error, or fault) of a :class:`Scenario`;
``GET …/models`` with the model list; ``POST …/responses/compact`` and the WebSocket on
``GET …/responses`` are in :mod:`codexgate.testing.simulator_extras`; ``POST …/oauth/token`` stands in
for the sign-in server's refresh (:class:`~codexgate.testing.demo_auth.TokenIssuer`: throw-away
tokens); ``/__simulator/…`` is the control API of :mod:`codexgate.testing.simulator_control`. Every
request is recorded in :attr:`UpstreamSimulator.requests` with the timing of its answer. Paths are matched on their
last segment, so any base path works.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from codexgate.testing.accounts import AccountLimits, account_of, in_stream_limit_events
from codexgate.testing.demo_auth import TokenIssuer
from codexgate.testing.http_errors import http_error
from codexgate.testing.models_catalog import default_models
from codexgate.testing.recorded import RateLimits, RecordedRequest
from codexgate.testing.scenarios import (
    FAULT_SCENARIOS,
    Defaults,
    RequestContext,
    Scenario,
    UnknownScenario,
    iter_events,
    last_user_text,
    scenario_from_prompt,
)
from codexgate.testing.simulator_control import CONTROL_PREFIX, control
from codexgate.testing.simulator_extras import compact, is_websocket_upgrade, websocket
from codexgate.testing.sse_events import Event, encode_event
from codexgate.testing.validation import Rejection, check_auth, check_body

NON_JSON_LINE = b"data: not json\n\n"
SLOW_EVENT_DELAY = 0.25
MAX_HEADER_BYTES = 65_536
STREAM_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


class UpstreamSimulator:
    """A stand-in for ``https://chatgpt.com/backend-api/codex``. ``async with`` it, or ``start``/``stop``.

    Scenario choice per ``/responses`` request: the next one queued with :meth:`enqueue`, else a
    ``scenario:NAME`` marker in the last user message, else :attr:`default_scenario`.
    ``max_recorded`` bounds :attr:`requests` (the stand-alone simulator keeps the last 1,000).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        event_delay: float = 0.0,
        header_delay: float = 0.0,
        tokens: int | None = None,
        text: str | None = None,
        coalesce: bool = False,
        empty_final_output: bool = False,
        default_scenario: Scenario | str = "text",
        validate: bool = True,
        require_auth: bool = True,
        accepted_tokens: Collection[str] | None = None,
        require_account_id: bool = False,
        rate_limits: RateLimits | None = None,
        rate_limits_event: bool = True,
        models: list[dict[str, Any]] | None = None,
        models_status: int | None = None,
        max_recorded: int | None = None,
        token_issuer: TokenIssuer | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.event_delay = event_delay
        self.header_delay = header_delay
        self.tokens = tokens
        self.text = text
        self.coalesce = coalesce
        self.empty_final_output = empty_final_output
        self.default_scenario = Scenario(default_scenario) if isinstance(default_scenario, str) else default_scenario
        self.validate = validate
        self.require_auth = require_auth
        self.accepted_tokens: set[str] | None = set(accepted_tokens) if accepted_tokens is not None else None
        self.require_account_id = require_account_id
        self.rate_limits = rate_limits or RateLimits()
        self.rate_limits_event = rate_limits_event
        self.models: list[dict[str, Any]] = models if models is not None else default_models()
        self.models_status = models_status
        #: answers ``POST …/oauth/token`` (refresh grant); point ``auth_issuer`` at :attr:`base_url`.
        self.token_issuer = token_issuer if token_issuer is not None else TokenIssuer()
        #: every request, oldest first; only the last ``max_recorded`` when that is set (a long-running
        #: simulator would otherwise keep them all, and its collector's pauses would grow with them).
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._queue: deque[Scenario] = deque()
        self._runner: web.ServerRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._stopping = False
        #: several accounts: per-account limits and rate-limit figures (see :mod:`codexgate.testing.accounts`)
        self.accounts = AccountLimits()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: requests go to ``{base_url}/responses`` and ``{base_url}/models``."""
        if self._runner is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        server = web.Server(
            self._handle,
            handler_cancellation=True,
            access_log=None,
            max_line_size=MAX_HEADER_BYTES,
            max_field_size=MAX_HEADER_BYTES,
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        sockets = runner.addresses
        self.port = int(sockets[0][1])
        self._runner = runner
        self._stopping = False

    async def stop(self) -> None:
        """Close the listener, end open answers (never_answer, stalls …) and free the port."""
        self._stopping = True
        runner, self._runner = self._runner, None
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> UpstreamSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- test control -------------------------------------------------------------------------
    def enqueue(self, *scenarios: Scenario | str) -> None:
        """Queue scenarios, consumed one per ``/responses`` request in order."""
        for scenario in scenarios:
            self._queue.append(Scenario(scenario) if isinstance(scenario, str) else scenario)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        """Forget recorded requests and queued scenarios."""
        self.requests.clear()
        self._queue.clear()

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/responses")]

    @property
    def models_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/models")]

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    # -- for simulator_extras ------------------------------------------------------------------
    def json_answer(self, record: RecordedRequest, status: int, body: Any) -> web.Response:
        return self._json(record, status, body)

    def auth_rejection(self, record: RecordedRequest) -> Rejection | None:
        return self._auth_rejection(record)

    def choose(self, record: RecordedRequest) -> Scenario:
        return self._choose(record)

    # -- request handling ---------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            record = await self._record(request)
            return await self._dispatch(request, record)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _dispatch(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        try:
            path = request.path.rstrip("/")
            if path.startswith(CONTROL_PREFIX):
                return control(self, request, record)
            if path.endswith("/responses/compact") and request.method == "POST":
                return compact(self, record)
            if path.endswith("/responses") and is_websocket_upgrade(request):
                return await websocket(self, request, record)
            if path.endswith("/responses"):
                if request.method != "POST":
                    return self._json(record, 405, {"detail": "Method Not Allowed"})
                return await self._responses(request, record)
            if path.endswith("/models"):
                if request.method != "GET":
                    return self._json(record, 405, {"detail": "Method Not Allowed"})
                return self._models(record)
            if path.endswith("/oauth/token"):
                if request.method != "POST":
                    return self._json(record, 405, {"detail": "Method Not Allowed"})
                record.scenario = "oauth_token"
                if self.token_issuer.delay > 0:  # before the token is spent: a cut request spends nothing
                    await asyncio.sleep(self.token_issuer.delay)
                status, answer = self.token_issuer.answer(record.body, request.headers.get("content-type", ""))
                return self._json(record, status, answer)
            return self._json(record, 404, {"detail": "Not Found"})
        except asyncio.CancelledError:
            record.finish("stopped" if self._stopping else "disconnected")
            raise
        except ConnectionError:
            record.finish("disconnected")
            return web.Response(status=499)  # never reaches the client; keeps aiohttp from logging an error
        finally:
            record.finish("completed")

    async def _record(self, request: web.BaseRequest) -> RecordedRequest:
        # aiohttp has already undone a gzip/deflate/br Content-Encoding (auto_decompress).
        body = await request.content.read() if request.can_read_body else b""
        parsed: Any = None
        if body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            json=parsed,
            received_at=time.monotonic(),
            request_id=str(uuid.uuid4()),
        )
        self.requests.append(record)
        return record

    def _json(
        self, record: RecordedRequest, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        record.status = status
        record.outcome = record.outcome or ("completed" if status < 400 else "rejected")
        answer_headers = {"x-request-id": record.request_id, **(headers or {})}
        return web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json", headers=answer_headers
        )

    def _auth_rejection(self, record: RecordedRequest) -> Rejection | None:
        if not self.require_auth:
            return None
        return check_auth(
            record.headers, accepted_tokens=self.accepted_tokens, require_account_id=self.require_account_id
        )

    def _models(self, record: RecordedRequest) -> web.Response:
        record.scenario = "models"
        rejection = self._auth_rejection(record)
        if rejection is not None:
            return self._json(record, rejection.status, rejection.body)
        if self.models_status is not None and self.models_status >= 400:
            return self._json(record, self.models_status, {"detail": "Internal Server Error"})
        response = self._json(record, 200, {"models": self.models})
        record.outcome = "models"
        return response

    def _choose(self, record: RecordedRequest) -> Scenario:
        if self._queue:
            return self._queue.popleft()
        body = record.json if isinstance(record.json, dict) else {}
        named = scenario_from_prompt(last_user_text(body))
        return Scenario(named) if named is not None else self.default_scenario

    async def _responses(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        limit_headers = self._account_limit_headers(record)
        rejection = self._auth_rejection(record)
        if rejection is None:
            refused = await self._account_refusal(request, record, limit_headers)
            if refused is not None:
                return refused
        if rejection is None and self.validate:
            rejection = (
                Rejection(400, {"detail": "We could not parse the JSON body of your request."})
                if record.json is None
                else check_body(record.json, record.headers, self.models)
            )
        if rejection is not None:
            return self._json(record, rejection.status, rejection.body, limit_headers)
        try:
            scenario = self._choose(record)
        except UnknownScenario as exc:  # the backend's shape for a request it refuses
            return self._json(record, 400, {"detail": str(exc)}, limit_headers)
        record.scenario = scenario.name
        header_delay = scenario.header_delay if scenario.header_delay is not None else self.header_delay
        if header_delay > 0:
            await asyncio.sleep(header_delay)
        if scenario.is_http_error:
            status, error_body, extra = http_error(scenario, plan_type=self.rate_limits.plan_type)
            record.status = status
            record.outcome = "http_error"
            headers = {"x-request-id": record.request_id, **limit_headers, **extra}
            return web.Response(status=status, body=error_body, headers=headers)
        if scenario.name == "never_answer":
            await self._wait_forever()
        request_body = record.json if isinstance(record.json, dict) else {}
        context = RequestContext.from_body(request_body, len(record.body))
        events = iter_events(scenario, context, Defaults(self.text, self.tokens, self.empty_final_output))
        first = next(events, None)  # the head carries nothing of it, but the record wants the response id
        if first is not None:
            response_object = first.get("response")
            if isinstance(response_object, dict):
                record.response_id = response_object.get("id")
            events = itertools.chain((first,), events)
        response = web.StreamResponse(
            status=200,
            headers={"x-request-id": record.request_id, **STREAM_HEADERS, **limit_headers, **(scenario.headers or {})},
        )
        await response.prepare(request)
        record.status = 200
        record.headers_sent_at = time.monotonic()
        if scenario.name == "close_before_events":
            return self._cut(request, record, response, "closed")
        use_event = scenario.rate_limits_event if scenario.rate_limits_event is not None else self.rate_limits_event
        await self._send(request, record, response, scenario, events, use_event)
        return response

    # -- several accounts ----------------------------------------------------------------------
    def set_limit(self, account_id: str, remaining_requests: int, resets_in: float, *, in_stream: bool = False) -> None:
        """``account_id`` serves ``remaining_requests`` more requests, then gets ``usage_limit_reached``
        429s for ``resets_in`` seconds (after which it serves again); ``in_stream``: the limit comes in a
        200 stream before any output instead (see :func:`~codexgate.testing.accounts.in_stream_limit_events`)."""
        self.accounts.set_limit(account_id, remaining_requests, resets_in, in_stream=in_stream)

    def set_account_rate_limits(self, account_id: str, rate_limits: RateLimits) -> None:
        """The ``x-codex-*`` figures of ``account_id``'s answers (others get :attr:`rate_limits`)."""
        self.accounts.rate_limits[account_id] = rate_limits

    def requests_of(self, account_id: str) -> list[RecordedRequest]:
        """The ``/responses`` requests that came from ``account_id``."""
        return [r for r in self.responses_requests if r.account == account_id]

    def _account_limit_headers(self, record: RecordedRequest) -> dict[str, str]:
        record.account = account_of(record.headers)
        figures = self.accounts.rate_limits.get(record.account or "", self.rate_limits)
        return figures.headers()

    async def _account_refusal(
        self, request: web.BaseRequest, record: RecordedRequest, limit_headers: dict[str, str]
    ) -> web.StreamResponse | None:
        refused = self.accounts.refusal(record.account, self.rate_limits.plan_type)
        if refused is None:
            return None
        record.scenario = "account_usage_limit"
        if not refused.in_stream:
            record.status = 429
            record.outcome = "http_error"
            headers = {"x-request-id": record.request_id, "content-type": "application/json", **limit_headers}
            return web.Response(status=429, body=refused.body(), headers=headers)
        body = record.json if isinstance(record.json, dict) else {}
        events = in_stream_limit_events(body, str(body.get("model") or ""), refused.error)
        headers = {"x-request-id": record.request_id, **STREAM_HEADERS, **limit_headers}
        response = web.StreamResponse(status=200, headers=headers)
        await response.prepare(request)
        record.status = 200
        record.headers_sent_at = time.monotonic()
        chunks: list[tuple[str, bytes]] = [(str(event["type"]), encode_event(event)) for event in events]
        if self.rate_limits_event:
            figures = self.accounts.rate_limits.get(record.account or "", self.rate_limits)
            chunks.insert(0, ("codex.rate_limits", encode_event(figures.event())))
        try:
            await self._write_each(record, response, chunks, 0.0)
        except ConnectionError:
            record.finish("disconnected")
            return response
        record.finish("usage_limit_in_stream")
        await response.write_eof()
        return response

    def _chunks(
        self, scenario: Scenario, events: Iterator[Event], rate_limits_event: bool
    ) -> Iterator[tuple[str, bytes]]:
        """``(type, bytes)`` of each piece to write, made as it is needed; a fault scenario's cut or bad
        line comes after ``fault_after`` events (the rate-limits event not counted)."""
        stream: Iterator[tuple[str, bytes]] = ((str(event.get("type")), encode_event(event)) for event in events)
        if rate_limits_event:
            stream = itertools.chain((("codex.rate_limits", encode_event(self.rate_limits.event())),), stream)
        name = scenario.name
        if name not in FAULT_SCENARIOS:
            yield from stream
            return
        cut = max(0, scenario.fault_after) + (1 if rate_limits_event else 0)
        yield from itertools.islice(stream, cut)
        if name == "non_json_data":
            yield "not json", NON_JSON_LINE
            yield from stream

    async def _send(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        response: web.StreamResponse,
        scenario: Scenario,
        events: Iterator[Event],
        rate_limits_event: bool,
    ) -> None:
        delay = scenario.event_delay if scenario.event_delay is not None else self.event_delay
        if scenario.name == "slow" and scenario.event_delay is None:
            delay = max(delay, SLOW_EVENT_DELAY)
        chunks = self._chunks(scenario, events, rate_limits_event)
        name = scenario.name
        coalesce = scenario.coalesce if scenario.coalesce is not None else self.coalesce
        try:
            if coalesce and delay <= 0:
                pieces = list(chunks)
                record.event_types.extend(kind for kind, _ in pieces)
                await response.write(b"".join(chunk for _, chunk in pieces))
                now = time.monotonic()
                record.first_event_at = now
                record.event_times.extend([now] * len(pieces))
            else:
                await self._write_each(record, response, chunks, delay)
        except ConnectionError:  # the client went away between two writes
            record.finish("disconnected")
            return
        if name == "drop_mid_stream":
            self._cut(request, record, response, "dropped")
            await self._wait_forever()
        elif name == "stall_after":
            await self._wait_forever()
        else:
            record.finish("completed")  # before the last bytes, so a client that saw the end sees it recorded
            await response.write_eof()

    async def _write_each(
        self, record: RecordedRequest, response: web.StreamResponse, chunks: Iterable[tuple[str, bytes]], delay: float
    ) -> None:
        types = record.event_types
        times = record.event_times
        for index, (kind, chunk) in enumerate(chunks):
            if delay > 0 and index:
                await asyncio.sleep(delay)
            types.append(kind)
            await response.write(chunk)
            times.append(time.monotonic())
            if not index:
                record.first_event_at = times[-1]

    def _cut(
        self, request: web.BaseRequest, record: RecordedRequest, response: web.StreamResponse, outcome: str
    ) -> web.StreamResponse:
        """Abort the TCP connection (no chunked terminator): the client sees a broken body."""
        record.finish(outcome)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return response

    async def _wait_forever(self) -> None:
        await asyncio.Event().wait()
