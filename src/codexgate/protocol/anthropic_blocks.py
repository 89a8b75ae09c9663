"""What the Messages stream translator and aggregator share: usage, stop reason, blocks, SSE frames.

* usage: ``input_tokens`` = backend input − cached, ``cache_read_input_tokens`` = cached,
  ``cache_creation_input_tokens`` = 0 (the backend caches on its own and reports no writes),
  ``output_tokens`` = backend output (reasoning included);
* stop reason: incomplete by ``max_output_tokens`` → ``max_tokens``; a refusal part or an incomplete by
  ``content_filter`` → ``refusal``; any ``tool_use`` block → ``tool_use``; else ``end_turn``;
* a hosted ``web_search_call`` item → a ``server_tool_use`` block (``id`` ``srvtoolu_<item id>``, name
  ``web_search``, ``input {"query"}``) and a ``web_search_tool_result`` block whose content lists the
  item's sources (``url``, ``title``) when the backend gave any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = [
    "PING",
    "anthropic_usage",
    "frame",
    "message_shell",
    "stop_reason_for",
    "web_search_blocks",
    "zero_usage",
]

PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'
_dumps = orjson.dumps


def frame(kind: str, payload: Mapping[str, Any]) -> bytes:
    """One ``event: <kind>\\ndata: <json>\\n\\n`` frame."""
    return b"event: " + kind.encode() + b"\ndata: " + _dumps(payload) + b"\n\n"


def _count(mapping: Any, key: str) -> int:
    if isinstance(mapping, Mapping):
        value = mapping.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def zero_usage() -> dict[str, int]:
    return {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}


def anthropic_usage(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """Responses usage → Anthropic usage (zeros when the backend reported none)."""
    total_input = _count(usage, "input_tokens")
    details = usage.get("input_tokens_details") if isinstance(usage, Mapping) else None
    cached = min(_count(details, "cached_tokens"), total_input)
    return {
        "input_tokens": total_input - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": _count(usage, "output_tokens"),
    }


def stop_reason_for(response: Mapping[str, Any] | None, *, tool_use: bool, refused: bool) -> str:
    if isinstance(response, Mapping):
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        if reason == "max_output_tokens":
            return "max_tokens"
        if reason == "content_filter":
            return "refusal"
    if refused:
        return "refusal"
    return "tool_use" if tool_use else "end_turn"


def message_shell(message_id: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    """A Message with empty content (``message_start``'s and the aggregator's start)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


def web_search_blocks(item: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``server_tool_use``, ``web_search_tool_result``) for a finished ``web_search_call`` item."""
    item_id = item.get("id")
    tool_use_id = f"srvtoolu_{item_id}" if isinstance(item_id, str) and item_id else "srvtoolu_web_search"
    action = item.get("action")
    query = action.get("query") if isinstance(action, Mapping) else None
    results: list[dict[str, Any]] = []
    sources = action.get("sources") if isinstance(action, Mapping) else None
    if isinstance(sources, list):
        for source in sources:
            if isinstance(source, Mapping) and isinstance(source.get("url"), str):
                title = source.get("title")
                results.append(
                    {
                        "type": "web_search_result",
                        "url": source["url"],
                        "title": title if isinstance(title, str) else source["url"],
                        "encrypted_content": "",
                        "page_age": None,
                    }
                )
    use = {
        "type": "server_tool_use",
        "id": tool_use_id,
        "name": "web_search",
        "input": {"query": query} if isinstance(query, str) else {},
    }
    result = {"type": "web_search_tool_result", "tool_use_id": tool_use_id, "content": results}
    return use, result
