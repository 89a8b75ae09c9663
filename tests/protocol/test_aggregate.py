"""Aggregators: a chat.completion or a Response object from a stream."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

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


def _fail_and_collect(make: Callable[[], ChatCompletionAggregator | ResponseAggregator], events: list[dict]) -> None:
    """Run a failed aggregation the way the server does, then check nothing keeps the aggregator alive."""
    aggregator = make()
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    caught: list[APIError] = []
    for _ in range(3):  # raising more than once must not grow anything either
        try:
            aggregator.result()
        except APIError as error:
            caught.append(error)
    assert aggregator.error is not None and aggregator.error.__traceback__ is None
    assert all(error is not aggregator.error for error in caught)
    assert {error.code for error in caught} == {aggregator.error.code}
    alive = weakref.ref(aggregator)
    del aggregator, caught
    assert alive() is None  # freed by reference counting alone: no cycle through the stored error


@pytest.mark.parametrize(
    "events",
    [
        StreamBuilder().created().message(["partial"]).error("rate_limit_exceeded").events,
        StreamBuilder().created().message(["partial"]).failed().events,
        StreamBuilder().created().message(["partial"]).events,  # no terminal event
        [{"type": "codexgate.protocol_error", "message": "bad"}],
    ],
)
def test_failed_aggregation_leaves_no_reference_cycle(events: list[dict]) -> None:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # only reference counting may free it
    try:
        _fail_and_collect(lambda: ChatCompletionAggregator(model="m", completion_id="c", created=1), events)
        _fail_and_collect(lambda: ResponseAggregator(model="m", created_at=1), events)
    finally:
        if enabled:
            gc.enable()


def test_raised_error_carries_the_stored_fields() -> None:
    aggregator = ChatCompletionAggregator(model="m", completion_id="c", created=1)
    for event in StreamBuilder().created().error("rate_limit_exceeded", "slow down").events:
        aggregator.feed(event)
    with pytest.raises(APIError) as info:
        aggregator.result()
    stored = aggregator.error
    assert stored is not None and type(info.value) is type(stored)
    assert (info.value.status_code, info.value.code, info.value.message, info.value.type) == (
        stored.status_code,
        stored.code,
        stored.message,
        stored.type,
    )
    assert info.value.to_dict() == stored.to_dict() and info.value.headers == stored.headers
