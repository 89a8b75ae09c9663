"""Test helpers for the Messages stream: parse frames, check Anthropic's grammar, rebuild the Message.

Written from the grammar in protocol.md §7, independently of the translator's code.
"""

from __future__ import annotations

import json
from typing import Any

from codexgate.protocol.anthropic_stream import MessagesStreamTranslator

DELTA_FOR_BLOCK = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "web_search_tool_result": set(),
}


def parse_frames(frames: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """Each element must be exactly one ``event:``/``data:`` frame whose data names the same type."""
    parsed: list[tuple[str, dict[str, Any]]] = []
    for raw in frames:
        text = raw.decode()
        assert text.endswith("\n\n") and text.count("\n\n") == 1, raw
        event_line, data_line = text[:-2].split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), raw
        name = event_line[len("event: ") :]
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == name, raw
        parsed.append((name, data))
    return parsed


def translate(events: list[dict[str, Any]], **options: Any) -> list[bytes]:
    options.setdefault("model", "claude-test")
    options.setdefault("message_id", "msg_test")
    translator = MessagesStreamTranslator(**options)
    frames: list[bytes] = []
    for event in events:
        frames += translator.feed(event)
    return frames + translator.finish()


def check_grammar(frames: list[bytes]) -> dict[str, Any]:
    """Assert the stream grammar; return the rebuilt Message (with ``error`` set if it ended in one)."""
    parsed = parse_frames(frames)
    assert parsed, "no frames"
    if parsed[0][0] == "error":
        assert len(parsed) == 1
        return {"content": [], "error": parsed[0][1]["error"], "stop_reason": None}
    name, data = parsed[0]
    assert name == "message_start"
    message = dict(data["message"])
    assert message["content"] == [] and message["stop_reason"] is None
    assert all(value == 0 for value in message["usage"].values())
    content: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    open_index: int | None = None
    ended = False
    for position, (name, data) in enumerate(parsed[1:], start=1):
        assert not ended, f"frame after message_stop/error: {name}"
        if name == "ping":
            continue
        if name == "content_block_start":
            assert open_index is None, "a block opened while another is open"
            assert data["index"] == len(content), "block indexes must count 0, 1, 2 …"
            open_index = data["index"]
            content.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            assert open_index is not None and open_index == data["index"], "delta outside its open block"
            block = content[open_index]
            delta = data["delta"]
            assert delta["type"] in DELTA_FOR_BLOCK[block["type"]], (block["type"], delta["type"])
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                partial[open_index] = partial.get(open_index, "") + delta["partial_json"]
        elif name == "content_block_stop":
            assert open_index == data["index"], "stop of a block that is not open"
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta with a block open"
            assert message["stop_reason"] is None, "two message_delta frames"
            message["stop_reason"] = data["delta"]["stop_reason"]
            message["usage"] = data["usage"]
            assert parsed[position + 1][0] == "message_stop"
        elif name == "message_stop":
            assert message["stop_reason"] is not None
            ended = True
        elif name == "error":
            message["error"] = data["error"]
            ended = True
        else:
            raise AssertionError(f"unexpected frame {name}")
    assert ended, "the stream must end with message_stop or error"
    for index, text in partial.items():
        content[index]["input"] = json.loads(text) if text else {}
    message["content"] = content
    return message
