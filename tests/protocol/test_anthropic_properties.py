"""Grammar invariants of the Messages translator over recorded streams and generated ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codexgate.errors import APIError
from codexgate.protocol.anthropic_aggregate import MessagesAggregator
from codexgate.protocol.anthropic_signature import sign
from tests.protocol.anthropic_sse import check_grammar, translate
from tests.protocol.stream_builder import StreamBuilder
from tests.recorded_streams import Recorded, responses_streams

KEY = b"p" * 32
TERMINAL = ("response.completed", "response.incomplete")
STREAMS = responses_streams()


def signer(encrypted: str, item_id: str | None) -> str:
    return sign(encrypted, account="a", key=KEY, item_id=item_id)


def _expected_usage(events: list[dict[str, Any]]) -> dict[str, int] | None:
    for event in events:
        if event.get("type") in TERMINAL:
            usage = (event.get("response") or {}).get("usage") or {}
            total = usage.get("input_tokens") or 0
            cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
            return {
                "input_tokens": total - cached,
                "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": 0,
                "output_tokens": usage.get("output_tokens") or 0,
            }
    return None


def _recorded_texts(events: list[dict[str, Any]]) -> str:
    """Per text part: the streamed deltas (what a client saw), else the ``output_text.done`` text.

    One recording was anonymized after the fact: its deltas are ``X``s and its done text a placeholder.
    """
    deltas: dict[Any, str] = {}
    texts: list[str] = []
    for e in events:
        key = (e.get("output_index"), e.get("content_index"))
        if e.get("type") == "response.output_text.delta":
            deltas[key] = deltas.get(key, "") + e["delta"]
        elif e.get("type") == "response.output_text.done":
            texts.append(deltas.get(key) or e["text"])
    return "".join(texts)


@pytest.mark.parametrize("record", STREAMS, ids=[r.name for r in STREAMS])
def test_recorded_streams_keep_the_grammar(record: Recorded) -> None:
    frames = translate(record.events, sign_reasoning=signer)
    message = check_grammar(frames)
    expected = _expected_usage(record.events)
    if expected is not None and "error" not in message:
        assert message["usage"] == expected
        text = "".join(b.get("text", "") for b in message["content"] if b["type"] == "text")
        assert text == _recorded_texts(record.events) or not _recorded_texts(record.events)
        calls = [e["item"] for e in record.events if e.get("type") == "response.output_item.done"]
        call_ids = [c["call_id"] for c in calls if c.get("type") == "function_call"]
        assert [b["id"] for b in message["content"] if b["type"] == "tool_use"] == call_ids
        if call_ids:
            assert message["stop_reason"] in ("tool_use", "max_tokens")
    else:
        assert "error" in message


def _aggregate(events: list[dict[str, Any]], thinking: str) -> dict[str, Any] | APIError:
    aggregator = MessagesAggregator(
        model="claude-test", message_id="msg_test", thinking=thinking, sign_reasoning=signer
    )
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    try:
        return aggregator.message()
    except APIError as error:
        return error


pieces = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4)
item = st.one_of(
    st.tuples(st.just("reasoning"), st.lists(pieces, min_size=1, max_size=2), st.booleans()),
    st.tuples(st.just("message"), pieces, st.booleans()),
    st.tuples(st.just("refusal"), pieces, st.booleans()),
    st.tuples(st.just("call"), st.lists(st.integers(0, 99), max_size=3), st.booleans()),
    st.tuples(st.just("search"), st.none(), st.booleans()),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(item, max_size=5),
    ending=st.sampled_from(["completed", "incomplete", "failed", "error", "none"]),
    thinking=st.sampled_from(["summarized", "omitted", "none"]),
)
def test_generated_streams_keep_the_grammar(items: list[Any], ending: str, thinking: str) -> None:
    builder = StreamBuilder().created()
    texts: list[str] = []
    calls = 0
    for n, (kind, value, deltas) in enumerate(items):
        if kind == "reasoning":
            builder.reasoning(value, deltas=deltas)
        elif kind in ("message", "refusal"):
            builder.message(value, refusal=kind == "refusal", deltas=deltas)
            texts.append("".join(value))
        elif kind == "call":
            calls += 1
            arguments = json.dumps({"values": value})
            builder.function_call(f"call_{n}", "tool", [arguments[:3], arguments[3:]], deltas=deltas)
        else:
            builder.hosted("web_search_call")
    if ending == "completed":
        builder.completed()
    elif ending == "incomplete":
        builder.incomplete()
    elif ending == "failed":
        builder.failed()
    elif ending == "error":
        builder.error()
    frames = translate(builder.events, thinking=thinking, sign_reasoning=signer)
    message = check_grammar(frames)
    aggregated = _aggregate(builder.events, thinking)
    if ending in ("failed", "error", "none"):
        assert "error" in message and isinstance(aggregated, APIError)
        return
    assert isinstance(aggregated, dict)
    assert [b for b in message["content"] if b["type"] == "text"] == [{"type": "text", "text": t} for t in texts]
    assert sum(b["type"] == "tool_use" for b in message["content"]) == calls
    thinking_blocks = [b for b in message["content"] if b["type"] == "thinking"]
    assert len(thinking_blocks) == (0 if thinking == "none" else sum(kind == "reasoning" for kind, *_ in items))
    assert all(b["signature"] for b in thinking_blocks)
    if thinking == "omitted":
        assert all(b["thinking"] == "" for b in thinking_blocks)
    assert aggregated["content"] == message["content"]
    assert aggregated["stop_reason"] == message["stop_reason"]
    if ending == "incomplete":
        assert message["stop_reason"] == "max_tokens"
    elif any(kind == "refusal" for kind, *_ in items):
        assert message["stop_reason"] == "refusal"
    elif calls:
        assert message["stop_reason"] == "tool_use"
    else:
        assert message["stop_reason"] == "end_turn"
