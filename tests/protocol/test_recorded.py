"""Every recorded third-party stream and body through the core, checked against what was recorded.

The expected values are read straight from the recorded events (``output_text.done`` texts,
``output_item.done`` function calls, the terminal ``usage``), never from the code under test.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from codexgate.protocol.aggregate import ChatCompletionAggregator, ResponseAggregator
from codexgate.protocol.anthropic_aggregate import MessagesAggregator
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.protocol.sse_writer import encode_chunks
from tests.protocol.anthropic_sse import translate as anthropic_translate
from tests.protocol.chat_replay import fold, translate
from tests.recorded_streams import (
    Recorded,
    by_name,
    chat_bodies,
    chat_requests,
    chat_streams,
    error_bodies,
    load_all,
    parse_sse,
    responses_bodies,
    responses_requests,
    responses_streams,
    stream_from_body,
)

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
STREAMS = responses_streams()
BROKEN = {"ai/parallel-tool-call-wrapper.1.chunks.txt"}  # its created/completed lines are not valid JSON


def _ids(records: list[Recorded]) -> list[str]:
    return [r.name for r in records]


ANONYMIZED = {"ai/azure-gpt5-reasoning-multi-summary-no-encryption.chunks.txt"}  # deltas are "XXX…"


def _part_texts(events: list[dict[str, Any]]) -> list[str]:
    """Per text part, in order: the ``output_text.done`` text, or the deltas when they disagree.

    One recording was anonymized after the fact (its deltas are ``X``s, its done text a
    placeholder); the streamed deltas are what a client saw, so they win there.
    """
    deltas: dict[Any, str] = {}
    texts = []
    for e in events:
        key = (e.get("output_index"), e.get("content_index"))
        if e.get("type") == "response.output_text.delta":
            deltas[key] = deltas.get(key, "") + e["delta"]
        elif e.get("type") == "response.output_text.done":
            texts.append(deltas.get(key) or e["text"])
    return texts


def test_recorded_deltas_agree_with_done_texts() -> None:
    for record in STREAMS:
        deltas: dict[Any, str] = {}
        for e in record.events:
            key = (e.get("output_index"), e.get("content_index"))
            if e.get("type") == "response.output_text.delta":
                deltas[key] = deltas.get(key, "") + e["delta"]
            elif e.get("type") == "response.output_text.done" and key in deltas:
                assert (deltas[key] == e["text"]) != (record.name in ANONYMIZED), record.name


def expected(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the recording says the answer is."""
    text = "".join(_part_texts(events))
    refusal = "".join(e["refusal"] for e in events if e.get("type") == "response.refusal.done")
    calls = [
        (e["item"]["call_id"], e["item"]["name"], e["item"]["arguments"])
        for e in events
        if e.get("type") == "response.output_item.done" and e["item"].get("type") == "function_call"
    ]
    terminal = next((e for e in events if e.get("type") in TERMINAL), None)
    error = next((e for e in events if e.get("type") in ("error", "codexgate.protocol_error")), None)
    response: Any = terminal["response"] if terminal else None
    if error is not None:
        code = (error.get("error") or error).get("code") if error["type"] == "error" else "upstream_protocol_error"
    elif terminal is None:
        code = "stream_incomplete"
    elif terminal["type"] == "response.failed":
        code = response["error"]["code"]
    else:
        code = None
    reason = (response or {}).get("incomplete_details") or {}
    finishes = {"max_output_tokens": "length", "content_filter": "content_filter"}
    finish = finishes.get(str(reason.get("reason")))
    custom = any(
        e.get("type") == "response.output_item.done" and e["item"].get("type") == "custom_tool_call" for e in events
    )
    return {
        "text": text,
        "refusal": refusal,
        "calls": calls,
        "usage": (response or {}).get("usage"),
        "error_code": code,
        "finish": finish or ("tool_calls" if calls or custom else "stop"),
    }


def test_every_fixture_format_loads() -> None:
    records = load_all()
    assert {r.path.suffix for r in records} >= {".yaml", ".txt", ".json", ".bin"}
    assert len(STREAMS) >= 20
    assert all(r.events for r in STREAMS)


@pytest.mark.parametrize("record", STREAMS, ids=_ids(STREAMS))
def test_decoder_matches_reference_parser(record: Recorded) -> None:
    assert record.raw is not None
    decoder = SSEDecoder()
    events = decoder.feed(record.raw) + decoder.close()
    assert [e["type"] for e in events] == [e["type"] for e in record.events]
    assert [e for e in events if e["type"] != "codexgate.protocol_error"] == [
        e for e in record.events if e["type"] != "codexgate.protocol_error"
    ]


@pytest.mark.parametrize("record", STREAMS, ids=_ids(STREAMS))
@pytest.mark.parametrize("reasoning_format", ["reasoning_content", "think", "hidden"])
def test_stream_translation_matches_recording(record: Recorded, reasoning_format: str) -> None:
    want = expected(record.events)
    decoder = SSEDecoder()
    assert record.raw is not None
    events = decoder.feed(record.raw) + decoder.close()
    chunks, translator = translate(events, reasoning_format=reasoning_format, completion_id="chatcmpl-x", created=7)
    # Through the writer and back: what a client would parse.
    chunks = parse_sse(encode_chunks(chunks))
    got = fold(chunks)
    if want["error_code"] is not None:
        assert [e["code"] for e in got.errors] == [want["error_code"]]
        assert got.finish_reasons == []
        assert translator.error is not None and translator.error.code == want["error_code"]
        assert "error" in chunks[-1]
        return
    assert got.errors == []
    assert got.finish_reasons == [want["finish"]]
    content = got.content
    if reasoning_format == "think" and "<think>" in content:
        head, _, content = content.rpartition("</think>")
        assert head.startswith("<think>\n")
        content = content.removeprefix("\n\n")
    assert content == want["text"]
    assert got.refusal == want["refusal"]
    functions = [c for c in got.tool_calls.values() if c["type"] == "function"]
    assert [(c["id"], c["name"], c["arguments"]) for c in functions] == want["calls"]
    for call in functions:
        json.loads(call["arguments"])
    assert sorted(got.tool_calls) == list(range(len(got.tool_calls)))
    assert len(got.usage_chunks) == 1
    usage = got.usage_chunks[0]["usage"]
    if want["usage"] is not None:
        assert usage["prompt_tokens"] == want["usage"]["input_tokens"]
        assert usage["completion_tokens"] == want["usage"]["output_tokens"]
        assert usage["total_tokens"] == want["usage"]["total_tokens"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == want["usage"]["input_tokens_details"]["cached_tokens"]
        assert (
            usage["completion_tokens_details"]["reasoning_tokens"]
            == want["usage"]["output_tokens_details"]["reasoning_tokens"]
        )
    assert translator.usage == want["usage"]
    assert got.roles == ["assistant"]
    assert all(c["id"] == "chatcmpl-x" and c["created"] == 7 and c["model"] == "gpt-test" for c in chunks)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" in c for c in chunks)
    if reasoning_format != "reasoning_content":
        assert got.reasoning == ""


@pytest.mark.parametrize("record", STREAMS, ids=_ids(STREAMS))
def test_chat_aggregator_matches_recording(record: Recorded) -> None:
    want = expected(record.events)
    aggregator = ChatCompletionAggregator(
        model="alias-high", reasoning_format="reasoning_content", completion_id="chatcmpl-x", created=7
    )
    for event in record.events:
        aggregator.feed(event)
    aggregator.finish()
    if want["error_code"] is not None:
        with pytest.raises(Exception) as info:
            aggregator.result()
        assert getattr(info.value, "code", None) == want["error_code"]
        return
    result = aggregator.result()
    message = result["choices"][0]["message"]
    assert result["object"] == "chat.completion" and result["model"] == "alias-high"
    assert (message["content"] or "") == want["text"]
    assert (message["refusal"] or "") == want["refusal"]
    calls = [
        (c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in message.get("tool_calls", [])
        if c["type"] == "function"
    ]
    assert calls == want["calls"]
    if want["calls"] and not want["text"]:
        assert message["content"] is None
    assert result["choices"][0]["finish_reason"] == want["finish"]
    if want["usage"]:
        assert result["usage"]["prompt_tokens"] == want["usage"]["input_tokens"]
        assert result["usage"]["completion_tokens"] == want["usage"]["output_tokens"]
    summaries = [e["text"] for e in record.events if e.get("type") == "response.reasoning_summary_text.done"]
    if summaries:
        assert message["reasoning_content"] == "\n\n".join(t for t in summaries if t)


@pytest.mark.parametrize("record", STREAMS, ids=_ids(STREAMS))
def test_nothing_that_reads_the_events_changes_them(record: Recorded) -> None:
    """The translators and aggregators copy what they keep: an event a client was sent stays as it came."""
    events = copy.deepcopy(record.events)
    readers: list[Any] = [
        ResponseAggregator(created_at=7),
        ChatCompletionAggregator(model="m", completion_id="chatcmpl-x", created=7),
        MessagesAggregator(model="claude-x", message_id="msg_x"),
    ]
    for event in events:
        for reader in readers:
            reader.feed(event)
    translate(events, reasoning_format="reasoning_content", completion_id="chatcmpl-x", created=7)
    anthropic_translate(events)
    assert events == record.events


@pytest.mark.parametrize("record", STREAMS, ids=_ids(STREAMS))
def test_response_aggregator_matches_recording(record: Recorded) -> None:
    want = expected(record.events)
    aggregator = ResponseAggregator(created_at=7)
    for event in record.events:
        aggregator.feed(event)
    aggregator.finish()
    if want["error_code"] is not None:
        assert aggregator.error is not None and aggregator.error.code == want["error_code"]
        return
    result = aggregator.result()
    assert result["object"] == "response"
    terminal = next(e for e in record.events if e.get("type") in TERMINAL)
    assert result["id"] == terminal["response"]["id"]
    assert result["usage"] == want["usage"]
    text = "".join(
        part.get("text", "")
        for item in result["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
    assert text == want["text"]
    calls = [(i["call_id"], i["name"], i["arguments"]) for i in result["output"] if i["type"] == "function_call"]
    assert calls == want["calls"]
    done_items = [e["item"] for e in record.events if e.get("type") == "response.output_item.done"]
    assert [i.get("id") for i in result["output"]] == [i.get("id") for i in done_items]
    for item in result["output"]:  # encrypted reasoning survives for the next turn
        done = next(d for d in done_items if d.get("id") == item.get("id"))
        assert item.get("encrypted_content") == done.get("encrypted_content")


def test_broken_json_fixture_reports_a_protocol_error_and_still_streams_the_rest() -> None:
    record = by_name("ai/parallel-tool-call-wrapper.1.chunks.txt")
    got = fold(translate(record.events)[0])
    assert [e["code"] for e in got.errors] == ["upstream_protocol_error"]
    # Without the two malformed lines the tool call streams; the missing terminal is an error.
    valid = [e for e in record.events if e["type"] != "codexgate.protocol_error"]
    got = fold(translate(valid)[0])
    assert got.tool_calls[0]["id"] == "call_parallel" and got.tool_calls[0]["name"] == "parallel"
    assert json.loads(got.tool_calls[0]["arguments"])["tool_uses"][1]["parameters"] == {"city": "Rome"}
    assert [e["code"] for e in got.errors] == ["stream_incomplete"]


def test_custom_tool_fixture_becomes_a_custom_tool_call() -> None:
    got = fold(translate(by_name("ai/openai-custom-tool.1.chunks.txt").events)[0])
    assert got.tool_calls == {
        0: {
            "id": "call_custom_sql_001",
            "name": "write_sql",
            "arguments": "SELECT * FROM users WHERE age > 25",
            "type": "custom",
        }
    }
    assert got.finish_reasons == ["tool_calls"]


def test_hosted_tool_fixtures_produce_no_tool_calls() -> None:
    for name in (
        "pydantic-ai/test_openai_responses_model_web_search_tool_stream.yaml#0",
        "pydantic-ai/test_openai_responses_thinking_with_code_execution_tool_stream.yaml#0",
        "ai/openai-image-generation-tool.1.chunks.txt",
    ):
        got = fold(translate(by_name(name).events)[0])
        assert got.tool_calls == {}, name
        assert got.finish_reasons == ["stop"], name


def test_web_search_fixture_streams_url_citations() -> None:
    record = by_name("pydantic-ai/test_openai_responses_model_web_search_tool_stream.yaml#0")
    recorded = [
        e["annotation"]
        for e in record.events
        if e.get("type") == "response.output_text.annotation.added" and e["annotation"]["type"] == "url_citation"
    ]
    got = fold(translate(record.events)[0])
    assert [a["url_citation"]["url"] for a in got.annotations] == [a["url"] for a in recorded]
    assert all(set(a) == {"type", "url_citation"} for a in got.annotations)


# -- non-streaming bodies -------------------------------------------------------------------

BODIES = responses_bodies()


@pytest.mark.parametrize("record", BODIES, ids=_ids(BODIES))
@pytest.mark.parametrize("style", ["items", "final_only"])
def test_response_bodies_through_the_core(record: Recorded, style: str) -> None:
    body = record.body
    assert body is not None
    events = stream_from_body(body, item_events=style == "items")
    text = "".join(
        p["text"] for i in body["output"] if i["type"] == "message" for p in i["content"] if p["type"] == "output_text"
    )
    calls = [(i["call_id"], i["name"], i["arguments"]) for i in body["output"] if i["type"] == "function_call"]
    got = fold(translate(events)[0])
    assert got.content == text
    assert [(c["id"], c["name"], c["arguments"]) for c in got.tool_calls.values()] == calls
    assert got.finish_reasons == ["tool_calls" if calls else "stop"]
    assert got.usage_chunks[0]["usage"]["total_tokens"] == body["usage"]["total_tokens"]
    aggregator = ResponseAggregator(created_at=7)
    for event in events:
        aggregator.feed(event)
    aggregator.finish()
    assert [i.get("id") for i in aggregator.result()["output"]] == [i.get("id") for i in body["output"]]


def test_error_bodies_are_recognised() -> None:
    codes = {r.name: (r.body or {})["error"]["code"] for r in error_bodies()}
    assert codes["ai/openai-error.1.json"] == "insufficient_quota"
    assert codes["pydantic-ai/test_openai_responses_model_http_error.yaml#0"] == "decimal_below_min_value"


# -- Chat shapes compared with recorded Chat Completions -----------------------------------


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def subset_shape(mine: Any, theirs: Any, where: str = "") -> None:
    """Every key we send exists in the recorded chunk, with the same nesting and a compatible type."""
    if isinstance(mine, dict):
        assert isinstance(theirs, dict), where
        for key, value in mine.items():
            assert key in theirs, f"{where}.{key} not in recorded {sorted(theirs)}"
            subset_shape(value, theirs[key], f"{where}.{key}")
    elif isinstance(mine, list) and mine and theirs:
        subset_shape(mine[0], theirs[0], f"{where}[0]")
    elif mine != "NoneType" and theirs != "NoneType" and not isinstance(mine, list):
        assert mine == theirs or {mine, theirs} <= {"int", "float"}, f"{where}: {mine} vs {theirs}"


def _kind(chunk: dict[str, Any]) -> str | None:
    if not chunk.get("choices"):
        return "usage" if chunk.get("usage") else None
    choice = chunk["choices"][0]
    delta = choice["delta"]
    if choice.get("finish_reason"):
        return "finish"
    if "role" in delta:
        return "role"
    if delta.get("tool_calls"):
        return "tool_header" if "id" in delta["tool_calls"][0] else "tool_args"
    if delta.get("refusal"):
        return "refusal"
    if delta.get("content"):
        return "content"
    return None


def _by_kind(chunks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        kind = _kind(chunk)
        if kind is not None and kind not in found:
            found[kind] = chunk
    return found


def test_chunk_shapes_match_recorded_chat_streams() -> None:
    recorded: dict[str, list[dict[str, Any]]] = {}
    for record in chat_streams():
        for kind, chunk in _by_kind(record.events).items():
            recorded.setdefault(kind, []).append(chunk)
    assert {"role", "content", "tool_header", "tool_args", "finish", "usage", "refusal"} <= set(recorded)
    ours: dict[str, dict[str, Any]] = {}
    for name in (
        "pydantic-ai/test_openai_responses_stream.yaml#0",
        "pydantic-ai/test_openai_responses_stream.yaml#1",
        "ai/openai-reasoning-encrypted-content.1.chunks.txt#0",
    ):
        ours.update({k: v for k, v in _by_kind(translate(by_name(name).events)[0]).items() if k not in ours})
    from tests.protocol.stream_builder import StreamBuilder

    refusal = StreamBuilder().created().message(["I can't", " help"], refusal=True).completed().events
    ours.update({k: v for k, v in _by_kind(translate(refusal)[0]).items() if k not in ours})
    assert {"role", "content", "tool_header", "tool_args", "finish", "usage", "refusal"} <= set(ours)
    for kind, chunk in ours.items():
        # compare with a recorded chunk of the same kind that has usage iff ours has it
        candidates = [c for c in recorded[kind] if ("usage" in c) == ("usage" in chunk)]
        if not candidates:  # no recording of this kind was made with include_usage
            candidates = recorded[kind]
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
        mine = shape(chunk)
        errors = []
        for theirs in candidates:
            try:
                subset_shape(mine, shape(theirs), kind)
                break
            except AssertionError as exc:
                errors.append(str(exc))
        else:
            pytest.fail(f"{kind}: {errors}")
        choices = chunk["choices"]
        if choices:
            assert set(choices[0]) == set(candidates[0]["choices"][0]) - {"content_filter_results"}


def test_completion_shape_matches_recorded_chat_bodies() -> None:
    bodies = [r.body for r in chat_bodies() if r.body and r.body.get("object") == "chat.completion"]
    assert bodies
    aggregator = ChatCompletionAggregator(model="m", completion_id="chatcmpl-x", created=7)
    for event in by_name("pydantic-ai/test_openai_responses_stream.yaml#0").events:
        aggregator.feed(event)
    ours = aggregator.result()
    with_calls = [b for b in bodies if b["choices"][0]["message"].get("tool_calls")]
    assert with_calls
    subset_shape(shape(ours), shape(with_calls[0]), "completion")
    assert set(ours["choices"][0]) == set(with_calls[0]["choices"][0])


# -- recorded requests through the mapper --------------------------------------------------


@pytest.mark.parametrize("record", chat_requests(), ids=_ids(chat_requests()))
def test_recorded_chat_requests_map(record: Recorded) -> None:
    from codexgate.protocol.chat_to_responses import map_chat_request

    assert record.request is not None
    mapped = map_chat_request(dict(record.request))
    items = mapped.body["input"]
    assert all(item.get("role") != "system" for item in items)
    assert all("id" not in item for item in items)
    calls = [i["call_id"] for i in items if i["type"] == "function_call"]
    outputs = [i["call_id"] for i in items if i["type"] == "function_call_output"]
    assert sorted(calls) == sorted(outputs)
    assert mapped.stream == bool(record.request.get("stream"))
    assert mapped.include_usage == bool((record.request.get("stream_options") or {}).get("include_usage"))


PAIRS = ["auto", "list_single", "none", "required"]


@pytest.mark.parametrize("case", PAIRS)
def test_tool_choice_matrix_maps_like_the_recorded_responses_request(case: str) -> None:
    from codexgate.protocol.chat_to_responses import map_chat_request

    chat = by_name(f"pydantic-ai/test_tool_choice_matrix[{case}-openai].yaml#0").request
    responses = by_name(f"pydantic-ai/test_tool_choice_matrix[{case}-openai_responses].yaml#0").request
    assert chat is not None and responses is not None
    mapped = map_chat_request(dict(chat)).body
    assert mapped["tool_choice"] == responses["tool_choice"]
    assert mapped["tools"] == responses["tools"]


def test_function_call_history_maps_like_the_recorded_responses_request() -> None:
    from codexgate.protocol.chat_to_responses import map_chat_request

    chat = by_name("pydantic-ai/test_tool_choice_matrix[auto-openai].yaml#1").request
    assert chat is not None
    mapped = map_chat_request(dict(chat)).body["input"]
    recorded = [
        r for r in responses_requests() if r.name == "pydantic-ai/test_tool_choice_matrix[auto-openai_responses].yaml#1"
    ]
    items = [i for i in recorded[0].request["input"] if i.get("type") in ("function_call", "function_call_output")]  # type: ignore[index]
    keep = ("type", "name", "arguments", "output")
    mine = [{k: i[k] for k in keep if k in i} for i in mapped if i["type"] != "message"]
    theirs = [{k: i[k] for k in keep if k in i} for i in items]
    assert mine == theirs
