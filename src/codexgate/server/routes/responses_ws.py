"""WebSocket ``/v1/responses``: the Codex CLI's transport when its provider sets ``supports_websockets``.

Each text frame ``{"type": "response.create", …Responses body…}`` is one turn; each upstream event goes
back as one JSON text frame, in order, as it arrives; a socket carries any number of turns, one at a
time (a second ``response.create`` while one is in flight answers ``response_already_in_flight``).
Errors are ``error`` frames ``{"type": "error", "status": N, "error": {type, code, message, param}}``.

**Turns are expanded over HTTP.** The backend keeps nothing (``store: false``), and the Codex CLI may
send a later turn as ``previous_response_id`` plus only the new input items, after a ``generate:
false`` warm-up. The socket keeps its last turn's full input and output (bounded by
``max_body_size``, freed at close): a turn naming that response id is sent upstream as the whole
conversation over the usual HTTP stream; any other id answers ``previous_response_not_found``. A
warm-up is answered here (``response.created`` + ``response.completed`` with no output) without an
upstream call.

The upgrade passes the API-key check (``ApiKeyMiddleware`` closes with 1008) and the cross-origin rule
(a handshake with an ``Origin`` not in ``cors_origins`` is refused: browsers open sockets cross-site);
a frame above ``max_body_size`` closes with 1009; an idle socket closes after
``websocket_idle_timeout``, and any socket after ``websocket_max_lifetime`` with a
``websocket_connection_limit_reached`` error first. Each turn takes a stream slot, writes a usage
row and counts in ``codexgate_websocket_turns_total``; open sockets are the gauge
``codexgate_websockets_open``; a shutdown ends them after the grace period as it ends HTTP streams.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any, cast

import orjson
from fastapi import APIRouter, WebSocket
from prometheus_client import Counter, Gauge
from starlette.websockets import WebSocketDisconnect, WebSocketState

from codexgate.errors import APIError, type_for_status
from codexgate.observability.metrics import Metrics
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.server.gateway import Call, Gateway
from codexgate.server.model_choice import prepare_responses
from codexgate.server.request_id import new_request_id
from codexgate.server.streaming import StreamInterrupted, StreamOutcome
from codexgate.server.ws_turns import SocketMemory, TurnRecord, warmup_events

__all__ = ["router"]

router = APIRouter()
logger = logging.getLogger("codexgate.server")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012


class SocketMetrics:
    """The WebSocket gauge and counter, on the gateway's registry (made once per :class:`Metrics`)."""

    def __init__(self, metrics: Metrics) -> None:
        self.open = Gauge("codexgate_websockets_open", "WebSockets open on /v1/responses.", registry=metrics.registry)
        self.opened = Counter(
            "codexgate_websockets_opened", "WebSockets accepted on /v1/responses.", registry=metrics.registry
        )
        self.turns = Counter(
            "codexgate_websocket_turns",
            "Turns served over WebSockets, by outcome.",
            ["outcome"],
            registry=metrics.registry,
        )


def socket_metrics(websocket: WebSocket) -> SocketMetrics | None:
    state = websocket.app.state
    metrics: Metrics | None = getattr(state, "metrics", None)
    if metrics is None:
        return None
    made: SocketMetrics | None = getattr(state, "websocket_metrics", None)
    if made is None:
        made = SocketMetrics(metrics)
        state.websocket_metrics = made
    return made


def error_frame(error: APIError) -> dict[str, Any]:
    return {
        "type": "error",
        "status": error.status_code,
        "error": {"type": error.type, "code": error.code, "message": error.message, "param": error.param},
    }


def _socket_error(status: int, message: str, code: str, param: str | None = None) -> APIError:
    return APIError(status, message, type=type_for_status(status), code=code, param=param)


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    origin = websocket.headers.get("origin")
    return origin is None or origin in allowed or "*" in allowed


class ResponsesSocket:
    """One socket's state: its memory of the last turn, the turn in flight, its deadlines."""

    def __init__(self, websocket: WebSocket, gateway: Gateway, metrics: SocketMetrics | None) -> None:
        self.websocket = websocket
        self.gateway = gateway
        self.metrics = metrics
        limits = gateway.settings.limits
        self.max_frame = limits.max_body_size
        self.idle_timeout = limits.websocket_idle_timeout
        self.ends_at = time.monotonic() + limits.websocket_max_lifetime
        self.memory = SocketMemory(limit=limits.max_body_size)
        self.turn: asyncio.Task[None] | None = None
        self.call: Call | None = None
        self.closing = False
        self._send_lock = asyncio.Lock()
        self._closer: asyncio.Future[None] | None = None

    # ---- sending -------------------------------------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.websocket.client_state is WebSocketState.CONNECTED:
                await self.websocket.send_text(orjson.dumps(event).decode())

    async def close(self, code: int) -> None:
        self.closing = True
        async with self._send_lock:
            if self.websocket.client_state is WebSocketState.CONNECTED:
                await self.websocket.close(code)

    def stop(self) -> None:
        """Called by the shutdown timer: end the turn in flight (its upstream read), then the socket."""
        if self.closing:
            return
        self.closing = True
        call = self.call
        if call is not None and call.upstream is not None:
            call.upstream.interrupt(StreamInterrupted("the gateway is shutting down"))
        self._closer = asyncio.ensure_future(self._close_after_turn())

    async def _close_after_turn(self) -> None:
        turn = self.turn
        if turn is not None and not turn.done():
            await asyncio.wait([turn])
        await self.close(CLOSE_RESTART)

    # ---- the receive loop --------------------------------------------------------------
    async def serve(self) -> None:
        while not self.closing:
            remaining = self.ends_at - time.monotonic()
            if remaining <= 0:
                await self._lifetime_over()
                return
            try:
                async with asyncio.timeout(min(self.idle_timeout, remaining)):
                    message = await self.websocket.receive()
            except TimeoutError:
                if time.monotonic() >= self.ends_at:
                    await self._lifetime_over()
                elif self.turn is None or self.turn.done():
                    await self.close(CLOSE_NORMAL)  # idle
                    return
                continue
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text is None:
                continue
            if len(text) > self.max_frame or (len(text) * 4 > self.max_frame and len(text.encode()) > self.max_frame):
                await self.close(CLOSE_TOO_BIG)
                return
            await self._frame(text)

    async def _lifetime_over(self) -> None:
        error = _socket_error(
            400,
            "This WebSocket reached its maximum lifetime; open a new one.",
            code="websocket_connection_limit_reached",
        )
        await self.send(error_frame(error))
        await self.close(CLOSE_NORMAL)

    async def _frame(self, text: str) -> None:
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            frame = None
        if not isinstance(frame, dict) or frame.get("type") != "response.create":
            await self.send(error_frame(_socket_error(400, "Expected a response.create frame.", "invalid_frame")))
            return
        if self.turn is not None and not self.turn.done():
            error = _socket_error(
                400,
                "A response is already in flight on this socket; wait for it to finish.",
                code="response_already_in_flight",
            )
            await self.send(error_frame(error))
            return
        body = {key: value for key, value in frame.items() if key != "type"}
        self.turn = asyncio.ensure_future(self._turn(body))

    async def finish(self) -> None:
        """Wait for (or end) the turn in flight, and free the socket's memory."""
        turn = self.turn
        if turn is not None and not turn.done():
            call = self.call
            if call is not None and call.upstream is not None:  # the client left: stop the backend too
                call.upstream.interrupt(StreamInterrupted("the client disconnected"))
            await asyncio.wait([turn])
        self.memory.clear()

    # ---- one turn ----------------------------------------------------------------------
    async def _turn(self, body: dict[str, Any]) -> None:
        record = TurnRecord()
        try:
            await self._run_turn(body, record)
        except APIError as error:
            record.outcome = "error"
            await self.send(error_frame(error))
        except (WebSocketDisconnect, OSError):
            record.outcome = "client_disconnected"
        finally:
            if self.metrics is not None:
                self.metrics.turns.labels(record.outcome).inc()
            self.call = None

    async def _run_turn(self, body: dict[str, Any], record: TurnRecord) -> None:
        gateway = self.gateway
        requested = str(body.get("model") or "")
        if not requested:
            raise _socket_error(400, "Missing required parameter: 'model'.", "missing_required_parameter", "model")
        expanded = self.memory.expand(body)
        if body.get("generate") is False:
            response_id = "resp_" + secrets.token_hex(16)
            self.memory.remember(response_id, expanded.get("input"), [])
            for event in warmup_events(response_id, requested, int(time.time())):
                await self.send(event)
            record.outcome = "warmup"
            return
        call = self._begin(requested)
        self.call = call
        try:
            await gateway.require_credentials()
            prepared = await prepare_responses(gateway, expanded, self.websocket.headers)
        except APIError as error:
            call.fail(error)
            raise
        prepared.body["stream"] = True
        upstream = await gateway.open(
            call, self.websocket, prepared.body, lite=prepared.lite, client_headers=prepared.client_headers
        )
        outcome = StreamOutcome()
        decoder = SSEDecoder()
        complete = False
        try:
            async for data in upstream.chunks():
                for event in decoder.feed(data):
                    self._note(event, record, outcome, requested)
                    await self.send(event)
            for event in decoder.close():
                self._note(event, record, outcome, requested)
                await self.send(event)
            complete = True
        except StreamInterrupted:
            if not self.closing:  # the client left
                outcome.status, outcome.error_code, outcome.client_disconnected = 499, "client_disconnected", True
            else:
                outcome.status, outcome.error_code = 503, "server_shutting_down"
                shutting = _socket_error(503, "The gateway is shutting down.", "server_shutting_down")
                await self.send(error_frame(shutting))
        except APIError as error:
            outcome.status, outcome.error_code = error.status_code, error.code or error.type
            await self.send(error_frame(error))
        except (WebSocketDisconnect, OSError):
            outcome.status, outcome.error_code, outcome.client_disconnected = 499, "client_disconnected", True
        finally:
            upstream.close(complete=complete)
            outcome.usage = record.usage
            outcome.finished_at = time.monotonic()
            if record.failed and outcome.error_code is None:
                outcome.status, outcome.error_code = 502, record.failed
            call.finish(outcome)
        record.outcome = "completed" if complete and not record.failed else (outcome.error_code or "error")
        if record.response_id is not None and complete:
            self.memory.remember(record.response_id, prepared.body.get("input"), record.output)

    def _note(self, event: dict[str, Any], record: TurnRecord, outcome: StreamOutcome, requested: str) -> None:
        record.feed(event)
        response = event.get("response")
        if isinstance(response, dict) and "model" in response:
            event["response"] = {**response, "model": requested}
        if event.get("type") == "codex.rate_limits":
            outcome.rate_limits = event
        if outcome.first_output_at is None and str(event.get("type", "")).endswith(".delta"):
            outcome.first_output_at = time.monotonic()

    def _begin(self, requested: str) -> Call:
        scope = self.websocket.scope
        state = scope.setdefault("state", {})
        return Call(
            gateway=self.gateway,
            request_id=new_request_id(),
            endpoint="responses.websocket",
            method="WS",
            path=scope["path"],
            key_name=state.get("key_name"),
            model_requested=requested,
            model_sent=None,
            stream=True,
        )


@router.websocket("/v1/responses")
@router.websocket("/responses")
async def responses_socket(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.gateway
    if not origin_allowed(websocket, gateway.settings.server.cors_origins):
        await websocket.close(CLOSE_POLICY)
        return
    if gateway.open_streams.stopped:
        await websocket.close(CLOSE_RESTART)
        return
    await websocket.accept()
    metrics = socket_metrics(websocket)
    socket = ResponsesSocket(websocket, gateway, metrics)
    gateway.open_streams.add(cast(Any, socket))  # a shutdown's stop_all ends it like an HTTP stream
    if metrics is not None:
        metrics.open.inc()
        metrics.opened.inc()
    try:
        await socket.serve()
    except WebSocketDisconnect:
        pass
    finally:
        await socket.finish()
        gateway.open_streams.discard(cast(Any, socket))
        if metrics is not None:
            metrics.open.dec()
        await socket.close(CLOSE_RESTART if gateway.open_streams.stopped else CLOSE_NORMAL)
