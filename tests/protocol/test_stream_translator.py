"""Stream translator behaviour on hand-built event sequences."""

from __future__ import annotations

import pytest

from codexgate.protocol.stream_translator import ChatStreamTranslator
from tests.protocol.chat_replay import fold, replay, translate
from tests.protocol.stream_builder import StreamBuilder


def test_text_stream_shape_and_usage() -> None:
    events = StreamBuilder().created().message(["Hel", "lo"]).completed().events
    chunks, translator = translate(events, completion_id="chatcmpl-1", created=5)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert chunks[1]["choices"][0]["delta"] == {"content": "lo"}
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 22,
        "total_tokens": 33,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    assert all(c["usage"] is None for c in chunks[:-1])
    assert translator.done and translator.finish_reason == "stop" and translator.response_id == "resp_test"
    assert translator.finish() == []  # idempotent, nothing after the end


def test_without_include_usage_there_is_no_usage_key() -> None:
    events = StreamBuilder().created().message(["x"]).completed().events
    chunks, _ = translate(events, include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_zero_usage_is_still_reported() -> None:
    events = StreamBuilder().created().message(["x"]).completed(usage=None).events
    usage = replay(events).usage_chunks[0]["usage"]
    assert usage["total_tokens"] == 0 and usage["prompt_tokens_details"] == {"cached_tokens": 0}


def test_parallel_function_calls() -> None:
    events = (
        StreamBuilder()
        .created()
        .function_call("call_a", "f", ['{"a"', ": 1}"])
        .function_call("call_b", "g", ['{"b": 2}'])
        .completed()
        .events
    )
    chunks, _ = translate(events)
    headers = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert headers[0] == {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}
    assert headers[1] == {"index": 0, "function": {"arguments": '{"a"'}}
    got = fold(chunks)
    assert got.tool_calls[1] == {"id": "call_b", "name": "g", "arguments": '{"b": 2}', "type": "function"}
    assert got.finish_reasons == ["tool_calls"]


@pytest.mark.parametrize(("deltas", "done_event"), [(False, True), (False, False), (True, False)])
def test_arguments_only_in_done_events_still_stream_once(deltas: bool, done_event: bool) -> None:
    events = (
        StreamBuilder()
        .created()
        .function_call("c", "f", ['{"x":', "1}"], deltas=deltas, done_event=done_event)
        .completed()
        .events
    )
    assert replay(events).tool_calls[0]["arguments"] == '{"x":1}'


def test_function_call_seen_only_at_item_done() -> None:
    events = StreamBuilder().created().function_call("c", "f", ["{}"]).completed().events
    events = [e for e in events if e["type"] != "response.output_item.added"]
    got = replay(events)
    assert got.tool_calls == {0: {"id": "c", "name": "f", "arguments": "{}", "type": "function"}}


def test_text_only_in_done_event_and_in_final_output() -> None:
    events = StreamBuilder().created().message(["only ", "done"], deltas=False).completed().events
    assert replay(events).content == "only done"
    b = StreamBuilder().created()
    b.message(["final ", "only"])
    final_only = [b.events[0], b.events[1], b.completed().events[-1]]
    assert replay(final_only).content == "final only"


def test_deltas_then_done_never_duplicate_and_messages_concatenate() -> None:
    events = StreamBuilder().created().message(["a", "b"]).message(["c"]).completed().events
    assert replay(events).content == "abc"


def test_refusal_streams_and_finishes_with_stop() -> None:
    got = replay(StreamBuilder().created().message(["I can't", "."], refusal=True).completed().events)
    assert got.refusal == "I can't." and got.content == "" and got.finish_reasons == ["stop"]


@pytest.mark.parametrize(("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")])
def test_incomplete(reason: str, finish: str) -> None:
    got = replay(StreamBuilder().created().message(["cut"]).incomplete(reason).events)
    assert got.finish_reasons == [finish] and got.content == "cut"


def test_reasoning_modes() -> None:
    events = StreamBuilder().created().reasoning([["Think", "ing"], ["More"]]).message(["Answer"]).completed().events
    got = replay(events, reasoning_format="reasoning_content")
    assert got.reasoning == "Thinking\n\nMore" and got.content == "Answer"
    got = replay(events, reasoning_format="think")
    assert got.content == "<think>\nThinking\n\nMore\n</think>\n\nAnswer" and got.reasoning == ""
    got = replay(events, reasoning_format="hidden")
    assert got.content == "Answer" and got.reasoning == ""


def test_think_is_closed_before_a_tool_call_and_at_the_end() -> None:
    events = StreamBuilder().created().reasoning([["Plan"]]).function_call("c", "f", ["{}"]).completed().events
    chunks, _ = translate(events, reasoning_format="think")
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    close = next(i for i, d in enumerate(deltas) if "</think>" in d.get("content", ""))
    first_call = next(i for i, d in enumerate(deltas) if "tool_calls" in d)
    assert close < first_call
    got = replay(StreamBuilder().created().reasoning([["Only"]]).completed().events, reasoning_format="think")
    assert got.content == "<think>\nOnly\n</think>"


def test_raw_reasoning_text_counts_as_reasoning() -> None:
    b = StreamBuilder().created()
    b.add("response.reasoning_text.delta", item_id="rs", output_index=0, content_index=0, delta="raw")
    b.add("response.reasoning_text.done", item_id="rs", output_index=0, content_index=0, text="raw thought")
    got = replay(b.completed().events)
    assert got.reasoning == "raw thought"


@pytest.mark.parametrize("mode", ["reasoning_content", "think", "hidden"])
def test_has_output_is_set_by_reasoning_or_content_not_by_lifecycle(mode: str) -> None:
    translator = ChatStreamTranslator(
        model="m", include_usage=False, reasoning_format=mode, completion_id="c", created=1
    )
    builder = StreamBuilder().created().reasoning([["r"]])
    for event in builder.events[:2]:
        translator.feed(event)
    assert not translator.has_output
    for event in builder.events[2:]:
        translator.feed(event)
    assert translator.has_output == (mode != "hidden")


def test_hosted_tools_are_ignored() -> None:
    got = replay(
        StreamBuilder().created().hosted("web_search_call").hosted("mcp_call").message(["ok"]).completed().events
    )
    assert got.tool_calls == {} and got.content == "ok" and got.finish_reasons == ["stop"]


def test_only_url_citations_are_kept() -> None:
    citation = {"type": "url_citation", "url": "https://x", "title": "X", "start_index": 0, "end_index": 2}
    other = {"type": "file_citation", "file_id": "f", "index": 0}
    got = replay(StreamBuilder().created().message(["hi"], annotations=[citation, other]).completed().events)
    assert got.annotations == [
        {"type": "url_citation", "url_citation": {"url": "https://x", "title": "X", "start_index": 0, "end_index": 2}}
    ]


def test_error_then_failed_gives_one_error_and_no_finish() -> None:
    events = (
        StreamBuilder()
        .created()
        .message(["part"])
        .error("rate_limit_exceeded", "slow")
        .failed("rate_limit_exceeded")
        .events
    )
    chunks, translator = translate(events)
    got = fold(chunks)
    assert got.errors == [{"message": "slow", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}]
    assert got.finish_reasons == [] and got.usage_chunks == []
    assert "error" in chunks[-1]
    assert translator.error is not None and translator.error.status_code == 429
    assert translator.feed(events[-1]) == [] and translator.finish() == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("context_length_exceeded", 400),
        ("usage_limit_reached", 429),
        ("insufficient_quota", 429),
        ("server_is_overloaded", 503),
        ("slow_down", 503),
        ("server_error", 502),
    ],
)
def test_failed_status_mapping(code: str, status: int) -> None:
    _, translator = translate(StreamBuilder().created().failed(code, "m").events)
    assert translator.error is not None
    assert (translator.error.code, translator.error.status_code) == (code, status)


def test_missing_terminal_event_is_an_error_at_finish() -> None:
    events = StreamBuilder().created().message(["half"]).events[:-1]
    translator = ChatStreamTranslator(model="m", include_usage=True, completion_id="c", created=1)
    for event in events:
        translator.feed(event)
    tail = translator.finish()
    assert tail == [
        {
            "error": {
                "message": "The upstream stream closed before response.completed.",
                "type": "upstream_error",
                "param": None,
                "code": "stream_incomplete",
            }
        }
    ]
    assert translator.finish() == []


def test_protocol_error_event_fails_the_stream() -> None:
    got = replay([{"type": "codexgate.protocol_error", "message": "bad"}])
    assert [e["code"] for e in got.errors] == ["upstream_protocol_error"]


def test_unknown_events_and_rate_limits() -> None:
    limits = {"type": "codex.rate_limits", "rate_limits": {"primary": {"used_percent": 5}}}
    events = [*StreamBuilder().created().events, {"type": "response.brand_new", "x": 1}, limits]
    events += StreamBuilder().message(["ok"]).completed().events
    chunks, translator = translate(events)
    assert fold(chunks).content == "ok"
    assert translator.rate_limits == limits


def test_empty_answer_still_sends_role_and_one_finish() -> None:
    got = replay(StreamBuilder().created().completed().events)
    assert got.roles == ["assistant"] and got.finish_reasons == ["stop"]


def test_bad_reasoning_format_is_rejected() -> None:
    with pytest.raises(ValueError):
        ChatStreamTranslator(model="m", include_usage=False, reasoning_format="loud", completion_id="c", created=1)


def test_citation_indexes_count_from_the_start_of_the_whole_content() -> None:
    """Two message items joined, and <think> text before them: indexes point at the cited words."""
    from codexgate.protocol.aggregate import ChatCompletionAggregator
    from codexgate.protocol.stream_translator import ChatStreamTranslator

    first, second = "Intro text. ", "Paris is sunny today."
    cited = (second.index("sunny"), second.index("sunny") + len("sunny"))
    annotation = {
        "type": "url_citation",
        "start_index": cited[0],
        "end_index": cited[1],
        "url": "https://x",
        "title": "t",
    }
    events: list[dict[str, object]] = [
        {"type": "response.created", "response": {"id": "r", "status": "in_progress"}},
        {
            "type": "response.reasoning_summary_text.delta",
            "output_index": 0,
            "item_id": "rs",
            "summary_index": 0,
            "delta": "hmm",
        },
        {"type": "response.output_text.delta", "output_index": 1, "item_id": "m1", "content_index": 0, "delta": first},
        {"type": "response.output_text.delta", "output_index": 2, "item_id": "m2", "content_index": 0, "delta": second},
        {
            "type": "response.output_text.annotation.added",
            "output_index": 2,
            "item_id": "m2",
            "content_index": 0,
            "annotation_index": 0,
            "annotation": annotation,
        },
        {"type": "response.completed", "response": {"id": "r", "status": "completed", "output": [], "usage": None}},
    ]
    for reasoning_format in ("hidden", "think"):
        translator = ChatStreamTranslator(
            model="m", include_usage=False, reasoning_format=reasoning_format, completion_id="c", created=1
        )
        chunks = [chunk for event in events for chunk in translator.feed(dict(event))] + translator.finish()
        deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
        content = "".join(d.get("content") or "" for d in deltas)
        citation = next(d["annotations"][0]["url_citation"] for d in deltas if d.get("annotations"))
        assert content[citation["start_index"] : citation["end_index"]] == "sunny", reasoning_format
    for reasoning_format in ("hidden", "think"):
        aggregator = ChatCompletionAggregator(
            model="m", reasoning_format=reasoning_format, completion_id="c", created=1
        )
        for event in events:
            aggregator.feed(dict(event))
        aggregator.finish()
        message = aggregator.result()["choices"][0]["message"]
        citation = message["annotations"][0]["url_citation"]
        assert message["content"][citation["start_index"] : citation["end_index"]] == "sunny", reasoning_format


def test_legacy_functions_get_one_function_call_delta_and_their_finish_reason() -> None:
    events = (
        StreamBuilder()
        .created()
        .function_call("call_a", "lookup", ['{"q"', ': "x"}'])
        .function_call("call_b", "other", ["{}"])  # the legacy API has no second call: dropped
        .completed()
        .events
    )
    chunks, translator = translate(events, legacy_functions=True)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"] and c["choices"][0]["delta"]]
    assert deltas[0] == {"role": "assistant", "function_call": {"name": "lookup", "arguments": ""}}
    assert all("tool_calls" not in delta for delta in deltas)
    assert "".join(d["function_call"].get("arguments", "") for d in deltas) == '{"q": "x"}'
    assert all(d["function_call"].get("name") in (None, "lookup") for d in deltas)
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["function_call"] and translator.finish_reason == "function_call"
