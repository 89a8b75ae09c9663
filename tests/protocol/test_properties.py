"""Property tests: generated event sequences, splits of the byte stream, generated chat requests."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codexgate.protocol.aggregate import ChatCompletionAggregator
from codexgate.protocol.chat_to_responses import map_chat_request
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.protocol.sse_writer import encode_chunks
from codexgate.protocol.stream_translator import ChatStreamTranslator
from tests.protocol.chat_replay import fold, translate
from tests.protocol.stream_builder import StreamBuilder
from tests.recorded_streams import to_sse

pieces = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A valid event sequence and what it must produce."""
    builder = StreamBuilder().created()
    text, refusal, calls, reasoning = "", "", [], []
    for n in range(draw(st.integers(min_value=0, max_value=4))):
        kind = draw(st.sampled_from(["text", "reasoning", "call", "refusal", "hosted"]))
        parts = draw(pieces)
        deltas = draw(st.booleans())
        if kind == "text":
            builder.message(parts, deltas=deltas)
            text += "".join(parts)
        elif kind == "refusal":
            builder.message(parts, refusal=True, deltas=deltas)
            refusal += "".join(parts)
        elif kind == "reasoning":
            summary = draw(st.lists(pieces, min_size=1, max_size=3))
            builder.reasoning(summary, deltas=deltas)
            reasoning += ["".join(p) for p in summary]
        elif kind == "call":
            builder.function_call(f"call_{n}", f"fn{n}", parts, deltas=deltas, done_event=draw(st.booleans()))
            calls.append((f"call_{n}", f"fn{n}", "".join(parts)))
        else:
            builder.hosted()
    end = draw(st.sampled_from(["completed", "incomplete", "failed", "error", "error+failed", "cut"]))
    if end == "completed":
        builder.completed()
    elif end == "incomplete":
        builder.incomplete()
    elif end == "failed":
        builder.failed("server_error")
    elif end == "error":
        builder.error("rate_limit_exceeded")
    elif end == "error+failed":
        builder.error("rate_limit_exceeded").failed("rate_limit_exceeded")
    want = {
        "text": text,
        "refusal": refusal,
        "calls": calls,
        "reasoning": "\n\n".join(r for r in reasoning if r),
        "end": end,
    }
    return builder.events, want


@given(streams(), st.sampled_from(["reasoning_content", "think", "hidden"]), st.booleans())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_generated_streams_give_one_finish_or_one_error_and_lose_nothing(
    case: tuple[list[dict[str, Any]], dict[str, Any]], mode: str, include_usage: bool
) -> None:
    events, want = case
    chunks, translator = translate(events, reasoning_format=mode, include_usage=include_usage)
    got = fold(chunks)
    if want["end"] in ("completed", "incomplete"):
        assert len(got.finish_reasons) == 1 and got.errors == []
        assert len([c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]) == 1
        expected_finish = "length" if want["end"] == "incomplete" else ("tool_calls" if want["calls"] else "stop")
        assert got.finish_reasons == [expected_finish]
        assert len(got.usage_chunks) == (1 if include_usage else 0)
    else:
        assert got.finish_reasons == [] and len(got.errors) == 1 and "error" in chunks[-1]
        assert translator.error is not None
    content = got.content
    if mode == "think" and translator.error is None:
        blocks = re.findall(r"<think>\n(.*?)\n</think>", content, flags=re.DOTALL)
        assert "\n\n".join(blocks) == want["reasoning"]
        content = re.sub(r"<think>\n.*?\n</think>(\n\n)?", "", content, flags=re.DOTALL)
    if mode != "think" or translator.error is None:
        assert content == want["text"]
    assert got.refusal == want["refusal"]
    assert [(c["id"], c["name"], c["arguments"]) for c in got.tool_calls.values()] == want["calls"]
    if mode == "reasoning_content":
        assert got.reasoning == want["reasoning"]
    else:
        assert got.reasoning == ""
    assert got.roles == ["assistant"] or (got.roles == [] and not any(c.get("choices") for c in chunks))
    # The aggregator agrees with the stream.
    aggregator = ChatCompletionAggregator(model="m", reasoning_format="reasoning_content", completion_id="c", created=1)
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    if translator.error is None:
        message = aggregator.result()["choices"][0]["message"]
        assert (message["content"] or "") == want["text"]
        assert (message.get("reasoning_content") or "") == want["reasoning"]
        assert [c["function"]["arguments"] for c in message.get("tool_calls", [])] == [c[2] for c in want["calls"]]
    else:
        assert aggregator.error is not None and aggregator.error.code == translator.error.code


@given(streams(), st.lists(st.integers(min_value=0, max_value=100_000), max_size=30))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_any_split_of_the_bytes_yields_the_same_chunks(
    case: tuple[list[dict[str, Any]], dict[str, Any]], cuts: list[int]
) -> None:
    events, _ = case
    raw = to_sse(events)

    def run(parts: list[bytes]) -> bytes:
        decoder = SSEDecoder()
        translator = ChatStreamTranslator(model="m", include_usage=True, completion_id="c", created=1)
        out = b""
        for part in parts:
            for event in decoder.feed(part):
                out += encode_chunks(translator.feed(event))
        for event in decoder.close():
            out += encode_chunks(translator.feed(event))
        return out + encode_chunks(translator.finish())

    points = sorted({c % (len(raw) + 1) for c in cuts})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert run(parts) == run([raw])


# -- generated chat requests -----------------------------------------------------------------

texts = st.text(max_size=20)


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(texts)})
    counter = 0
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        kind = draw(st.sampled_from(["user", "assistant", "calls", "system"]))
        if kind == "user":
            messages.append({"role": "user", "content": draw(texts)})
        elif kind == "system":
            messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(texts)})
        elif kind == "assistant":
            messages.append({"role": "assistant", "content": draw(st.one_of(st.none(), texts))})
        else:
            ids = [f"call_{counter + i}" for i in range(draw(st.integers(min_value=1, max_value=3)))]
            counter += len(ids)
            messages.append(
                {
                    "role": "assistant",
                    "content": draw(st.one_of(st.none(), texts)),
                    "tool_calls": [
                        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids
                    ],
                }
            )
            for call_id in draw(st.permutations(ids)):
                messages.append({"role": "tool", "tool_call_id": call_id, "content": draw(texts), "id": "x"})
    return {"model": draw(st.sampled_from(["gpt-5", "gpt-5-high", "codex-mini-low"])), "messages": messages}


@given(chat_requests())
@settings(max_examples=300)
def test_generated_chat_requests_never_send_system_and_keep_calls_paired(body: dict[str, Any]) -> None:
    mapped = map_chat_request(body)
    items = mapped.body["input"]
    assert all(item.get("role") != "system" for item in items)
    assert all("id" not in item for item in items)
    calls = [i["call_id"] for i in items if i["type"] == "function_call"]
    outputs = [i["call_id"] for i in items if i["type"] == "function_call_output"]
    assert sorted(calls) == sorted(outputs) and len(set(calls)) == len(calls)
    call_positions = {item["call_id"]: n for n, item in enumerate(items) if item["type"] == "function_call"}
    for position, item in enumerate(items):  # every output comes after its call
        if item["type"] == "function_call_output":
            assert call_positions[item["call_id"]] < position, item["call_id"]
    system = [
        m["content"]
        for m in body["messages"][
            : next(
                (k for k, m in enumerate(body["messages"]) if m["role"] not in ("system", "developer")),
                len(body["messages"]),
            )
        ]
    ]
    assert mapped.body["instructions"] == ("\n\n".join(system) if system else None)
