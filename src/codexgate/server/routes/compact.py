"""``POST /v1/responses/compact``: the unary compaction call older Codex clients make, passed through.

The body goes to ``{base}/responses/compact`` with the same credentials and headers as a Responses
turn (a Codex client's own headers carried over); it is a unary JSON call, so ``store`` and ``stream``
are removed rather than forced, as are the fields the backend refuses. The model name is resolved like
any other (an effort alias becomes model + effort). Whatever JSON the backend answers goes back as it
is; its errors are mapped as elsewhere. Newer clients compact in-band (``compaction_trigger`` input
items over ``/v1/responses``), which the Responses passthrough carries untouched.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from codexgate.errors import APIError
from codexgate.server.body import read_json
from codexgate.server.endpoints import endpoint
from codexgate.server.gateway import gateway_of
from codexgate.server.model_choice import check_model
from codexgate.server.openapi import openapi_body
from codexgate.server.request_models import ResponsesRequest
from codexgate.server.streaming import StreamOutcome
from codexgate.upstream.headers import carried_client_headers
from codexgate.upstream.session import session_and_cache_key
from codexgate.upstream.shaping import STRIPPED_FIELDS

router = APIRouter()

__all__ = ["compact_body", "router"]


def compact_body(body: dict[str, Any], model: str, effort: str | None) -> dict[str, Any]:
    """The body for ``/responses/compact``: no ``store``/``stream``, no refused fields, a list ``input``."""
    shaped = {key: value for key, value in body.items() if key not in ("store", "stream", *STRIPPED_FIELDS)}
    shaped["model"] = model
    if effort is not None:
        reasoning = dict(shaped.get("reasoning") or {})
        reasoning.setdefault("effort", effort)
        shaped["reasoning"] = reasoning
    raw_input = shaped.get("input")
    if isinstance(raw_input, str):
        shaped["input"] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw_input}]}]
    elif raw_input is None:
        shaped["input"] = []
    return shaped


@router.post("/v1/responses/compact", openapi_extra=openapi_body(ResponsesRequest))
@router.post("/responses/compact", openapi_extra=openapi_body(ResponsesRequest), include_in_schema=False)
@endpoint(dialect="openai")  # a unary JSON call: served through FastAPI, not the direct way
async def compact_response(request: Request) -> Response:
    gateway = gateway_of(request)
    body = await read_json(request, ResponsesRequest, gateway.settings.limits.max_body_size)
    requested = str(body["model"])
    call = gateway.begin(request, "responses.compact", model_requested=requested, stream=False)
    try:
        client_headers = carried_client_headers(request.headers)
        await gateway.require_credentials()
        rules = await gateway.model_rules()
        resolved = rules.resolve(requested)
        check_model(gateway, rules, requested, resolved)
        shaped = compact_body(body, resolved.slug, resolved.effort)
        call.model_sent = resolved.slug
        session_id, _cache_key = session_and_cache_key(shaped, request.headers)
        _status, answer, codex = await gateway.upstream.compact(
            shaped, session_id=session_id, request_id=call.request_id, client_headers=client_headers
        )
    except APIError as error:
        call.fail(error)
        raise
    call.finish(StreamOutcome(status=200))
    return Response(answer, media_type="application/json", headers=codex)
