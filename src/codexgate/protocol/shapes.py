"""Typed shapes of what crosses the protocol boundary (TypedDicts: zero cost at run time).

Responses events stay plain ``dict[str, Any]`` on the hot path (they are parsed by orjson and read
by key); the names below document the fields the core reads and the objects it builds.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

ReasoningFormat = Literal["reasoning_content", "think", "hidden"]
REASONING_FORMATS: tuple[str, ...] = ("reasoning_content", "think", "hidden")
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

# Responses event types the core acts on.
RESPONSE_CREATED = "response.created"
RESPONSE_IN_PROGRESS = "response.in_progress"
RESPONSE_QUEUED = "response.queued"
OUTPUT_ITEM_ADDED = "response.output_item.added"
OUTPUT_ITEM_DONE = "response.output_item.done"
CONTENT_PART_ADDED = "response.content_part.added"
CONTENT_PART_DONE = "response.content_part.done"
OUTPUT_TEXT_DELTA = "response.output_text.delta"
OUTPUT_TEXT_DONE = "response.output_text.done"
ANNOTATION_ADDED = "response.output_text.annotation.added"
REFUSAL_DELTA = "response.refusal.delta"
REFUSAL_DONE = "response.refusal.done"
ARGUMENTS_DELTA = "response.function_call_arguments.delta"
ARGUMENTS_DONE = "response.function_call_arguments.done"
CUSTOM_INPUT_DELTA = "response.custom_tool_call_input.delta"
CUSTOM_INPUT_DONE = "response.custom_tool_call_input.done"
SUMMARY_PART_ADDED = "response.reasoning_summary_part.added"
SUMMARY_PART_DONE = "response.reasoning_summary_part.done"
SUMMARY_TEXT_DELTA = "response.reasoning_summary_text.delta"
SUMMARY_TEXT_DONE = "response.reasoning_summary_text.done"
REASONING_TEXT_DELTA = "response.reasoning_text.delta"
REASONING_TEXT_DONE = "response.reasoning_text.done"
RESPONSE_COMPLETED = "response.completed"
RESPONSE_INCOMPLETE = "response.incomplete"
RESPONSE_FAILED = "response.failed"
ERROR = "error"
RATE_LIMITS = "codex.rate_limits"
PROTOCOL_ERROR = "codexgate.protocol_error"


class ResponsesUsage(TypedDict, total=False):
    input_tokens: int
    input_tokens_details: dict[str, Any]
    output_tokens: int
    output_tokens_details: dict[str, Any]
    total_tokens: int


class PromptTokensDetails(TypedDict):
    cached_tokens: int


class CompletionTokensDetails(TypedDict):
    reasoning_tokens: int


class ChatUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class ChatFunction(TypedDict, total=False):
    name: str
    arguments: str


class ChatToolCallDelta(TypedDict):
    index: int
    id: NotRequired[str]
    type: NotRequired[str]
    function: NotRequired[ChatFunction]
    custom: NotRequired[dict[str, Any]]


class ChatDelta(TypedDict, total=False):
    role: str
    content: str
    refusal: str
    reasoning_content: str
    tool_calls: list[ChatToolCallDelta]
    annotations: list[dict[str, Any]]


class ChatChunkChoice(TypedDict):
    index: int
    delta: ChatDelta
    logprobs: None
    finish_reason: FinishReason | None


class ChatCompletionChunk(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: NotRequired[ChatUsage | None]


class ChatErrorChunk(TypedDict):
    error: dict[str, Any]
