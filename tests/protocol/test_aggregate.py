"""Aggregators: a chat.completion or a Response object from a stream."""

from __future__ import annotations

import pytest

from codexgate.errors import APIError
from codexgate.protocol.aggregate import ChatCompletionAggregator, ResponseAggregator
from tests.protocol.stream_builder import USAGE, StreamBuilder


def aggregate(events: list[dict], **options: object) -> dict:
    aggregator = ChatCompletionAggregator(model="alias", completion_id="chatcmpl-1", created=3, **options)  # type: ignore[arg-type]
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    return aggregator.result()


def test_completion_from_deltas_even_when_final_output_is_empty() -> None:
    events = (
        StreamBuilder().created().reasoning([["a"], ["b"]]).message(["Hel", "lo"]).completed(keep_output=False).events
    )
    result = aggregate(events)
    assert result == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 3,
        "model": "alias",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None, "reasoning_content": "a\n\nb"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 22,
            "total_tokens": 33,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    }


def test_think_and_hidden_modes() -> None:
    events = StreamBuilder().created().reasoning([["why"]]).message(["ok"]).completed().events
    assert (
        aggregate(events, reasoning_format="think")["choices"][0]["message"]["content"]
        == "<think>\nwhy\n</think>\n\nok"
    )
    message = aggregate(events, reasoning_format="hidden")["choices"][0]["message"]
    assert message["content"] == "ok" and "reasoning_content" not in message


def test_tool_calls_null_content_refusal_and_length() -> None:
    events = StreamBuilder().created().function_call("c1", "f", ['{"a":', "1}"], deltas=False).completed().events
    message = aggregate(events)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]
    refusal = aggregate(StreamBuilder().created().message(["no"], refusal=True).completed().events)["choices"][0]
    assert (
        refusal["message"]["refusal"] == "no"
        and refusal["message"]["content"] is None
        and refusal["finish_reason"] == "stop"
    )
    cut = aggregate(StreamBuilder().created().message(["x"]).incomplete().events)
    assert cut["choices"][0]["finish_reason"] == "length"


def test_annotations() -> None:
    citation = {"type": "url_citation", "url": "https://a", "title": "A", "start_index": 0, "end_index": 1}
    events = (
        StreamBuilder()
        .created()
        .message(["x"], annotations=[citation, {"type": "file_path", "file_id": "f"}])
        .completed()
        .events
    )
    assert aggregate(events)["choices"][0]["message"]["annotations"] == [
        {"type": "url_citation", "url_citation": {"url": "https://a", "title": "A", "start_index": 0, "end_index": 1}}
    ]


@pytest.mark.parametrize(
    ("builder", "code"),
    [
        (StreamBuilder().created().message(["x"]).error("context_length_exceeded"), "context_length_exceeded"),
        (StreamBuilder().created().failed("server_is_overloaded"), "server_is_overloaded"),
        (StreamBuilder().created().message(["x"]), "stream_incomplete"),
    ],
)
def test_failures_raise(builder: StreamBuilder, code: str) -> None:
    with pytest.raises(APIError) as info:
        aggregate(builder.events)
    assert info.value.code == code


def test_response_aggregator_rebuilds_output_in_order() -> None:
    builder = StreamBuilder().created().reasoning([["r"]]).message(["a", "b"]).function_call("c", "f", ["{}"])
    events = builder.completed(keep_output=False).events
    aggregator = ResponseAggregator(model="alias", created_at=1700000000)
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    result = aggregator.result()
    assert [i["type"] for i in result["output"]] == ["reasoning", "message", "function_call"]
    assert result["output"][0]["encrypted_content"] == "gAAA"
    assert result["output"][1]["content"][0]["text"] == "ab"
    assert (result["object"], result["status"], result["model"], result["usage"]) == (
        "response",
        "completed",
        "alias",
        USAGE,
    )
    assert aggregator.usage == USAGE and aggregator.response_id == "resp_test"


def test_legacy_functions_answer_with_message_function_call() -> None:
    events = StreamBuilder().created().function_call("call_a", "lookup", ['{"q": 1}']).completed().events
    result = aggregate(events, legacy_functions=True)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "lookup", "arguments": '{"q": 1}'}
    assert "tool_calls" not in choice["message"] and choice["message"]["content"] is None
    modern = aggregate(events)["choices"][0]
    assert modern["finish_reason"] == "tool_calls" and "function_call" not in modern["message"]
