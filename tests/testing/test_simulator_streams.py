"""Each stream scenario is a valid Responses event stream, shaped like the recorded ones."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgate.testing import Scenario, ToolCall, UpstreamSimulator, expected_text
from codexgate.testing.scenarios import STREAM_SCENARIOS, CallSpec
from codexgate.testing.sse_events import split_pieces
from tests.recorded_streams import FIXTURES_DIR, responses_streams
from tests.testing.support import AUTH, check_stream, events_of, parse_sse, request_body

RECORDED_REASONING = "ai/openai-reasoning-encrypted-content.1.chunks.txt"


def post(http: httpx.Client, body: dict[str, Any] | None = None) -> httpx.Response:
    return http.post("/responses", json=body or request_body(), headers=AUTH)


def stream_of(http: httpx.Client, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    response = post(http, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return events_of(response.content)


@pytest.mark.parametrize("name", sorted(STREAM_SCENARIOS - {"replay"}))
def test_every_stream_scenario_is_a_valid_stream(sim: UpstreamSimulator, http: httpx.Client, name: str) -> None:
    sim.enqueue(Scenario(name, event_delay=0.0))
    summary = check_stream(stream_of(http))
    assert summary.rate_limits is not None and summary.events[0]["type"] == "codex.rate_limits"
    status = summary.terminal["response"]["status"]
    expected = {
        "incomplete": "incomplete",
        "content_filter": "incomplete",
        "failed": "failed",
        "error_event": "failed",
        "context_length_exceeded": "failed",
        "rate_limit_exceeded": "failed",
    }.get(name, "completed")
    assert status == expected
    assert sim.requests[-1].scenario == name and sim.requests[-1].outcome == "completed"


def test_text_answer_is_derived_from_the_prompt(http: httpx.Client) -> None:
    summary = check_stream(stream_of(http, request_body("Tell me a joke")))
    assert list(summary.texts.values()) == [expected_text("Tell me a joke")]
    assert expected_text("Tell me a joke") == "Simulated answer to: Tell me a joke"
    assert summary.terminal["response"]["model"] == "gpt-5"


def test_tokens_sets_the_number_of_text_deltas(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("text", tokens=200), Scenario("text", text="abcdefgh", tokens=4))
    events = stream_of(http, request_body("hi"))
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) == 200
    assert "".join(d["delta"] for d in deltas) == expected_text("hi", 200)
    assert check_stream(events).terminal["response"]["usage"]["output_tokens"] == 200
    pieces = [e["delta"] for e in stream_of(http) if e["type"] == "response.output_text.delta"]
    assert pieces == ["ab", "cd", "ef", "gh"]


def test_set_text_is_streamed_word_by_word(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("text", text="Hello there, friend."))
    events = stream_of(http)
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hello", " there,", " friend."]


def test_reasoning_streams_summary_parts_then_text(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("reasoning", text="answer", reasoning_summary=["first thought", "second thought"]))
    summary = check_stream(stream_of(http))
    reasoning, message = summary.items[0], summary.items[1]
    assert reasoning["type"] == "reasoning" and message["type"] == "message"
    assert [p["text"] for p in reasoning["summary"]] == ["first thought", "second thought"]
    assert reasoning["encrypted_content"].startswith("gAAAA")
    assert summary.texts[message["id"]] == "answer"
    usage = summary.terminal["response"]["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0
    assert summary.types.count("response.reasoning_summary_part.added") == 2


def test_reasoning_without_include_has_no_encrypted_content(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("reasoning"))
    summary = check_stream(stream_of(http, request_body(include=[])))
    assert "encrypted_content" not in summary.items[0]


def test_parallel_tool_calls_with_preamble(sim: UpstreamSimulator, http: httpx.Client) -> None:
    calls: list[CallSpec] = [
        ("get_weather", {"city": "Paris"}),
        ToolCall("get_time", '{"tz":"UTC"}', call_id="call_fixed"),
    ]
    sim.enqueue(Scenario("tool_calls", calls=calls, preamble="Let me check."))
    summary = check_stream(stream_of(http))
    kinds = [summary.items[i]["type"] for i in sorted(summary.items)]
    assert kinds == ["message", "function_call", "function_call"]
    first, second = summary.items[1], summary.items[2]
    assert (first["name"], json.loads(first["arguments"])) == ("get_weather", {"city": "Paris"})
    assert (second["name"], second["arguments"], second["call_id"]) == ("get_time", '{"tz":"UTC"}', "call_fixed")
    assert first["call_id"].startswith("call_") and first["id"].startswith("fc_")
    added = [e for e in summary.events if e["type"] == "response.output_item.added"]
    assert [a["item"].get("arguments") for a in added[1:]] == ["", ""]
    assert summary.types.count("response.function_call_arguments.delta") == 8


def test_default_tool_calls_follow_the_request_tools(http: httpx.Client) -> None:
    tools = [
        {
            "type": "function",
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}},
        }
    ]
    summary = check_stream(stream_of(http, request_body("scenario:tools please", tools=tools)))
    assert [(i["name"], json.loads(i["arguments"])) for i in summary.items.values()] == [
        ("lookup", {"q": "example", "n": 1})
    ]


def test_tool_args_done_only_has_no_deltas(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("tool_args_done_only", calls=[("f", {"a": 1})]))
    summary = check_stream(stream_of(http))
    assert "response.function_call_arguments.delta" not in summary.types
    assert list(summary.arguments.values()) == ['{"a":1}']


def test_refusal(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("refusal", refusal="No can do."))
    summary = check_stream(stream_of(http))
    assert list(summary.refusals.values()) == ["No can do."]
    assert summary.items[0]["content"] == [{"type": "refusal", "refusal": "No can do."}]


@pytest.mark.parametrize(
    ("name", "reason"), [("incomplete", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_incomplete_reasons(sim: UpstreamSimulator, http: httpx.Client, name: str, reason: str) -> None:
    sim.enqueue(Scenario(name, text="partial answer"))
    summary = check_stream(stream_of(http))
    assert summary.terminal["type"] == "response.incomplete"
    assert summary.terminal["response"]["incomplete_details"] == {"reason": reason}
    assert list(summary.texts.values()) == ["partial answer"]
    assert summary.items[0]["status"] == "incomplete"


@pytest.mark.parametrize("name", ["failed", "context_length_exceeded", "rate_limit_exceeded"])
def test_in_stream_failures_carry_their_code(sim: UpstreamSimulator, http: httpx.Client, name: str) -> None:
    sim.enqueue(Scenario(name))
    summary = check_stream(stream_of(http))
    error = summary.terminal["response"]["error"]
    assert error["code"] == {"failed": "server_error"}.get(name, name) and error["message"]


def test_failed_code_is_settable(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("failed", error_code="insufficient_quota", error_message="no quota"))
    error = check_stream(stream_of(http)).terminal["response"]["error"]
    assert error == {"code": "insufficient_quota", "message": "no quota"}


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_error_event_then_failed(sim: UpstreamSimulator, http: httpx.Client, shape: str) -> None:
    sim.enqueue(Scenario("error_event", error_code="server_is_overloaded", error_shape=shape))
    summary = check_stream(stream_of(http))
    assert summary.types[-2:] == ["error", "response.failed"]
    error_event = summary.events[-2]
    code = error_event["error"]["code"] if shape == "nested" else error_event["code"]
    assert code == "server_is_overloaded" == summary.terminal["response"]["error"]["code"]


def test_web_search_then_cited_text(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("web_search", text="It is sunny."))
    summary = check_stream(stream_of(http))
    assert summary.types[3:8] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    annotation_events = [e for e in summary.events if e["type"] == "response.output_text.annotation.added"]
    assert len(annotation_events) == 1
    annotation = annotation_events[0]["annotation"]
    assert annotation["type"] == "url_citation" and annotation["url"].startswith("https://")
    assert (annotation["start_index"], annotation["end_index"]) == (0, len("It is sunny."))
    assert summary.items[1]["content"][0]["annotations"] == [annotation]


def test_custom_tool_call(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("custom_tool", calls=[ToolCall("write_sql", "SELECT * FROM users")]))
    summary = check_stream(stream_of(http))
    deltas = [e["delta"] for e in summary.events if e["type"] == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == "SELECT * FROM users" and len(deltas) == 4
    done = [e for e in summary.events if e["type"] == "response.custom_tool_call_input.done"]
    assert done[0]["input"] == "SELECT * FROM users" == summary.items[0]["input"]
    assert summary.items[0]["type"] == "custom_tool_call"


def test_empty_final_output_mimics_the_backend(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("text", empty_final_output=True))
    summary = check_stream(stream_of(http))
    assert summary.terminal["response"]["output"] == [] and summary.texts
    sim.empty_final_output = True
    assert check_stream(stream_of(http)).terminal["response"]["output"] == []


def test_rate_limits_event_can_be_switched_off(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.rate_limits_event = False
    assert check_stream(stream_of(http)).rate_limits is None
    sim.enqueue(Scenario("text", rate_limits_event=True))
    limits = check_stream(stream_of(http)).rate_limits
    assert limits is not None and limits["plan_type"] == "plus"
    assert set(limits["rate_limits"]["primary"]) == {"used_percent", "window_minutes", "reset_at"}


def test_coalesced_stream_is_the_same_stream(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("reasoning", coalesce=True))
    check_stream(stream_of(http))
    assert len(set(sim.requests[-1].event_times)) == 1


def test_replay_recorded_events(sim: UpstreamSimulator, http: httpx.Client) -> None:
    recorded = next(r for r in responses_streams() if r.name == RECORDED_REASONING + "#2")
    sim.enqueue(Scenario.from_events(recorded.events, rate_limits_event=False))
    assert stream_of(http) == recorded.events


def _keys_by_type(events: list[dict[str, Any]]) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for event in events:
        keys.setdefault(event["type"], set()).update(event)
    return keys


def test_event_fields_agree_with_the_recorded_stream(sim: UpstreamSimulator, http: httpx.Client) -> None:
    recorded_events = [e for r in responses_streams() if r.name.startswith(RECORDED_REASONING) for e in r.events]
    assert (FIXTURES_DIR / RECORDED_REASONING).exists() and recorded_events
    ours: list[dict[str, Any]] = []
    for scenario in (Scenario("reasoning"), Scenario("tool_calls"), Scenario("text")):
        sim.enqueue(scenario)
        ours.extend(stream_of(http))
    recorded, mine = _keys_by_type(recorded_events), _keys_by_type(ours)
    assert set(recorded) <= set(mine)
    for kind, fields in recorded.items():
        assert fields <= mine[kind], (kind, fields - mine[kind])
    recorded_response = next(e for e in recorded_events if e["type"] == "response.completed")["response"]
    my_response = next(e for e in ours if e["type"] == "response.completed")["response"]
    assert set(recorded_response) <= set(my_response)
    recorded_items = {i["type"]: set(i) for e in recorded_events if "item" in e for i in [e["item"]]}
    my_items = {i["type"]: set(i) for e in ours if "item" in e for i in [e["item"]]}
    for kind, fields in recorded_items.items():
        assert fields <= my_items[kind], (kind, fields - my_items[kind])


def test_standard_parser_handles_the_raw_bytes(http: httpx.Client) -> None:
    raw = post(http).content
    assert raw.startswith(b"event: codex.rate_limits\ndata: {")
    assert raw.endswith(b"\n\n") and b"\r" not in raw
    messages = parse_sse(raw)
    assert all(m.data.startswith("{") and "\n" not in m.data for m in messages)
    # The same bytes fed in arbitrary pieces through a CRLF rewrite still parse the same.
    assert parse_sse(raw.replace(b"\n", b"\r\n")) == messages


@given(st.text(max_size=60), st.one_of(st.none(), st.integers(min_value=1, max_value=80)))
def test_pieces_always_join_to_the_text(text: str, count: int | None) -> None:
    pieces = split_pieces(text, count)
    assert "".join(pieces) == text
    if count is not None and text:
        assert len(pieces) == min(count, len(text))


def test_a_long_answer_is_sent_while_it_is_built(sim: UpstreamSimulator, http: httpx.Client) -> None:
    tokens = 150_000  # about 30 MB of events: far more than the socket buffers hold
    sim.enqueue(Scenario("text", tokens=tokens))
    with http.stream("POST", "/responses", json=request_body(), headers=AUTH) as response:
        assert response.status_code == 200
        first = next(response.iter_lines())  # the head and the first event came ...
        assert first == "event: codex.rate_limits"
        record = sim.requests[-1]
        assert record.headers_sent_at is not None and record.event_types[:1] == ["codex.rate_limits"]
        # ... while the client reads nothing more, the simulator is held by the full pipe, and what it
        # has made so far is only what it has written: the rest of the answer does not exist yet
        assert len(record.event_types) <= record.events_sent + 1 < tokens
    assert record.wait_closed(10) and record.outcome == "disconnected"
