"""``POST /v1/chat/completions``: Chat Completions over the Codex backend's Responses stream."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from codexgate.errors import APIError, invalid_request
from codexgate.protocol.aggregate import ChatCompletionAggregator
from codexgate.protocol.catalog_rules import is_lite
from codexgate.protocol.chat_to_responses import map_chat_request
from codexgate.protocol.shapes import REASONING_FORMATS
from codexgate.protocol.sse_writer import DONE, encode_chunks
from codexgate.protocol.stream_translator import ChatStreamTranslator
from codexgate.server.answers import aggregated, streamed
from codexgate.server.body import read_json
from codexgate.server.endpoints import endpoint
from codexgate.server.gateway import gateway_of
from codexgate.server.model_choice import check_model, lite_body
from codexgate.server.openapi import openapi_body
from codexgate.server.request_models import ChatCompletionRequest, check_session_headers
from codexgate.server.streaming import StreamOutcome

router = APIRouter()
logger = logging.getLogger("codexgate.server")

REASONING_HEADER = "x-codexgate-reasoning"


def pick_reasoning_format(request: Request, from_body: str | None, default: str) -> str:
    """Header ``X-Codexgate-Reasoning`` > body ``reasoning_format`` > setting ``reasoning``."""
    header = request.headers.get(REASONING_HEADER)
    if header is not None:
        value = header.strip().lower()
        if value not in REASONING_FORMATS:
            raise invalid_request(
                f"Invalid {REASONING_HEADER} header {header!r}; use one of {', '.join(REASONING_FORMATS)}.",
                param=REASONING_HEADER,
            )
        return value
    return from_body or default


class ChatConverter:
    """Responses events -> ``chat.completion.chunk`` SSE bytes."""

    def __init__(self, translator: ChatStreamTranslator) -> None:
        self.translator = translator

    def convert(self, events: list[dict[str, Any]]) -> bytes:
        feed = self.translator.feed
        if len(events) == 1:  # a paced stream: one event per read
            chunks = feed(events[0])
        else:
            chunks = []
            for event in events:
                chunks += feed(event)
        return encode_chunks(chunks) if chunks else b""

    def finish(self) -> bytes:
        tail = encode_chunks(self.translator.finish())
        return tail if self.translator.error is not None else tail + DONE

    def fail(self, error: APIError) -> bytes:
        return encode_chunks([error.envelope()])

    def has_output(self) -> bool:
        return self.translator.has_output

    def ended(self) -> bool:
        """The translator saw its terminal event (or failed): nothing more is read upstream."""
        return self.translator.done

    def outcome(self, outcome: StreamOutcome) -> None:
        translator = self.translator
        outcome.usage = translator.usage
        outcome.rate_limits = translator.rate_limits
        if translator.error is not None and outcome.error_code is None:
            outcome.status = translator.error.status_code
            outcome.error_code = translator.error.code or translator.error.type


@router.post("/v1/chat/completions", openapi_extra=openapi_body(ChatCompletionRequest))
@router.post("/chat/completions", openapi_extra=openapi_body(ChatCompletionRequest), include_in_schema=False)
@endpoint(dialect="openai", direct=True)
async def chat_completions(request: Request) -> Response:
    gateway = gateway_of(request)
    settings = gateway.settings
    body = await read_json(request, ChatCompletionRequest, settings.limits.max_body_size)
    check_session_headers(request.headers)
    stream = body.get("stream") is True
    call = gateway.begin(request, "chat.completions", model_requested=str(body.get("model")), stream=stream)
    try:
        rules = await gateway.model_rules()
        mapped = map_chat_request(body, rules)
        if mapped.dropped:
            logger.debug("ignored chat fields with no Responses equivalent: %s", ", ".join(mapped.dropped))
        reasoning_format = pick_reasoning_format(request, mapped.reasoning_format, settings.translation.reasoning)
        await gateway.require_credentials()
        upstream_body, lite = mapped.body, False
        if mapped.resolved is not None:
            check_model(gateway, rules, mapped.requested_model, mapped.resolved)
            if is_lite(mapped.resolved):
                upstream_body, lite = lite_body(mapped.body, mapped.resolved), True
    except APIError as error:
        call.fail(error)
        raise
    upstream = await gateway.open(call, request, upstream_body, lite=lite)
    completion_id = "chatcmpl-" + call.request_id.removeprefix("req_")
    created = int(time.time())

    if mapped.stream:
        translator = ChatStreamTranslator(
            model=mapped.requested_model,
            include_usage=mapped.include_usage,
            reasoning_format=reasoning_format,
            completion_id=completion_id,
            created=created,
            legacy_functions=mapped.legacy_functions,
        )
        return streamed(gateway, call, upstream, ChatConverter(translator))

    aggregator = ChatCompletionAggregator(
        model=mapped.requested_model,
        reasoning_format=reasoning_format,
        completion_id=completion_id,
        created=created,
        legacy_functions=mapped.legacy_functions,
    )
    return await aggregated(gateway, call, upstream, aggregator, request.receive)
