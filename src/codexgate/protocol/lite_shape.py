"""The Responses Lite request shape (protocol.md §6), pure.

Models whose catalog entry says ``use_responses_lite: true`` (the ``gpt-5.6-*`` family in 2026) take
a different body than the full Responses shape. :func:`to_lite` reshapes a full-shape body (as the chat
mapper or a non-Codex client produces it) into it:

* **tools** leave the top level and travel as the first input item ``{"type": "additional_tools",
  "id": <caller's id>, "role": "developer", "tools": [...]}``. Its first tool is the namespace
  ``{"type": "namespace", "name": "functions", "description": ..., "tools": [every function tool]}``.
  Tools of other types (``web_search``, ``custom``, a client's own ``namespace`` …) are kept, in their
  order, in the same ``tools`` list beside that namespace: Lite has no top-level tools, and where the
  Codex CLI puts them is not recorded, so this is the shape that keeps them. A body with no tools gets
  no ``additional_tools`` item.
* **instructions** leave the top level and become a ``developer`` message placed right after the
  ``additional_tools`` item and before the rest of the input (a blank one is dropped).
* ``parallel_tool_calls`` is always ``false``: the backend answers 400 to ``true`` on the Lite path,
  so a chat client's explicit ``true`` is turned into ``false`` rather than refused (its calls then
  come one per turn, which every tool loop handles).
* ``reasoning`` is ``{"effort": E, "context": "all_turns"}`` with no ``summary`` (whether Lite can give
  one is unknown; none is asked for); ``E`` is the body's effort, else ``default_effort``.
* ``text.verbosity`` keeps the client's value, else ``"low"``; ``text.format`` (structured output) is kept.
* ``include`` holds ``"reasoning.encrypted_content"`` (other values the body asked for are kept).
* ``tool_choice`` is kept as sent (a named function ``{"type": "function", "name": ...}`` unchanged),
  ``"auto"`` when absent. Every other field (``model``, ``store``, ``stream``, ``prompt_cache_key``,
  ``client_metadata`` …) is kept; backend shaping (``codexgate.upstream.shaping``) is separate.

A body already in the Lite shape (it has an ``additional_tools`` input item, as the Codex CLI sends)
is returned unchanged, and :func:`to_lite` of its own output changes nothing.
:func:`is_lite_request` tells a Lite request from its header or that item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ADDITIONAL_TOOLS",
    "ENCRYPTED_REASONING",
    "FUNCTIONS_NAMESPACE",
    "LITE_HEADER",
    "has_additional_tools",
    "is_lite_request",
    "to_lite",
]

#: the request header the Codex CLI sends with a Lite body (value ``true``)
LITE_HEADER = "x-openai-internal-codex-responses-lite"
ADDITIONAL_TOOLS = "additional_tools"
FUNCTIONS_NAMESPACE = "functions"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
DEFAULT_NAMESPACE_DESCRIPTION = "Functions provided by the client."
_DROPPED_REASONING_KEYS = ("summary", "generate_summary")


def has_additional_tools(body: Mapping[str, Any]) -> bool:
    """Whether ``input`` holds an ``additional_tools`` item."""
    items = body.get("input")
    return isinstance(items, list) and any(
        isinstance(item, Mapping) and item.get("type") == ADDITIONAL_TOOLS for item in items
    )


def is_lite_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """A Lite request: the Lite header set to ``true`` (any case), or an ``additional_tools`` input item."""
    for name, value in headers.items():
        if name.lower() == LITE_HEADER and value.strip().lower() == "true":
            return True
    return has_additional_tools(body)


def _tools_item(tools: list[Any], additional_tools_id: str, namespace_description: str) -> dict[str, Any] | None:
    functions = [tool for tool in tools if isinstance(tool, Mapping) and tool.get("type") == "function"]
    others = [tool for tool in tools if not (isinstance(tool, Mapping) and tool.get("type") == "function")]
    listed: list[Any] = []
    if functions:
        listed.append(
            {
                "type": "namespace",
                "name": FUNCTIONS_NAMESPACE,
                "description": namespace_description,
                "tools": [dict(tool) for tool in functions],
            }
        )
    listed += others
    if not listed:
        return None
    return {"type": ADDITIONAL_TOOLS, "id": additional_tools_id, "role": "developer", "tools": listed}


def _input_items(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    if isinstance(raw, list):
        return list(raw)
    return []


def to_lite(
    body: Mapping[str, Any],
    *,
    additional_tools_id: str,
    default_effort: str | None = None,
    namespace_description: str = DEFAULT_NAMESPACE_DESCRIPTION,
) -> dict[str, Any]:
    """A new body in the Lite shape (see the module doc); ``body`` itself is not changed.

    ``additional_tools_id`` (``at_…``) is made by the caller; ``default_effort`` (the catalog's
    ``default_reasoning_level``) is used when the body names no effort.
    """
    lite = dict(body)
    if has_additional_tools(body):
        return lite

    head: list[Any] = []
    tools = lite.pop("tools", None)
    if isinstance(tools, list):
        item = _tools_item(tools, additional_tools_id, namespace_description)
        if item is not None:
            head.append(item)
    instructions = lite.pop("instructions", None)
    if isinstance(instructions, str) and instructions.strip():
        head.append({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": instructions}]})
    items = _input_items(lite.get("input"))
    lite["input"] = head + items if head else items

    lite["parallel_tool_calls"] = False
    lite.setdefault("tool_choice", "auto")

    raw_reasoning = lite.get("reasoning")
    reasoning = {
        key: value
        for key, value in (raw_reasoning.items() if isinstance(raw_reasoning, Mapping) else ())
        if key not in _DROPPED_REASONING_KEYS and value is not None
    }
    if "effort" not in reasoning and default_effort is not None:
        reasoning["effort"] = default_effort
    reasoning["context"] = "all_turns"
    lite["reasoning"] = reasoning

    raw_text = lite.get("text")
    text = dict(raw_text) if isinstance(raw_text, Mapping) else {}
    if not isinstance(text.get("verbosity"), str):
        text["verbosity"] = "low"
    lite["text"] = text

    include = [value for value in lite.get("include") or [] if isinstance(value, str)]
    if ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
    lite["include"] = include
    return lite
