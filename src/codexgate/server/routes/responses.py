"""``POST /v1/responses``: Responses API clients get the upstream stream passed through.

The body goes upstream after the same backend shaping as chat requests (``store: false``, stripped
fields, instructions filled only when absent); unknown tools, items and fields pass unchanged.
Streamed events are forwarded one by one; only the ``model`` inside ``response`` objects is set
back to the name the client asked for, and the backend's own ``codex.rate_limits`` events reach only
the Codex CLI (other clients' typed parsers know only the standard events). Non-streaming requests
get the aggregated Response object.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from codexgate.errors import APIError, invalid_request
from codexgate.protocol.aggregate import ResponseAggregator
from codexgate.protocol.chat_to_responses import split_model_effort
from codexgate.protocol.sse_writer import encode_event
from codexgate.server.answers import aggregated, streamed
from codexgate.server.body import read_json
from codexgate.server.context import gateway_of, openapi_body
from codexgate.server.request_models import ResponsesRequest
from codexgate.server.streaming import StreamOutcome

router = APIRouter()

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
OUTPUT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.custom_tool_call_input.delta",
        "response.output_item.added",
    }
)


def _error_code(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return "response_failed"


class ResponsesPassthrough:
    """Responses events -> the same events, re-encoded, with the client's model name."""

    def __init__(self, requested_model: str, *, forward_codex_events: bool) -> None:
        self.requested_model = requested_model
        self.forward_codex_events = forward_codex_events
        self.terminal: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.rate_limits: dict[str, Any] | None = None
        self._output = False
        self._sequence = 0

    def convert(self, events: list[dict[str, Any]]) -> bytes:
        if not events or self.terminal is not None:
            return b""
        out: list[bytes] = []
        for event in events:
            kind = event.get("type")
            if kind == "codexgate.protocol_error":
                self.error = {"code": "invalid_upstream_event", "message": str(event.get("message"))}
                out.append(self._error_event(self.error["code"], self.error["message"]))
                self.terminal = event
                break
            response = event.get("response")
            if isinstance(response, dict) and "model" in response:
                event = {**event, "response": {**response, "model": self.requested_model}}
            if kind in OUTPUT_EVENTS:
                self._output = True
            elif kind == "codex.rate_limits":
                self.rate_limits = event
                if not self.forward_codex_events:
                    continue
            elif kind == "error":
                self.error = {"code": event.get("code"), "message": event.get("message")}
            sequence = event.get("sequence_number")
            if isinstance(sequence, int):
                self._sequence = sequence
            out.append(encode_event(event))
            if kind in TERMINAL_EVENTS:
                self.terminal = event
                if kind == "response.failed" and self.error is None and isinstance(response, dict):
                    self.error = response.get("error") or {"code": "response_failed"}
                break
        return b"".join(out)

    def _error_event(self, code: str, message: str) -> bytes:
        self._sequence += 1
        return encode_event(
            {"type": "error", "code": code, "message": message, "param": None, "sequence_number": self._sequence}
        )

    def finish(self) -> bytes:
        if self.terminal is not None:
            return b""
        self.error = {"code": "stream_incomplete", "message": "stream closed before response.completed"}
        return self._error_event(self.error["code"], self.error["message"])

    def fail(self, error: APIError) -> bytes:
        self.error = {"code": error.code, "message": error.message}
        return self._error_event(error.code or "upstream_error", error.message)

    def has_output(self) -> bool:
        return self._output

    def outcome(self, outcome: StreamOutcome) -> None:
        response = self.terminal.get("response") if self.terminal else None
        if isinstance(response, dict):
            outcome.usage = response.get("usage")
        outcome.rate_limits = self.rate_limits
        if self.error is not None and outcome.error_code is None:
            outcome.status = 502
            outcome.error_code = _error_code(self.error)


def is_codex_client(request: Request) -> bool:
    """The Codex CLI understands its backend's ``codex.*`` events; other clients get only standard ones."""
    originator = request.headers.get("originator", "")
    agent = request.headers.get("user-agent", "")
    return originator.startswith("codex") or agent.startswith("codex")


def prepare_body(body: dict[str, Any]) -> dict[str, Any]:
    """Refuse what can't work with ``store: false``; turn an effort alias into model + effort."""
    if body.get("previous_response_id"):
        raise invalid_request(
            "previous_response_id is not supported: the ChatGPT Codex backend keeps no responses "
            "(store=false). Send the whole conversation in `input` instead.",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    model, effort = split_model_effort(str(body["model"]))
    prepared = dict(body)
    prepared["model"] = model
    if effort is not None:
        reasoning = dict(prepared.get("reasoning") or {})
        reasoning.setdefault("effort", effort)
        prepared["reasoning"] = reasoning
    return prepared


@router.post("/v1/responses", openapi_extra=openapi_body(ResponsesRequest))
@router.post("/responses", openapi_extra=openapi_body(ResponsesRequest), include_in_schema=False)
async def create_response(request: Request) -> Response:
    gateway = gateway_of(request)
    settings = gateway.settings
    body = await read_json(request, ResponsesRequest, settings.limits.max_body_size)
    requested_model = str(body["model"])
    stream = body.get("stream") is True
    call = gateway.begin(request, "responses", model_requested=requested_model, stream=stream)
    try:
        prepared = prepare_body(body)
        gateway.require_credentials()
    except APIError as error:
        call.fail(error)
        raise
    upstream = await gateway.open(call, request, prepared)

    if stream:
        return streamed(
            gateway,
            call,
            upstream,
            ResponsesPassthrough(requested_model, forward_codex_events=is_codex_client(request)),
        )

    aggregator = ResponseAggregator(model=requested_model)
    return await aggregated(gateway, call, upstream, aggregator, request.receive)
