"""Shape a Responses request for the ChatGPT Codex backend (protocol.md §4).

The backend rejects what the public Responses API accepts: it wants ``store: false``,
``stream: true``, a top-level ``instructions``, no role ``system`` in ``input``, no item ``id``s,
and no ``max_output_tokens``/``temperature``/``top_p``/``metadata``/``service_tier``/``user``.
This step is pure: a dict in, a new dict and the names of dropped fields out.

A **Responses Lite** body (``lite=True``, protocol.md §6) gets no ``instructions`` and no reasoning
summary added (Lite has neither), and items the backend reads as they are (``additional_tools`` with
its ``id``, ``compaction_trigger``, ``compaction``) are never rewritten, in either shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STRIPPED_FIELDS = (
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "service_tier",
    "user",
    "truncation",
    "top_logprobs",
    "background",
    "safety_identifier",
    "stream_options",
)
ENCRYPTED_REASONING = "reasoning.encrypted_content"
#: input items passed exactly as the client sent them (their ``id`` included)
UNTOUCHED_ITEM_TYPES = frozenset({"additional_tools", "compaction_trigger", "compaction", "context_compaction"})


@dataclass
class ShapedRequest:
    body: dict[str, Any]
    dropped: list[str] = field(default_factory=list)


def _strip_item_ids(items: list[Any]) -> list[Any]:
    shaped: list[Any] = []
    for item in items:
        if not isinstance(item, dict) or (isinstance(item.get("type"), str) and item["type"] in UNTOUCHED_ITEM_TYPES):
            shaped.append(item)
            continue
        item = {key: value for key, value in item.items() if key != "id"}
        if item.get("role") == "system":
            item["role"] = "developer"
        content = item.get("content")
        if isinstance(content, list):
            item["content"] = [
                {k: v for k, v in part.items() if k != "id"} if isinstance(part, dict) else part for part in content
            ]
        shaped.append(item)
    return shaped


def shape_for_codex(
    body: dict[str, Any],
    *,
    default_instructions: Callable[[str], str],
    reasoning_summary: str,
    fill_instructions: bool = True,
    fill_summary: bool = True,
    lite: bool = False,
) -> ShapedRequest:
    """A copy of ``body`` the Codex backend accepts.

    ``default_instructions(model)`` fills ``instructions`` only when the request has none.
    ``reasoning_summary`` is used unless the client chose one (``"none"`` sends no summary).
    ``fill_instructions=False`` / ``fill_summary=False`` skip one of them (a caller that decided on no
    summary, as with thinking disabled); ``lite``: the body is in the Responses Lite shape, neither is added.
    """
    shaped = dict(body)
    dropped = [name for name in STRIPPED_FIELDS if name in shaped]
    for name in dropped:
        del shaped[name]

    shaped["store"] = False
    shaped["stream"] = True
    include = [value for value in shaped.get("include") or [] if isinstance(value, str)]
    if ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
    shaped["include"] = include

    instructions = shaped.get("instructions")
    if fill_instructions and not lite and (not isinstance(instructions, str) or not instructions.strip()):
        shaped["instructions"] = default_instructions(str(shaped.get("model", "")))

    raw_input = shaped.get("input")
    if isinstance(raw_input, str):
        shaped["input"] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw_input}]}]
    elif isinstance(raw_input, list):
        shaped["input"] = _strip_item_ids(raw_input)
    elif raw_input is None:
        shaped["input"] = []

    reasoning = dict(shaped.get("reasoning") or {})
    if fill_summary and not lite and "summary" not in reasoning and reasoning_summary != "none":
        reasoning["summary"] = reasoning_summary
    if reasoning:
        shaped["reasoning"] = reasoning
    return ShapedRequest(body=shaped, dropped=dropped)
