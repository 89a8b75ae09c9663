"""Helpers for the simulator tests: a WHATWG-style SSE parser and a Responses stream checker."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

AUTH = {"authorization": "Bearer test-token", "chatgpt-account-id": "acct_1"}
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def request_body(prompt: str = "What is the capital of France?", **overrides: Any) -> dict[str, Any]:
    """A body the way the Codex CLI sends it (store false, stream true, instructions present)."""
    body: dict[str, Any] = {
        "model": "gpt-5",
        "instructions": "You are a helpful assistant.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "cache-1",
    }
    body.update(overrides)
    return body


@dataclass
class SSEMessage:
    event: str
    data: str


def parse_sse(raw: bytes) -> list[SSEMessage]:
    """Parse an event stream per the WHATWG rules (CR, LF or CRLF line ends; comments; a single
    optional space after the colon; dispatch on a blank line; an unterminated last block is dropped)."""
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    messages: list[SSEMessage] = []
    event = ""
    data: list[str] = []
    for line in lines[:-1]:  # the last piece has no line end: not a complete line
        if line == "":
            if data:
                messages.append(SSEMessage(event or "message", "\n".join(data)))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return messages


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """The JSON events of a stream; the ``event:`` name must match the JSON ``type``."""
    events = []
    for message in parse_sse(raw):
        event = json.loads(message.data)
        assert message.event == event["type"], (message.event, event["type"])
        events.append(event)
    return events


@dataclass
class StreamSummary:
    events: list[dict[str, Any]]
    terminal: dict[str, Any]
    items: dict[int, dict[str, Any]] = field(default_factory=dict)  # output_index → final item
    texts: dict[str, str] = field(default_factory=dict)  # item_id → output text
    arguments: dict[str, str] = field(default_factory=dict)  # item_id → function-call arguments
    summaries: dict[str, list[str]] = field(default_factory=dict)  # item_id → summary texts
    refusals: dict[str, str] = field(default_factory=dict)
    rate_limits: dict[str, Any] | None = None

    @property
    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


def check_stream(all_events: list[dict[str, Any]]) -> StreamSummary:
    """Assert the invariants of a Responses stream (protocol.md §1) and summarize it."""
    rate_limits = [e for e in all_events if e["type"] == "codex.rate_limits"]
    events = [e for e in all_events if e["type"] != "codex.rate_limits"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[1]["type"] == "response.in_progress"
    response_id = events[0]["response"]["id"]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    terminals = [e for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1 and events[-1] is terminals[0], "exactly one terminal event, last"
    terminal = terminals[0]
    assert terminal["response"]["id"] == response_id

    summary = StreamSummary(events=all_events, terminal=terminal, rate_limits=rate_limits[0] if rate_limits else None)
    added: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    text_deltas: dict[tuple[str, int], str] = {}
    arg_deltas: dict[str, str] = {}
    summary_deltas: dict[tuple[str, int], str] = {}
    refusal_deltas: dict[str, str] = {}
    for event in events[2:-1]:
        kind = event["type"]
        index = event.get("output_index")
        if kind == "response.output_item.added":
            assert index == len(added), "items are added at the next output_index"
            added[index] = event["item"]
            continue
        if kind == "error":
            continue
        assert index in added and index not in done, f"{kind} refers to output_index {index} not open"
        if kind == "response.output_item.done":
            assert event["item"]["id"] == added[index]["id"]
            assert event["item"]["type"] == added[index]["type"]
            summary.items[index] = event["item"]
            done.add(index)
            continue
        item_id = event["item_id"]
        assert item_id == added[index]["id"], "item_id is the added item's id"
        if kind == "response.output_text.delta":
            key = (item_id, event["content_index"])
            text_deltas[key] = text_deltas.get(key, "") + event["delta"]
        elif kind == "response.output_text.done":
            assert text_deltas.get((item_id, event["content_index"]), "") == event["text"]
            summary.texts[item_id] = event["text"]
        elif kind == "response.function_call_arguments.delta":
            arg_deltas[item_id] = arg_deltas.get(item_id, "") + event["delta"]
        elif kind == "response.function_call_arguments.done":
            if item_id in arg_deltas:
                assert arg_deltas[item_id] == event["arguments"]
            json.loads(event["arguments"])
            summary.arguments[item_id] = event["arguments"]
        elif kind == "response.reasoning_summary_text.delta":
            key = (item_id, event["summary_index"])
            summary_deltas[key] = summary_deltas.get(key, "") + event["delta"]
        elif kind == "response.reasoning_summary_text.done":
            assert summary_deltas[(item_id, event["summary_index"])] == event["text"]
            summary.summaries.setdefault(item_id, []).append(event["text"])
        elif kind == "response.refusal.delta":
            refusal_deltas[item_id] = refusal_deltas.get(item_id, "") + event["delta"]
        elif kind == "response.refusal.done":
            assert refusal_deltas[item_id] == event["refusal"]
            summary.refusals[item_id] = event["refusal"]
    assert done == set(added), "every added item is done before the terminal event"

    for item in summary.items.values():
        if item["type"] == "message":
            for part in item["content"]:
                if part["type"] == "output_text":
                    assert part["text"] == summary.texts[item["id"]]
        elif item["type"] == "function_call":
            assert item["arguments"] == summary.arguments[item["id"]]
        elif item["type"] == "reasoning":
            assert [p["text"] for p in item["summary"]] == summary.summaries.get(item["id"], [])

    response = terminal["response"]
    if terminal["type"] != "response.failed":
        usage = response["usage"]
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert set(usage) == {
            "input_tokens",
            "input_tokens_details",
            "output_tokens",
            "output_tokens_details",
            "total_tokens",
        }
        assert "cached_tokens" in usage["input_tokens_details"]
        assert "reasoning_tokens" in usage["output_tokens_details"]
        if response["output"]:
            assert response["output"] == [summary.items[i] for i in sorted(summary.items)]
    return summary
