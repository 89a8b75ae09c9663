"""The simulator's ``POST …/responses/compact`` and its WebSocket on ``GET …/responses``.

* ``/responses/compact`` (the unary call older Codex clients make, protocol.md §6): after the auth
  check, a body with a ``model`` and a list ``input`` and without ``store``/``stream`` answers
  ``{"output": [{"type": "compaction", "encrypted_content": …}]}``; anything else 400.
* WebSocket (``Upgrade: websocket`` on ``GET …/responses``, as the Codex CLI opens it): each text
  frame ``{"type": "response.create", …body…}`` is one turn, checked like an HTTP body and answered
  with the same events as the SSE stream, one JSON text frame each; a rejected turn answers an
  ``error`` event ``{"type": "error", "status": N, "error": {…}}``. Each turn is recorded as a
  :class:`RecordedRequest` with method ``WS``.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from codexgate.testing.recorded import RecordedRequest
from codexgate.testing.scenarios import Defaults, RequestContext, iter_events
from codexgate.testing.validation import Rejection, check_body

if TYPE_CHECKING:
    from codexgate.testing.simulator_server import UpstreamSimulator

__all__ = ["compact", "is_websocket_upgrade", "websocket"]

WS_METHOD = "WS"


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    return request.method == "GET" and request.headers.get("upgrade", "").lower() == "websocket"


def compact(simulator: UpstreamSimulator, record: RecordedRequest) -> web.Response:
    record.scenario = "compact"
    rejection = simulator.auth_rejection(record)
    body = record.json
    if rejection is None and not isinstance(body, dict):
        rejection = Rejection(400, {"detail": "We could not parse the JSON body of your request."})
    if rejection is None and isinstance(body, dict):
        for name in ("store", "stream"):
            if name in body:
                rejection = Rejection(400, {"detail": f"Unsupported parameter: {name}"})
        if not isinstance(body.get("model"), str) or not isinstance(body.get("input"), list):
            rejection = rejection or Rejection(400, {"detail": "model and input are required"})
    if rejection is not None:
        return simulator.json_answer(record, rejection.status, rejection.body)
    output = [{"type": "compaction", "encrypted_content": "cmp_" + uuid.uuid4().hex}]
    return simulator.json_answer(record, 200, {"output": output})


def _error_event(status: int, body: Any) -> dict[str, Any]:
    detail = body.get("detail") if isinstance(body, dict) else None
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    return {
        "type": "error",
        "status": status,
        "error": error or {"type": "invalid_request_error", "message": str(detail or body), "code": None},
    }


async def websocket(
    simulator: UpstreamSimulator, request: web.BaseRequest, record: RecordedRequest
) -> web.StreamResponse:
    """Serve one socket until the client closes it."""
    record.scenario = "websocket"
    rejection = simulator.auth_rejection(record)
    if rejection is not None:
        return simulator.json_answer(record, rejection.status, rejection.body)
    socket = web.WebSocketResponse(max_msg_size=32 * 1024 * 1024)
    await socket.prepare(request)
    record.status = 101
    async for message in socket:
        if message.type != WSMsgType.TEXT:
            continue
        turn = RecordedRequest(
            method=WS_METHOD,
            path=request.path,
            query={},
            headers=CIMultiDict(request.headers),
            body=message.data.encode(),
            json=None,
            received_at=time.monotonic(),
            request_id=str(uuid.uuid4()),
        )
        simulator.requests.append(turn)
        await _turn(simulator, socket, turn, message.data)
    record.finish("completed")
    return socket


async def _turn(simulator: UpstreamSimulator, socket: web.WebSocketResponse, turn: RecordedRequest, text: str) -> None:
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "response.create":
        await socket.send_str(orjson.dumps(_error_event(400, {"detail": "expected a response.create frame"})).decode())
        turn.finish("rejected")
        return
    body = {key: value for key, value in frame.items() if key != "type"}
    turn.json = body
    rejection = check_body(body, turn.headers, simulator.models) if simulator.validate else None
    if rejection is not None:
        turn.status = rejection.status
        await socket.send_str(orjson.dumps(_error_event(rejection.status, rejection.body)).decode())
        turn.finish("rejected")
        return
    scenario = simulator.choose(turn)
    turn.scenario = scenario.name
    turn.status = 200
    context = RequestContext.from_body(body, len(turn.body))
    defaults = Defaults(simulator.text, simulator.tokens, simulator.empty_final_output)
    for event in iter_events(scenario, context, defaults):
        turn.event_types.append(str(event.get("type")))
        await socket.send_str(orjson.dumps(event).decode())
        turn.event_times.append(time.monotonic())
    turn.finish("completed")
