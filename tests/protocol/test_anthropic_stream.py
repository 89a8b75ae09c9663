"""The Messages stream translator and aggregator: grammar event by event, every answer kind, failures."""

from __future__ import annotations

from typing import Any

import pytest

from codexgate.errors import APIError
from codexgate.protocol.anthropic_aggregate import MessagesAggregator
from codexgate.protocol.anthropic_request import map_messages_request
from codexgate.protocol.anthropic_signature import sign, verify
from codexgate.protocol.anthropic_stream import MessagesStreamTranslator
from tests.protocol.anthropic_sse import check_grammar, parse_frames, translate
from tests.protocol.stream_builder import USAGE, StreamBuilder

KEY = b"k" * 32


def signer(encrypted: str, item_id: str | None) -> str:
    return sign(encrypted, account="acct-1", key=KEY, item_id=item_id)


def aggregate(events: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    options.setdefault("model", "claude-test")
    options.setdefault("message_id", "msg_test")
    aggregator = MessagesAggregator(**options)
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    return aggregator.message()


def test_plain_text_frame_by_frame() -> None:
    events = StreamBuilder().created().message(["Hel", "lo"]).completed().events
    frames = parse_frames(translate(events, model="claude-opus-5-5", message_id="msg_1"))
    names = [name for name, _ in frames]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = frames[0][1]["message"]
    assert start["id"] == "msg_1" and start["model"] == "claude-opus-5-5" and start["role"] == "assistant"
    assert start["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }
    assert frames[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [f[1]["delta"] for f in frames[2:4]] == [
        {"type": "text_delta", "text": "Hel"},
        {"type": "text_delta", "text": "lo"},
    ]
    assert frames[4][1] == {"type": "content_block_stop", "index": 0}
    delta = frames[5][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    cached = USAGE["input_tokens_details"]["cached_tokens"]  # type: ignore[index]
    assert delta["usage"] == {
        "input_tokens": USAGE["input_tokens"] - cached,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
        "output_tokens": USAGE["output_tokens"],
    }


def test_first_delta_goes_out_with_the_first_upstream_delta() -> None:
    events = StreamBuilder().created().message(["first", " second"]).completed().events
    translator = MessagesStreamTranslator(model="m", message_id="msg")
    for event in events:
        frames = translator.feed(event)
        if event["type"] == "response.output_text.delta":
            names = [name for name, _ in parse_frames(frames)]
            assert names == ["message_start", "content_block_start", "content_block_delta"]
            assert b'"first"' in frames[-1]
            break
        assert frames == [], f"nothing before the first delta, got {frames} for {event['type']}"
    assert translator.has_output and translator.started


@pytest.mark.parametrize("deltas", [True, False])
def test_reasoning_summarized_then_text(deltas: bool) -> None:
    builder = StreamBuilder().created().reasoning([["Think", "ing"], ["more"]], deltas=deltas).message(["Answer"])
    frames = translate(builder.completed().events, sign_reasoning=signer)
    message = check_grammar(frames)
    thinking, text = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "Thinking\n\nmore"
    signed = verify(thinking["signature"], key=KEY)
    assert signed is not None and signed.encrypted_content == "gAAA" and signed.account == "acct-1"
    assert signed.item_id == "rs_0"
    assert text == {"type": "text", "text": "Answer"}
    assert message["stop_reason"] == "end_turn"
    assert aggregate(builder.events, sign_reasoning=signer)["content"] == message["content"]


def test_reasoning_display_omitted_keeps_the_signature_and_no_text() -> None:
    builder = StreamBuilder().created().reasoning([["secret", " plan"]]).message(["ok"]).completed()
    frames = translate(builder.events, thinking="omitted", sign_reasoning=signer)
    assert all(b"thinking_delta" not in frame for frame in frames)
    message = check_grammar(frames)
    thinking = message["content"][0]
    assert thinking["thinking"] == "" and verify(thinking["signature"], key=KEY) is not None
    assert b"secret" not in b"".join(frames)
    assert aggregate(builder.events, thinking="omitted", sign_reasoning=signer)["content"] == message["content"]


def test_thinking_disabled_sends_no_thinking_block() -> None:
    builder = StreamBuilder().created().reasoning([["x"]]).message(["ok"]).completed()
    message = check_grammar(translate(builder.events, thinking="none", sign_reasoning=signer))
    assert message["content"] == [{"type": "text", "text": "ok"}]
    assert aggregate(builder.events, thinking="none")["content"] == message["content"]


def test_tool_use_stream_and_the_full_tool_loop() -> None:
    builder = (
        StreamBuilder()
        .created()
        .reasoning([["Need a shell"]])
        .function_call("call_9", "Bash", ['{"command":', ' "echo hi"}'])
        .completed()
    )
    frames = translate(builder.events, thinking="omitted", sign_reasoning=signer)
    parsed = parse_frames(frames)
    start = next(data for name, data in parsed if name == "content_block_start" and data["index"] == 1)
    assert start["content_block"] == {"type": "tool_use", "id": "call_9", "name": "Bash", "input": {}}
    json_deltas = [d["delta"]["partial_json"] for n, d in parsed if n == "content_block_delta" and d["index"] == 1]
    assert json_deltas == ['{"command":', ' "echo hi"}']
    message = check_grammar(frames)
    assert message["stop_reason"] == "tool_use"
    assert message["content"][1]["input"] == {"command": "echo hi"}
    assert aggregate(builder.events, thinking="omitted", sign_reasoning=signer)["content"] == message["content"]

    # the client runs the tool and sends the conversation back
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 1000,
        "messages": [
            {"role": "user", "content": "run echo hi"},
            {"role": "assistant", "content": message["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "hi\n"}]},
        ],
    }
    mapped = map_messages_request(body, target_model="gpt-5", verify_thinking=lambda s: verify(s, key=KEY))
    items = mapped.body["input"]
    assert [item["type"] for item in items] == ["message", "reasoning", "function_call", "function_call_output"]
    assert items[1]["encrypted_content"] == "gAAA"
    assert items[2] == {
        "type": "function_call",
        "call_id": "call_9",
        "name": "Bash",
        "arguments": '{"command":"echo hi"}',
    }
    assert items[3] == {"type": "function_call_output", "call_id": "call_9", "output": "hi\n"}


def test_call_sent_only_at_item_done_is_streamed_whole() -> None:
    builder = StreamBuilder().created()
    builder.add(
        "response.output_item.done",
        output_index=0,
        item={"id": "fc_0", "type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
    )
    message = check_grammar(translate(builder.completed().events))
    assert message["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}]


def test_web_search_becomes_server_tool_blocks() -> None:
    builder = StreamBuilder().created().hosted("web_search_call").message(["Found it"]).completed()
    message = check_grammar(translate(builder.events))
    use, result, text = message["content"]
    assert use == {"type": "server_tool_use", "id": "srvtoolu_ws_0", "name": "web_search", "input": {"query": "q"}}
    assert result["type"] == "web_search_tool_result" and result["tool_use_id"] == "srvtoolu_ws_0"
    assert text == {"type": "text", "text": "Found it"}
    assert message["stop_reason"] == "end_turn"
    assert aggregate(builder.events)["content"] == message["content"]


@pytest.mark.parametrize(("reason", "stop"), [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")])
def test_incomplete(reason: str, stop: str) -> None:
    builder = StreamBuilder().created().message(["partial"]).incomplete(reason)
    message = check_grammar(translate(builder.events))
    assert message["stop_reason"] == stop and message["content"] == [{"type": "text", "text": "partial"}]
    assert aggregate(builder.events)["stop_reason"] == stop


def test_refusal() -> None:
    builder = StreamBuilder().created().message(["I can't help", " with that"], refusal=True).completed()
    message = check_grammar(translate(builder.events))
    assert message["stop_reason"] == "refusal"
    assert message["content"] == [{"type": "text", "text": "I can't help with that"}]
    assert aggregate(builder.events)["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    ("ending", "kind"),
    [
        (lambda b: b.error("server_is_overloaded", "busy"), "overloaded_error"),
        (lambda b: b.error("rate_limit_exceeded", "slow down"), "rate_limit_error"),
        (lambda b: b.failed("server_error", "boom"), "overloaded_error"),
        (lambda b: b.error("context_length_exceeded", "too many tokens"), "invalid_request_error"),
    ],
)
def test_upstream_error_mid_stream(ending: Any, kind: str) -> None:
    builder = StreamBuilder().created()
    builder.add("response.output_item.added", output_index=0, item={"id": "m", "type": "message", "content": []})
    builder.add("response.output_text.delta", item_id="m", output_index=0, content_index=0, delta="half")
    ending(builder)
    builder.message(["ignored after the failure"])
    frames = translate(builder.events)
    message = check_grammar(frames)
    assert message["error"]["type"] == kind
    assert message["stop_reason"] is None and message["content"][0]["text"] == "half"
    with pytest.raises(APIError):
        aggregate(builder.events)


def test_context_length_error_reads_prompt_is_too_long() -> None:
    builder = StreamBuilder().created().error("context_length_exceeded", "Your input exceeds the context window")
    (name, data), *_ = parse_frames(translate(builder.events))
    assert name == "error" and data["error"]["message"].startswith("prompt is too long")


def test_stream_ending_early_is_an_api_error_once() -> None:
    builder = StreamBuilder().created().message(["cut"])
    translator = MessagesStreamTranslator(model="m", message_id="msg")
    frames: list[bytes] = []
    for event in builder.events:
        frames += translator.feed(event)
    frames += translator.finish()
    assert translator.finish() == [] and translator.fail(APIError(500, "x")) == []
    message = check_grammar(frames)
    assert message["error"]["type"] == "api_error"
    assert translator.error is not None and translator.error.code == "stream_incomplete"


def test_failure_before_any_output_is_one_error_frame() -> None:
    translator = MessagesStreamTranslator(model="m", message_id="msg")
    assert translator.feed(StreamBuilder().created().events[0]) == []
    frames = translator.fail(APIError(502, "gone", code="upstream_disconnected"))
    assert [name for name, _ in parse_frames(frames)] == ["error"]
    assert not translator.started and not translator.has_output


def test_empty_answer_still_has_the_full_envelope() -> None:
    message = check_grammar(translate(StreamBuilder().created().completed(usage=None).events))
    assert message["content"] == [] and message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == 0


def test_items_only_in_the_final_output_are_sent() -> None:
    source = StreamBuilder().created().reasoning([["r"]]).message(["hello"]).function_call("c", "f", ['{"x":2}'])
    builder = StreamBuilder().created()
    builder.output = source.output
    frames = translate(builder.completed().events, sign_reasoning=signer)
    message = check_grammar(frames)
    assert [block["type"] for block in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][1]["text"] == "hello" and message["content"][2]["input"] == {"x": 2}
    assert message["stop_reason"] == "tool_use"


def test_done_events_never_duplicate_streamed_text() -> None:
    builder = StreamBuilder().created().message(["a", "b", "c"]).completed()
    message = check_grammar(translate(builder.events))
    assert message["content"] == [{"type": "text", "text": "abc"}]


def test_rate_limits_and_usage_are_kept() -> None:
    builder = StreamBuilder().created()
    builder.add("codex.rate_limits", rate_limits={"primary": {"used_percent": 5}})
    builder.message(["x"]).completed()
    translator = MessagesStreamTranslator(model="m", message_id="msg")
    for event in builder.events:
        translator.feed(event)
    assert translator.rate_limits is not None and translator.rate_limits["rate_limits"]["primary"]["used_percent"] == 5
    assert translator.usage == USAGE and translator.stop_reason == "end_turn" and translator.response_id == "resp_test"


def test_aggregated_message_shape() -> None:
    builder = StreamBuilder().created().message(["hi"]).completed()
    message = aggregate(builder.events, model="claude-haiku-4-5", message_id="msg_x")
    assert message["id"] == "msg_x" and message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-haiku-4-5" and message["stop_sequence"] is None
    assert message["usage"]["cache_read_input_tokens"] == 3 and message["usage"]["input_tokens"] == 8


def test_invalid_thinking_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        MessagesStreamTranslator(model="m", message_id="x", thinking="loud")


def test_interleaved_items_never_interleave_blocks() -> None:
    builder = StreamBuilder().created()
    for index in (0, 1):
        item = {"id": f"m{index}", "type": "message", "role": "assistant", "content": []}
        builder.add("response.output_item.added", output_index=index, item=item)
    for index, piece in ((0, "a"), (1, "b"), (0, "c")):
        builder.add("response.output_text.delta", item_id=f"m{index}", output_index=index, content_index=0, delta=piece)
    message = check_grammar(translate(builder.completed().events))
    assert [block["text"] for block in message["content"]] == ["a", "b", "c"]


def test_empty_assistant_string_is_skipped() -> None:
    request = {
        "model": "claude-x",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}],
    }
    assert [item["role"] for item in map_messages_request(request, target_model="m").body["input"]] == ["user"]
