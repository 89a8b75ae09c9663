"""A whole Anthropic ``Message`` (non-streaming ``/v1/messages``) from a Responses event stream.

The items are rebuilt from the events by the same :class:`~codexgate.protocol.aggregate.ResponseAggregator`
the other fronts use; usage, stop reason and the web search blocks come from
:mod:`.anthropic_blocks`, as for the stream translator, so both answers agree. One content block per
output item, in output order: reasoning → ``thinking`` (summary parts joined by a blank line; empty
text with display ``omitted``; none with ``none``; signed), message → ``text`` (refusals too),
``function_call`` → ``tool_use`` (``input`` the parsed arguments; ``{}`` when they are empty or not a
JSON object), ``web_search_call`` → ``server_tool_use`` + ``web_search_tool_result``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from codexgate.protocol.aggregate import ResponseAggregator
from codexgate.protocol.anthropic_blocks import anthropic_usage, message_shell, stop_reason_for, web_search_blocks
from codexgate.protocol.anthropic_stream import ReasoningSigner

__all__ = ["MessagesAggregator", "tool_input"]


def tool_input(arguments: Any) -> dict[str, Any]:
    """A call's JSON arguments as the ``tool_use`` ``input`` object."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _texts(parts: Any) -> list[str]:
    texts: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str) and part["text"]:
            texts.append(part["text"])
    return texts


class MessagesAggregator(ResponseAggregator):
    """Feed events (``feed``/``finish`` as for the other aggregators); :meth:`message` gives the answer."""

    def __init__(
        self,
        *,
        model: str,
        message_id: str,
        thinking: str = "summarized",
        sign_reasoning: ReasoningSigner | None = None,
    ) -> None:
        super().__init__(model=model, created_at=0)  # a Message has no creation time
        if thinking not in ("summarized", "omitted", "none"):
            raise ValueError(f"thinking must be summarized, omitted or none, not {thinking!r}")
        self.message_id = message_id
        self.thinking = thinking
        self.sign_reasoning = sign_reasoning
        self.stop_reason: str | None = None

    def _thinking_block(self, item: Mapping[str, Any]) -> dict[str, Any]:
        text = ""
        if self.thinking == "summarized":
            text = "\n\n".join(_texts(item.get("summary")) + _texts(item.get("content")))
        signature = ""
        encrypted = item.get("encrypted_content")
        if self.sign_reasoning is not None and isinstance(encrypted, str) and encrypted:
            item_id = item.get("id")
            signature = self.sign_reasoning(encrypted, item_id if isinstance(item_id, str) else None)
        return {"type": "thinking", "thinking": text, "signature": signature}

    def message(self) -> dict[str, Any]:
        """The ``Message``; raises the stream's :class:`APIError` if it failed."""
        response = self.result()  # raises on failure
        content: list[dict[str, Any]] = []
        tool_use = refused = False
        for item in response["output"]:
            kind = item.get("type")
            if kind == "reasoning" and self.thinking != "none":
                content.append(self._thinking_block(item))
            elif kind == "message":
                texts: list[str] = []
                for part in item.get("content") or []:
                    if part.get("type") == "refusal" and part.get("refusal"):
                        refused = True
                        texts.append(part["refusal"])
                    elif part.get("type") == "output_text" and part.get("text"):
                        texts.append(part["text"])
                if texts:
                    content.append({"type": "text", "text": "".join(texts)})
            elif kind == "function_call":
                tool_use = True
                call_id = item.get("call_id") or item.get("id") or ""
                name = item.get("name") or ""
                content.append(
                    {"type": "tool_use", "id": call_id, "name": name, "input": tool_input(item.get("arguments"))}
                )
            elif kind == "web_search_call":
                content += web_search_blocks(item)
        self.stop_reason = stop_reason_for(self.response, tool_use=tool_use, refused=refused)
        message = message_shell(self.message_id, self.model or "", anthropic_usage(self.usage))
        message["content"] = content
        message["stop_reason"] = self.stop_reason
        return message
