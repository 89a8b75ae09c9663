"""``/v1/chat/completions`` end to end: the openai SDK → gateway → simulator, all over HTTP."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Literal, cast

import httpx
import openai
import pydantic
import pytest
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)
from openai.types.chat.completion_create_params import Function

from codexgate.testing import Scenario
from tests.conftest import Gateway

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


def _last_body(gateway: Gateway) -> dict[str, object]:
    responses = [r for r in gateway.simulator.requests if r.path.endswith("/responses")]
    assert responses, "the simulator received no /responses request"
    body = responses[-1].json
    assert isinstance(body, dict)
    return body


def test_non_stream_text(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="Hello there, friend."))
    completion = gateway.client().chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-5"
    assert completion.choices[0].message.content == "Hello there, friend."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion.id.startswith("chatcmpl-")


def test_stream_text_with_usage(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="one two three four"))
    stream = gateway.client().chat.completions.create(
        model="gpt-5-high", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert {c.model for c in chunks} == {"gpt-5-high"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens > 0
    body = _last_body(gateway)
    assert body["model"] == "gpt-5"
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}


def test_stream_parallel_tool_calls(gateway: Gateway) -> None:
    calls = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Europe/Paris"})]
    gateway.simulator.enqueue(Scenario("tool_calls", calls=calls))
    tools: list[ChatCompletionFunctionToolParam] = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name, _ in calls
    ]
    stream = gateway.client().chat.completions.create(model="gpt-5", messages=MESSAGES, tools=tools, stream=True)
    assembled: dict[int, dict[str, str]] = {}
    finishes = []
    for chunk in stream:
        choice = chunk.choices[0]
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
        for delta in choice.delta.tool_calls or []:
            entry = assembled.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                assert not entry["id"], "the id comes once, in the first delta"
                entry["id"] = delta.id
            if delta.function and delta.function.name:
                entry["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                entry["arguments"] += delta.function.arguments
    assert finishes == ["tool_calls"]
    assert sorted(assembled) == [0, 1]
    assert [(assembled[i]["name"], json.loads(assembled[i]["arguments"])) for i in (0, 1)] == calls
    assert all(entry["id"] for entry in assembled.values())


def test_tool_loop_reaches_upstream_as_paired_items(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("tool_calls", calls=[("lookup", {"q": "x"})]))
    client = gateway.client()
    tools: list[ChatCompletionFunctionToolParam] = [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    ]
    first = client.chat.completions.create(model="gpt-5", messages=MESSAGES, tools=tools)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    call = message.tool_calls[0]  # type: ignore[index]
    gateway.simulator.enqueue(Scenario("text", text="done"))
    follow_up: list[ChatCompletionMessageParam] = [
        *MESSAGES,
        cast(ChatCompletionAssistantMessageParam, message.model_dump(exclude_none=True)),
        {"role": "tool", "tool_call_id": call.id, "content": "result"},
    ]
    second = client.chat.completions.create(model="gpt-5", messages=follow_up, tools=tools)
    assert second.choices[0].message.content == "done"
    items = _last_body(gateway)["input"]
    assert isinstance(items, list)
    calls = [i for i in items if i.get("type") == "function_call"]
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    assert [c["call_id"] for c in calls] == [o["call_id"] for o in outputs] == [call.id]
    assert outputs[0]["output"] == "result"


def test_legacy_functions_round_trip_with_function_call(gateway: Gateway) -> None:
    """Clients of the legacy ``functions`` API read ``message.function_call`` (one call at a time)."""
    functions: list[Function] = [
        {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}
    ]
    client = gateway.client()
    gateway.simulator.enqueue(Scenario("tool_calls", calls=[("lookup", {"q": "x"})]))
    first = client.chat.completions.create(model="gpt-5", messages=MESSAGES, functions=functions)
    assert first.choices[0].finish_reason == "function_call"
    message = first.choices[0].message
    assert message.tool_calls is None and message.function_call is not None
    assert message.function_call.name == "lookup" and json.loads(message.function_call.arguments) == {"q": "x"}
    assert _last_body(gateway)["parallel_tool_calls"] is False

    gateway.simulator.enqueue(Scenario("tool_calls", calls=[("lookup", {"q": "y"})]))
    stream = client.chat.completions.create(model="gpt-5", messages=MESSAGES, functions=functions, stream=True)
    name, arguments, finishes = "", "", []
    for chunk in stream:
        choice = chunk.choices[0]
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
        assert not choice.delta.tool_calls
        if choice.delta.function_call:
            name += choice.delta.function_call.name or ""
            arguments += choice.delta.function_call.arguments or ""
    assert finishes == ["function_call"] and name == "lookup" and json.loads(arguments) == {"q": "y"}

    gateway.simulator.enqueue(Scenario("text", text="looked up"))
    follow_up: list[ChatCompletionMessageParam] = [
        *MESSAGES,
        {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": arguments}},
        {"role": "function", "name": "lookup", "content": "found"},
    ]
    answer = client.chat.completions.create(model="gpt-5", messages=follow_up, functions=functions)
    assert answer.choices[0].message.content == "looked up" and answer.choices[0].finish_reason == "stop"


def test_reasoning_in_reasoning_content_and_think_modes(gateway: Gateway) -> None:
    client = gateway.client()
    gateway.simulator.enqueue(Scenario("reasoning", text="answer"))
    stream = client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True)
    reasoning = ""
    content = ""
    for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
    assert reasoning and content == "answer"

    gateway.simulator.enqueue(Scenario("reasoning", text="answer"))
    completion = client.chat.completions.create(
        model="gpt-5", messages=MESSAGES, extra_headers={"X-Codexgate-Reasoning": "think"}
    )
    text = completion.choices[0].message.content or ""
    assert text.startswith("<think>") and text.endswith("answer") and "</think>" in text

    gateway.simulator.enqueue(Scenario("reasoning", text="answer"))
    hidden = client.chat.completions.create(model="gpt-5", messages=MESSAGES, extra_body={"reasoning_format": "hidden"})
    assert hidden.choices[0].message.content == "answer"
    assert getattr(hidden.choices[0].message, "reasoning_content", None) is None


def test_upstream_request_carries_headers_and_shaped_body(gateway: Gateway) -> None:
    gateway.client().chat.completions.create(
        model="gpt-5", messages=MESSAGES, temperature=0.3, max_tokens=50, user="someone"
    )
    request = [r for r in gateway.simulator.requests if r.path.endswith("/responses")][-1]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["authorization"].startswith("Bearer ") and "sk-anything" not in headers["authorization"]
    assert headers["chatgpt-account-id"] == "acct_test_123"
    # as the Codex CLI 0.169.0 sends them: no OpenAI-Beta and no version header over HTTP
    assert "openai-beta" not in headers and "version" not in headers
    assert headers["accept"] == "text/event-stream"
    assert headers["originator"] == "codex_exec"
    assert headers["user-agent"].startswith(f"codex_exec/{gateway.settings.upstream.client_version} (")
    assert headers["session-id"] and headers["thread-id"] and headers["x-client-request-id"]
    body = request.json
    assert body["store"] is False and body["stream"] is True
    assert body["instructions"] == "Be brief."
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"]
    metadata = body["client_metadata"]
    assert metadata["session_id"] == headers["session-id"] and metadata["turn_id"]
    installation = (gateway.home / "installation_id").read_text().strip()
    assert metadata["x-codex-installation-id"] == installation
    assert (gateway.home / "installation_id").stat().st_mode & 0o777 == 0o600
    for name in ("temperature", "max_output_tokens", "user", "top_p", "metadata"):
        assert name not in body
    assert all(item.get("role") != "system" for item in body["input"])


def test_incomplete_is_length_and_refusal_is_stop(gateway: Gateway) -> None:
    client = gateway.client()
    gateway.simulator.enqueue(Scenario("incomplete"))
    assert client.chat.completions.create(model="gpt-5", messages=MESSAGES).choices[0].finish_reason == "length"
    gateway.simulator.enqueue(Scenario("refusal"))
    refused = client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert refused.choices[0].finish_reason == "stop"
    assert refused.choices[0].message.refusal


@pytest.mark.parametrize(
    ("scenario", "exception", "status"),
    [
        ("http_400", openai.BadRequestError, 400),
        ("http_429_usage_limit", openai.RateLimitError, 429),
        ("http_500", openai.APIStatusError, 502),
        ("context_length_exceeded", openai.BadRequestError, 400),
        ("rate_limit_exceeded", openai.RateLimitError, 429),
    ],
)
def test_error_mapping_non_stream(gateway: Gateway, scenario: str, exception: type[Exception], status: int) -> None:
    for _ in range(3):  # 5xx is retried up to twice
        gateway.simulator.enqueue(Scenario(scenario))
    with pytest.raises(exception) as info:
        gateway.client().chat.completions.create(model="gpt-5", messages=MESSAGES)
    error = info.value
    assert isinstance(error, openai.APIStatusError) and error.status_code == status
    if scenario == "http_429_usage_limit":
        assert int(error.response.headers["retry-after"]) > 0
        assert "resets" in error.message


def test_usage_limit_before_stream_is_a_429_status_even_when_streaming(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("http_429_usage_limit"))
    with pytest.raises(openai.RateLimitError):
        list(gateway.client().chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True))


def test_in_stream_failure_is_one_error_payload(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("error_event"))
    response = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-5", "messages": MESSAGES, "stream": True},
        timeout=10,
    )
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    errors = [json.loads(d) for d in data if d.startswith('{"error"')]
    assert len(errors) == 1 and errors[0]["error"]["code"]
    assert not any('"finish_reason":"' in d for d in data)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_a_client_that_gives_up_on_a_non_stream_answer_stops_the_upstream(gateway: Gateway, path: str) -> None:
    gateway.simulator.enqueue(Scenario("text", text=" ".join(["tok"] * 30), event_delay=0.2))  # a 6 s answer
    body = {"model": "gpt-5", "messages": MESSAGES} if "chat" in path else {"model": "gpt-5", "input": "hi"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.base_url + path, json=body, timeout=httpx.Timeout(10, read=0.6))
    gave_up = time.monotonic()
    request = gateway.simulator.responses_requests[-1]
    assert request.wait_closed(3)
    assert request.disconnected_at is not None and request.disconnected_at - gave_up < 3.0  # the answer had > 4 s left
    assert request.events_sent < 25  # it did not run to its end
    with sqlite3.connect(gateway.home / "usage.db") as db:
        deadline = time.monotonic() + 5
        rows: list[tuple[int, str]] = []
        while not rows and time.monotonic() < deadline:
            rows = db.execute("SELECT status, error_code FROM usage WHERE stream = 0").fetchall()
            time.sleep(0.05)
    assert rows == [(499, "client_disconnected")]


class Address(pydantic.BaseModel):
    city: str
    zip_code: str | None


class Person(pydantic.BaseModel):
    name: str
    age: int
    role: Literal["admin", "user"]
    addresses: list[Address]


def test_structured_outputs_with_the_sdk_parse_helpers(gateway: Gateway) -> None:
    """response_format reaches the backend as text.format, and the parse helpers get their JSON."""
    client = gateway.client()
    completion = client.chat.completions.parse(model="gpt-5", messages=MESSAGES, response_format=Person)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Person) and parsed.role == "admin" and parsed.addresses[0].city
    sent = _last_body(gateway)["text"]
    assert isinstance(sent, dict) and sent["format"]["type"] == "json_schema"
    assert sent["format"]["name"] == "Person" and sent["format"]["strict"] is True

    with client.chat.completions.stream(model="gpt-5", messages=MESSAGES, response_format=Person) as stream:
        for _event in stream:
            pass
        assert stream.get_final_completion().choices[0].message.parsed == parsed

    response = client.responses.parse(model="gpt-5", input="a person", text_format=Person)
    assert response.output_parsed == parsed


@pytest.mark.parametrize("scenario", ["text", "reasoning", "tool_calls"])
def test_an_answer_that_arrives_in_one_piece_streams_the_same(gateway: Gateway, scenario: str) -> None:
    """A backlog (the whole answer in one upstream read) is sent in parts, its first token first,
    and nothing is lost or doubled."""
    tools: list[ChatCompletionFunctionToolParam] = [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    ]
    answers = []
    for coalesce in (False, True):
        gateway.simulator.enqueue(Scenario(scenario, text=" ".join(["word"] * 40), coalesce=coalesce))
        stream = gateway.client().chat.completions.create(
            model="gpt-5", messages=MESSAGES, tools=tools, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        answers.append(
            (
                "".join(d.content or "" for d in deltas),
                "".join(getattr(d, "reasoning_content", None) or "" for d in deltas),
                "".join(t.function.arguments or "" for d in deltas for t in d.tool_calls or [] if t.function),
                [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason],
                chunks[-1].usage is not None,
            )
        )
    assert answers[0] == answers[1]
    assert answers[1][3] in (["stop"], ["tool_calls"]) and answers[1][4]


def test_5xx_is_retried_before_the_first_byte(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("http_503"))
    gateway.simulator.enqueue(Scenario("text", text="recovered"))
    completion = gateway.client().chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert completion.choices[0].message.content == "recovered"


def test_rate_limit_headers_are_passed_on_and_recorded(gateway: Gateway) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model="gpt-5", messages=MESSAGES)
    assert raw.headers.get("x-codex-primary-used-percent") is not None
    gateway.app.state.gateway.flush_rate_limits()
    saved = json.loads((gateway.home / "rate_limits.json").read_text())
    assert "primary" in saved


def test_first_chunk_is_not_buffered_and_disconnect_closes_upstream(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text=" ".join(["tok"] * 30), event_delay=0.2))  # a 6 s answer
    started = time.monotonic()
    first_at = None
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-5", "messages": MESSAGES, "stream": True},
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if '"content"' in line and first_at is None:
                first_at = time.monotonic()
                break
    closed_at = time.monotonic()
    assert first_at is not None
    request = [r for r in gateway.simulator.requests if r.path.endswith("/responses")][-1]
    sent = request.sent_at("response.output_text.delta")
    assert sent is not None
    # The answer takes 6 s upstream (events 0.2 s apart); its first token reached the client long before
    # the rest (a buffered answer would arrive after 5 s or more). The bounds are wide on purpose.
    print(f"first token: {1000 * (first_at - sent):.1f} ms after the simulator sent it")
    assert first_at - sent < 2.0
    assert first_at - started < 3.0
    deadline = time.monotonic() + 4
    while request.disconnected_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert request.disconnected_at is not None
    print(f"upstream closed {1000 * (request.disconnected_at - closed_at):.1f} ms after the client left")
    assert request.disconnected_at - closed_at < 3.0  # well before the answer's natural end (> 5 s away)
    assert request.events_sent < 25


def test_json_schema_and_image_data_url_reach_upstream(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text='{"ok": true}'))
    schema: dict[str, object] = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    image = "data:image/png;base64,iVBORw0KGgo="
    completion = gateway.client().chat.completions.create(
        model="gpt-5",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
                ],
            }
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"ok": True}
    body: dict[str, Any] = _last_body(gateway)
    assert body["text"]["format"] == {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
    parts = body["input"][0]["content"]
    assert {"type": "input_image", "image_url": image, "detail": "low"} in parts


def test_unsupported_fields_are_400_naming_the_param(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="gpt-5", messages=MESSAGES, n=2)
    assert info.value.param == "n"
    assert not gateway.simulator.responses_requests


def test_keepalive_comments_during_upstream_silence(simulator: object, tmp_path: object) -> None:
    from pathlib import Path

    from codexgate.testing import UpstreamSimulator
    from tests.conftest import start_gateway

    assert isinstance(simulator, UpstreamSimulator) and isinstance(tmp_path, Path)
    _settings, served_context = start_gateway(simulator, tmp_path / "home", keepalive_interval=0.04)
    simulator.enqueue(Scenario("text", text="slow words here", event_delay=0.15))
    with served_context as served:
        response = httpx.post(
            served.base_url + "/v1/chat/completions",
            json={"model": "gpt-5", "messages": MESSAGES, "stream": True},
            timeout=30,
        )
    lines = response.text.splitlines()
    data_at = [i for i, line in enumerate(lines) if line.startswith("data: ")]
    comments_at = [i for i, line in enumerate(lines) if line.startswith(":")]
    assert all(lines[i] == ": keep-alive" for i in comments_at)
    # a comment went out in a silence between two events (not only before the first or after the last)
    assert any(data_at[0] < i < data_at[-1] for i in comments_at), "no SSE comment during the silences"
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in lines
        if line.startswith("data: {") and '"choices":[{' in line
    )
    assert text == "slow words here"
    assert response.text.endswith("\n\ndata: [DONE]\n\n") and response.text.count("data: [DONE]") == 1
