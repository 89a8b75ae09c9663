"""``POST /v1/responses``: Responses API clients get the upstream stream passed through.

The body goes upstream after the same backend shaping as chat requests (``store: false``, stripped
fields, instructions filled only when absent); unknown tools, items and fields pass unchanged.
Streamed events are forwarded one by one; only the ``model`` inside ``response`` objects is set
back to the name the client asked for, and the backend's own ``codex.rate_limits`` events reach only
the Codex CLI (other clients' typed parsers know only the standard events). Non-streaming requests
get the aggregated Response object.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from codexgate.errors import APIError, invalid_request
from codexgate.protocol.aggregate import ResponseAggregator
from codexgate.protocol.responses_passthrough import ResponsesPassthrough
from codexgate.server.answers import aggregated, streamed
from codexgate.server.body import read_json
from codexgate.server.endpoints import endpoint
from codexgate.server.gateway import gateway_of
from codexgate.server.model_choice import prepare_responses
from codexgate.server.openapi import openapi_body
from codexgate.server.request_models import ResponsesRequest, check_session_headers
from codexgate.server.streaming import StreamOutcome

router = APIRouter()


class ResponsesConverter(ResponsesPassthrough):
    """The passthrough, reporting how the stream ended to the call's outcome."""

    def ended(self) -> bool:
        """A terminal event (or an undecodable one) was passed on: nothing more is read upstream."""
        return self.terminal is not None

    def outcome(self, outcome: StreamOutcome) -> None:
        outcome.usage = self.usage
        outcome.rate_limits = self.rate_limits
        error_code = self.error_code
        if error_code is not None and outcome.error_code is None:
            outcome.status = 502
            outcome.error_code = error_code


def is_codex_client(request: Request) -> bool:
    """The Codex CLI understands its backend's ``codex.*`` events; other clients get only standard ones."""
    originator = request.headers.get("originator", "")
    agent = request.headers.get("user-agent", "")
    return originator.startswith("codex") or agent.startswith("codex")


def prepare_body(body: dict[str, Any]) -> dict[str, Any]:
    """Refuse what can't work over HTTP: ``previous_response_id`` with ``store: false`` (the WebSocket
    transport keeps its turns). Model, effort and shape are decided by ``prepare_responses``."""
    if body.get("previous_response_id"):
        raise invalid_request(
            "previous_response_id is not supported over HTTP: the ChatGPT Codex backend keeps no responses "
            "(store=false). Send the whole conversation in `input` instead (or use the WebSocket transport).",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    return body


@router.post("/v1/responses", openapi_extra=openapi_body(ResponsesRequest))
@router.post("/responses", openapi_extra=openapi_body(ResponsesRequest), include_in_schema=False)
@endpoint(dialect="openai", direct=True)
async def create_response(request: Request) -> Response:
    gateway = gateway_of(request)
    settings = gateway.settings
    body = await read_json(request, ResponsesRequest, settings.limits.max_body_size)
    check_session_headers(request.headers)
    requested_model = str(body["model"])
    stream = body.get("stream") is True
    call = gateway.begin(request, "responses", model_requested=requested_model, stream=stream)
    try:
        body = prepare_body(body)
        await gateway.require_credentials()
        prepared = await prepare_responses(gateway, body, request.headers)
    except APIError as error:
        call.fail(error)
        raise
    upstream = await gateway.open(
        call, request, prepared.body, lite=prepared.lite, client_headers=prepared.client_headers
    )

    if stream:
        return streamed(
            gateway,
            call,
            upstream,
            ResponsesConverter(requested_model, forward_codex_events=is_codex_client(request)),
        )

    aggregator = ResponseAggregator(model=requested_model, created_at=int(time.time()))
    return await aggregated(gateway, call, upstream, aggregator, request.receive)
