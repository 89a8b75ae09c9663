"""Run events through the translator and fold the chunks back into one answer, for assertions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codexgate.protocol.stream_translator import ChatStreamTranslator


@dataclass
class Replayed:
    chunks: list[dict[str, Any]]
    content: str = ""
    refusal: str = ""
    reasoning: str = ""
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reasons: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    usage_chunks: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)


def translate(events: list[dict[str, Any]], **options: Any) -> tuple[list[dict[str, Any]], ChatStreamTranslator]:
    options.setdefault("model", "gpt-test")
    options.setdefault("include_usage", True)
    options.setdefault("completion_id", "chatcmpl-test")
    options.setdefault("created", 1700000000)
    translator = ChatStreamTranslator(**options)
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks += translator.feed(event)
    chunks += translator.finish()
    return chunks, translator


def fold(chunks: list[dict[str, Any]]) -> Replayed:
    out = Replayed(chunks=chunks)
    for chunk in chunks:
        if "error" in chunk:
            out.errors.append(chunk["error"])
            continue
        if not chunk["choices"]:
            out.usage_chunks.append(chunk)
            continue
        choice = chunk["choices"][0]
        delta = choice["delta"]
        if choice.get("finish_reason") is not None:
            out.finish_reasons.append(choice["finish_reason"])
        if "role" in delta:
            out.roles.append(delta["role"])
        out.content += delta.get("content") or ""
        out.refusal += delta.get("refusal") or ""
        out.reasoning += delta.get("reasoning_content") or ""
        out.annotations += delta.get("annotations") or []
        for call in delta.get("tool_calls") or []:
            slot = out.tool_calls.setdefault(call["index"], {"id": None, "name": None, "arguments": "", "type": None})
            if "id" in call:
                assert slot["id"] is None, "a tool call header was sent twice"
                slot["id"], slot["type"] = call["id"], call["type"]
                if call["type"] == "function":
                    slot["name"] = call["function"]["name"]
                else:
                    slot["name"] = call["custom"]["name"]
                    slot["arguments"] += call["custom"]["input"]
            if "function" in call:
                slot["arguments"] += call["function"].get("arguments") or ""
    return out


def replay(events: list[dict[str, Any]], **options: Any) -> Replayed:
    return fold(translate(events, **options)[0])
