"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API over the
Codex backend (issue 13). Both also without ``/v1``; query strings (``?beta=true``) are ignored.

A Messages request goes through the pure core: the model name is resolved by the setting
``anthropic_models`` (:func:`~codexgate.protocol.anthropic_models.resolve_model`), the body mapped
(:func:`~codexgate.protocol.anthropic_request.map_messages_request`, which answers bad input with a
400 naming the field before anything goes upstream), and the answer streamed event by event
(:class:`~codexgate.protocol.anthropic_stream.MessagesStreamTranslator`, ``ping`` during upstream
silences) or aggregated into one ``Message``. Errors use Anthropic's envelope (the endpoints' dialect).

Thinking blocks are signed with codexgate's own signature (:mod:`~codexgate.protocol.anthropic_signature`)
under the key in ``$CODEXGATE_HOME/thinking.key``, naming the account (:func:`account_tag`); a block
signed for another account, by another key, or by Anthropic is dropped from the next request.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from codexgate.errors import APIError, invalid_request
from codexgate.protocol.anthropic_aggregate import MessagesAggregator
from codexgate.protocol.anthropic_models import ModelTarget, resolve_model
from codexgate.protocol.anthropic_request import MappedMessagesRequest, map_messages_request
from codexgate.protocol.anthropic_signature import SignedReasoning, sign, verify
from codexgate.protocol.anthropic_stream import MessagesStreamTranslator
from codexgate.protocol.catalog_rules import ModelRules
from codexgate.server.answers import aggregated, streamed
from codexgate.server.anthropic_support import (
    MessageAnswer,
    MessagesConverter,
    bind_thinking,
    model_rules,
    served_tag,
    thinking_accounts,
    thinking_key,
)
from codexgate.server.body import read_json
from codexgate.server.endpoints import endpoint
from codexgate.server.gateway import Call, Gateway, gateway_of
from codexgate.server.model_choice import lite_body
from codexgate.server.openapi import openapi_body
from codexgate.token_count import count_tokens

__all__ = ["MessagesRequest", "count_message_tokens", "create_message", "router"]

router = APIRouter()
logger = logging.getLogger("codexgate.server")

SESSION_HEADER = "x-claude-code-session-id"


class MessagesRequest(BaseModel):
    """The documented shape of a Messages body; the mapper checks every field itself."""

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int
    messages: list[dict[str, Any]]
    stream: bool | None = None


class CountTokensRequest(BaseModel):
    """A count_tokens body: a Messages body without ``max_tokens``/``stream``."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[dict[str, Any]]


class _AnyObject(BaseModel):
    """Any JSON object: the mapper names the field that is wrong, in its own words."""

    model_config = ConfigDict(extra="allow")


def _target(name: str, gateway: Gateway, rules: ModelRules) -> ModelTarget:
    """Where ``name`` goes: the setting's table, then the built-in defaults over the catalog."""
    settings = gateway.settings
    slugs = [alias.slug for alias in rules.aliases() if alias.effort is None] or list(settings.upstream.models)
    target = resolve_model(
        name, settings.translation.anthropic_models, default_slug=slugs[0] if slugs else "", slugs=slugs
    )
    if not target.model:
        raise APIError(
            502,
            f"Cannot map the model '{name}': the Codex backend's model list is unavailable. "
            "Map it in the setting `anthropic_models` (or list models in the setting `models`).",
            type="upstream_error",
            code="models_unavailable",
        )
    return target


def _summary_setting(mapped: MappedMessagesRequest, summary: str) -> None:
    """The setting ``reasoning_summary`` in place of the mapper's ``auto`` (``none``: no summary)."""
    reasoning = mapped.body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("summary") == "auto" and summary != "auto":
        if summary == "none":
            del reasoning["summary"]
        else:
            reasoning["summary"] = summary


class Prepared(NamedTuple):
    mapped: MappedMessagesRequest
    lite: bool
    account: str
    key: bytes


async def _prepare(request: Request, gateway: Gateway, body: dict[str, Any], call: Call) -> Prepared:
    """The mapped request and what the answer needs; raises the request's ``APIError``."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("'model' must be a non-empty string.", param="model")
    await gateway.require_credentials()
    rules = await model_rules(gateway)
    target = _target(model.strip(), gateway, rules)
    entry = rules.entry(target.model)
    lite = rules.is_lite(target.model)
    key = thinking_key(gateway.settings.home)
    owners = thinking_accounts(gateway)  # a signature names the pool account whose reasoning it carries

    def verify_thinking(signature: str) -> SignedReasoning | None:
        signed = verify(signature, key=key)
        owner = owners.get(signed.account) if signed is not None else None
        if signed is None or owner is None:
            return None
        bind_thinking(gateway, owner, signed.encrypted_content)  # the request goes to that account
        return signed

    mapped = map_messages_request(
        body,
        target_model=target.model,
        target_effort=target.effort,
        lite=lite,
        verify_thinking=verify_thinking,
        model_efforts=entry.supported_reasoning_levels if entry is not None else None,
        session_header=request.headers.get(SESSION_HEADER),
    )
    _summary_setting(mapped, gateway.settings.translation.reasoning_summary)
    call.model_sent = target.model
    if mapped.accepted_not_sent:
        logger.debug("Messages fields accepted and not sent upstream: %s", ", ".join(mapped.accepted_not_sent))
    return Prepared(mapped, lite, "-", key)


@router.post("/v1/messages", openapi_extra=openapi_body(MessagesRequest))
@router.post("/messages", openapi_extra=openapi_body(MessagesRequest), include_in_schema=False)
@endpoint(dialect="anthropic", direct=True)
async def create_message(request: Request) -> Response:
    gateway = gateway_of(request)
    body = await read_json(request, _AnyObject, gateway.settings.limits.max_body_size)
    requested = body.get("model")
    call = gateway.begin(
        request,
        "messages",
        model_requested=requested if isinstance(requested, str) else None,
        stream=body.get("stream") is True,
    )
    try:
        mapped, lite, _, key = await _prepare(request, gateway, body, call)
        rules = await model_rules(gateway)
    except APIError as error:
        call.fail(error)
        raise
    body_for_upstream = lite_body(mapped.body, rules.resolve(mapped.upstream_model)) if lite else mapped.body
    upstream = await gateway.open(call, request, body_for_upstream, lite=lite, fill_summary=False)
    tag = served_tag(call)  # the account that produced this answer's encrypted reasoning

    def sign_reasoning(encrypted_content: str, item_id: str | None) -> str:
        try:
            return sign(encrypted_content, account=tag, key=key, item_id=item_id)
        except ValueError:  # an item id too long to carry: it is only kept for logs
            return sign(encrypted_content, account=tag, key=key)

    message_id = "msg_" + call.request_id.removeprefix("req_")
    if mapped.stream:
        translator = MessagesStreamTranslator(
            model=mapped.requested_model,
            message_id=message_id,
            thinking=mapped.thinking_display,
            sign_reasoning=sign_reasoning,
        )
        return streamed(gateway, call, upstream, MessagesConverter(translator))
    aggregator = MessagesAggregator(
        model=mapped.requested_model,
        message_id=message_id,
        thinking=mapped.thinking_display,
        sign_reasoning=sign_reasoning,
    )
    return await aggregated(gateway, call, upstream, MessageAnswer(aggregator), request.receive)


@router.post("/v1/messages/count_tokens", openapi_extra=openapi_body(CountTokensRequest))
@router.post("/messages/count_tokens", openapi_extra=openapi_body(CountTokensRequest), include_in_schema=False)
@endpoint(dialect="anthropic", direct=True)
async def count_message_tokens(request: Request) -> Response:
    """``{"input_tokens": N}``, counted locally (o200k) in a worker thread: the body is bounded by the
    body limit, and the encoder loads on the first count, not when the server starts."""
    gateway = gateway_of(request)
    body = await read_json(request, _AnyObject, gateway.settings.limits.max_body_size)
    tokens = await anyio.to_thread.run_sync(count_tokens, body)
    return JSONResponse({"input_tokens": tokens})
