"""``/v1/messages`` end to end: the ``anthropic`` Python SDK → gateway → simulator, all over HTTP."""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, ToolParam

from codexgate.protocol.anthropic_signature import sign
from codexgate.server.app import create_app
from codexgate.storage.api_keys import KeyStore
from codexgate.testing import Scenario, UpstreamSimulator
from tests.conftest import Gateway, start_gateway
from tests.helpers import serve_in_thread, settings_for, write_auth_json

TOP_MODEL = "gpt-5.1-codex-max"  # the simulator catalog's highest-priority model
USER: list[MessageParam] = [{"role": "user", "content": "Say hello"}]
ENCRYPTED = "gAAAAB-simulated-reasoning-1"
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"upstream_retries": 0}


@pytest.fixture
def gateway(simulator: UpstreamSimulator, tmp_path: Path, overrides: dict[str, Any]) -> Iterator[Gateway]:
    settings, served_context = start_gateway(simulator, tmp_path / "home", **overrides)
    with served_context as served:
        yield Gateway(served.base_url, simulator, settings, tmp_path / "home", served.server.config.app)


def client_of(gateway: Gateway, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.base_url, api_key=kwargs.pop("api_key", "sk-anything"), max_retries=0, **kwargs
    )


def responses_bodies(gateway: Gateway) -> list[dict[str, Any]]:
    return [r.json for r in gateway.simulator.requests if r.path.endswith("/responses")]


def last_body(gateway: Gateway) -> dict[str, Any]:
    bodies = responses_bodies(gateway)
    assert bodies, "the simulator received no /responses request"
    return bodies[-1]


def png(width: int, height: int) -> str:
    """A real (tiny, grey) PNG, base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return base64.b64encode(data).decode()


# ---- text --------------------------------------------------------------------------------------


def test_create_text_names_the_requested_model_and_maps_it(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="Hello there, friend."))
    raw = client_of(gateway).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100, system="Be brief.", messages=USER
    )
    message = raw.parse()
    assert raw.headers["request-id"] == raw.headers["x-request-id"] and raw.headers["request-id"].startswith("req_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-5"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello there, friend."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.cache_creation_input_tokens == 0
    body = last_body(gateway)
    assert body["model"] == TOP_MODEL and body["reasoning"]["effort"] == "medium"
    assert body["instructions"] == "Be brief."
    assert "max_output_tokens" not in body and "max_tokens" not in body


def test_stream_text_event_by_event(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="one two three four", cached_tokens=5))
    with client_of(gateway).messages.stream(model="claude-opus-4-1", max_tokens=100, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "one two three four" and len(pieces) == 4
    assert final.model == "claude-opus-4-1" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.cache_read_input_tokens == 5
    assert last_body(gateway)["reasoning"]["effort"] == "high"


def test_mid_conversation_system_message_becomes_a_developer_message(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="ok"))
    messages: Any = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "noted"},
        {"role": "system", "content": [{"type": "text", "text": "From now on answer in French."}]},
        {"role": "user", "content": "second"},
    ]
    message = client_of(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=messages)
    assert message.content[0].text == "ok"  # type: ignore[union-attr]
    roles = [item.get("role") for item in last_body(gateway)["input"]]
    assert roles == ["user", "assistant", "developer", "user"]


def test_direct_codex_model_and_the_mapping_setting(gateway: Gateway) -> None:
    client = client_of(gateway)
    gateway.simulator.enqueue(Scenario("text", text="a"), Scenario("text", text="b"))
    client.messages.create(model="gpt-5-low", max_tokens=10, messages=USER)
    body = last_body(gateway)
    assert body["model"] == "gpt-5" and body["reasoning"]["effort"] == "low"
    client.messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=USER)
    body = last_body(gateway)
    assert body["model"] == TOP_MODEL and body["reasoning"]["effort"] == "low"


@pytest.mark.parametrize(
    "overrides", [{"upstream_retries": 0, "anthropic_models": {"claude-*haiku*": "gpt-5-minimal"}}]
)
def test_the_anthropic_models_setting_wins_and_is_listed(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="a"))
    client = client_of(gateway)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    assert message.model == "claude-haiku-4-5"
    body = last_body(gateway)
    assert body["model"] == "gpt-5" and body["reasoning"]["effort"] == "minimal"


@pytest.mark.parametrize("overrides", [{"anthropic_models": {"claude-test-1": "gpt-5-high", "claude-*": "gpt-5"}}])
def test_models_list_in_anthropic_shape(gateway: Gateway) -> None:
    page = client_of(gateway).models.list()
    ids = [model.id for model in page.data]
    assert ids[0] == TOP_MODEL and "gpt-5" in ids and "claude-test-1" in ids and "claude-*" not in ids
    assert all(model.type == "model" and model.display_name for model in page.data)
    openai_style = httpx.get(gateway.base_url + "/v1/models").json()
    assert openai_style["object"] == "list" and "claude-test-1" not in [m["id"] for m in openai_style["data"]]


def test_session_header_keys_the_upstream_session_and_cache(gateway: Gateway) -> None:
    client = client_of(gateway)
    gateway.simulator.enqueue(Scenario("text", text="a"), Scenario("text", text="b"))
    client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=10,
        messages=USER,
        extra_headers={"X-Claude-Code-Session-Id": "0d9c9d4e-session-a"},
        metadata={"user_id": json.dumps({"session_id": "from-metadata"})},
    )
    first = gateway.simulator.requests[-1]
    assert (
        first.headers["session-id"] == "0d9c9d4e-session-a" and first.json["prompt_cache_key"] == "0d9c9d4e-session-a"
    )
    client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=10,
        messages=USER,
        metadata={"user_id": json.dumps({"session_id": "from-metadata"})},
    )
    second = gateway.simulator.requests[-1]
    assert second.headers["session-id"] == "from-metadata" and second.json["prompt_cache_key"] == "from-metadata"


# ---- tools ---------------------------------------------------------------------------------------


def test_tool_loop_stream_then_create(gateway: Gateway) -> None:
    client = client_of(gateway)
    gateway.simulator.enqueue(Scenario("tool_calls", calls=[("get_weather", {"city": "Paris"})]))
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=USER, tools=[WEATHER_TOOL]
    ) as stream:  # type: ignore[list-item]
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    uses = [block for block in first.content if block.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == {"city": "Paris"}
    tools = last_body(gateway)["tools"]
    assert tools[0]["type"] == "function" and tools[0]["name"] == "get_weather"

    gateway.simulator.enqueue(Scenario("text", text="Sunny, 18C."))
    follow_up: Any = [
        *USER,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "18C, sunny"}]},
    ]
    second = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=follow_up, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert second.content[0].text == "Sunny, 18C." and second.stop_reason == "end_turn"  # type: ignore[union-attr]
    items = last_body(gateway)["input"]
    calls = [item for item in items if item.get("type") == "function_call"]
    outputs = [item for item in items if item.get("type") == "function_call_output"]
    assert [c["call_id"] for c in calls] == [o["call_id"] for o in outputs] == [uses[0].id]
    assert outputs[0]["output"] == "18C, sunny" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}


def test_prompt_driven_tool_round_echoes_the_tool_output(gateway: Gateway) -> None:
    """The simulator's ``tool=`` knob, as the Claude Code test drives it, without Claude Code."""
    client = client_of(gateway)
    prompt = 'Run it. scenario:tool_calls tool=get_weather args={"city": "Oslo 42"}'
    first = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=[{"role": "user", "content": prompt}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    use = next(block for block in first.content if block.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Oslo 42"}
    follow_up: Any = [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": [use.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "nonce-77"}]},
    ]
    second = client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=follow_up, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert second.stop_reason == "end_turn" and "nonce-77" in second.content[0].text  # type: ignore[union-attr]


# ---- thinking ------------------------------------------------------------------------------------


def _thinking_turn(gateway: Gateway, **kwargs: Any) -> anthropic.types.Message:
    gateway.simulator.enqueue(Scenario("reasoning", text="42", encrypted_content=ENCRYPTED))
    # a Codex model named directly: no effort from a mapping, so the request's thinking decides it
    return client_of(gateway).messages.create(model="gpt-5", max_tokens=100, messages=USER, **kwargs)


def test_thinking_on_is_signed_and_continues_next_turn(gateway: Gateway) -> None:
    first = _thinking_turn(gateway, thinking={"type": "enabled", "budget_tokens": 2048})
    assert [block.type for block in first.content] == ["thinking", "text"]
    thinking = first.content[0]
    assert thinking.thinking and thinking.signature.startswith("cgs1_")  # type: ignore[union-attr]
    sent = last_body(gateway)
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert "reasoning.encrypted_content" in sent["include"]

    gateway.simulator.enqueue(Scenario("text", text="again"))
    follow_up: Any = [
        *USER,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": "and then?"},
    ]
    client_of(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=follow_up)
    reasoning = [item for item in last_body(gateway)["input"] if item.get("type") == "reasoning"]
    assert len(reasoning) == 1 and reasoning[0]["encrypted_content"] == ENCRYPTED
    key_file = gateway.home / "thinking.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32


def test_foreign_signatures_are_dropped_without_error(gateway: Gateway) -> None:
    _thinking_turn(gateway)  # makes the key
    key = (gateway.home / "thinking.key").read_bytes()
    foreign = [
        "EqQBCkYIBRgCKkB-looks-like-anthropic",
        sign("gAAAA-other", account="some-other-account", key=key),  # our key, another account
        sign("gAAAA-other", account="x", key=b"another gateway's key, 32 bytes."),
    ]
    for signature in foreign:
        gateway.simulator.enqueue(Scenario("text", text="fine"))
        history: Any = [
            *USER,
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": signature}]},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "opaque"}]},
            {"role": "user", "content": "go on"},
        ]
        answer = client_of(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=history)
        assert answer.content[0].text == "fine"  # type: ignore[union-attr]
        assert not [item for item in last_body(gateway)["input"] if item.get("type") == "reasoning"]


def test_thinking_off_sends_the_lowest_effort_and_no_summary(gateway: Gateway) -> None:
    message = _thinking_turn(gateway, thinking={"type": "disabled"})
    assert [block.type for block in message.content] == ["text"]
    assert last_body(gateway)["reasoning"] == {"effort": "minimal"}  # gpt-5's lowest level


def test_stream_thinking_omitted_keeps_the_signature(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("reasoning", text="42", encrypted_content=ENCRYPTED))
    with client_of(gateway).messages.stream(
        model="claude-opus-4-1",
        max_tokens=100,
        messages=USER,
        thinking={"type": "adaptive", "display": "omitted"},  # type: ignore[typeddict-item,typeddict-unknown-key]
    ) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "" and thinking.signature.startswith("cgs1_")


# ---- images and counting -------------------------------------------------------------------------


def test_image_goes_upstream_as_input_image(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="a grey square"))
    image = png(4, 4)
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
        {"type": "text", "text": "What is this?"},
    ]
    message = client_of(gateway).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": content}]
    )
    assert message.content[0].text == "a grey square"  # type: ignore[union-attr]
    parts = last_body(gateway)["input"][0]["content"]
    assert parts[0]["type"] == "input_image" and parts[0]["image_url"] == f"data:image/png;base64,{image}"


def test_count_tokens_locally(gateway: Gateway) -> None:
    client = client_of(gateway)
    short = client.messages.count_tokens(model="claude-sonnet-4-5", messages=USER)
    longer = client.messages.count_tokens(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Say hello " * 50}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert 0 < short.input_tokens < longer.input_tokens
    assert not responses_bodies(gateway)
    bad = httpx.post(gateway.base_url + "/v1/messages/count_tokens", json={"model": "m", "messages": "no"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


# ---- errors ----------------------------------------------------------------------------------------


def test_bad_input_is_a_400_naming_the_field_and_nothing_goes_upstream(gateway: Gateway) -> None:
    client = client_of(gateway)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}]}],
        )
    assert "tool_use_id" in str(caught.value.body)
    for body, field in (
        ({"model": "claude-x", "messages": USER}, "max_tokens"),
        ({"model": "claude-x", "max_tokens": 5}, "messages"),
        ({"model": "claude-x", "max_tokens": "5", "messages": USER}, "max_tokens"),
    ):
        answer = httpx.post(gateway.base_url + "/v1/messages?beta=true", json=body)
        assert answer.status_code == 400 and answer.headers["request-id"]
        assert answer.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": answer.json()["error"]["message"]},
        }
        assert field in answer.json()["error"]["message"]
    broken = httpx.post(
        gateway.base_url + "/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["type"] == "error"
    assert not responses_bodies(gateway)


def test_upstream_errors_map_to_the_sdk_classes(gateway: Gateway) -> None:
    client = client_of(gateway)
    cases: list[tuple[str, type[anthropic.APIStatusError], int]] = [
        ("http_429_usage_limit", anthropic.RateLimitError, 429),
        ("http_500", anthropic.OverloadedError, 529),
        ("http_503", anthropic.OverloadedError, 529),
        ("http_404", anthropic.NotFoundError, 404),
        ("http_400", anthropic.BadRequestError, 400),
        ("context_length_exceeded", anthropic.BadRequestError, 400),
    ]
    for scenario, error_class, status in cases:
        gateway.simulator.enqueue(Scenario(scenario))
        with pytest.raises(error_class) as caught:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=USER)
        error = caught.value
        assert error.status_code == status, scenario
        assert isinstance(error.body, dict) and error.body["type"] == "error"
        assert error.response.headers["request-id"]
        if scenario == "http_429_usage_limit":
            assert int(error.response.headers["retry-after"]) > 60
            assert error.response.headers["x-should-retry"] == "false"
            assert error.body["error"]["type"] == "rate_limit_error"
        if scenario == "context_length_exceeded":
            assert error.body["error"]["message"].startswith("prompt is too long")


def test_a_failure_after_the_stream_started_is_an_error_event(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("context_length_exceeded"))
    with (
        httpx.stream(
            "POST",
            gateway.base_url + "/v1/messages",
            json={"model": "claude-x", "max_tokens": 5, "messages": USER, "stream": True},
        ) as answer,
    ):
        text = answer.read().decode()
    assert answer.status_code == 200
    assert "event: error" in text and "prompt is too long" in text and "message_stop" not in text


@pytest.mark.parametrize("overrides", [{"upstream_retries": 0, "keepalive_interval": 0.05}])
def test_silence_sends_ping_events(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="slow answer here", event_delay=0.2))
    events: list[str] = []
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/messages",
        json={"model": "claude-x", "max_tokens": 5, "messages": USER, "stream": True},
    ) as answer:
        for line in answer.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    assert "ping" in events and ": keep-alive" not in events
    assert events[-1] == "message_stop" and "message_start" in events


def test_keys_by_x_api_key_or_bearer(gateway: Gateway) -> None:
    key = KeyStore(gateway.settings.keys_file).create("claude")
    gateway.simulator.enqueue(Scenario("text", text="a"), Scenario("text", text="b"))
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client_of(gateway, api_key="wrong").messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert client_of(gateway, api_key=key).messages.create(model="claude-x", max_tokens=5, messages=USER).content
    bearer = client_of(gateway, api_key=None, auth_token=key)  # Authorization: Bearer
    assert bearer.messages.create(model="claude-x", max_tokens=5, messages=USER).content
    too_few = httpx.post(gateway.base_url + "/v1/messages/count_tokens", json={"messages": USER})
    assert too_few.status_code == 401 and too_few.json()["type"] == "error"
    # the other way in (FastAPI's routes) takes x-api-key as well
    listed = httpx.get(gateway.base_url + "/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    assert listed.status_code == 200 and listed.json()["data"]
    assert httpx.get(gateway.base_url + "/v1/models", headers={"x-api-key": "nope"}).status_code == 401


def test_not_signed_in_is_a_401_telling_to_log_in(gateway: Gateway) -> None:
    (gateway.home / "auth.json").unlink()
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client_of(gateway).messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert "codexgate login" in caught.value.body["error"]["message"]  # type: ignore[index]
    assert not responses_bodies(gateway)


@pytest.mark.parametrize("overrides", [{"upstream_retries": 0, "max_body_size": 2000}])
def test_body_limit_is_a_413_in_anthropic_shape(gateway: Gateway) -> None:
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        client_of(gateway).messages.create(
            model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "x" * 5000}]
        )
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_unreachable_backend_is_an_api_error(tmp_path: Path) -> None:
    write_auth_json(tmp_path)
    settings = settings_for(tmp_path, "http://127.0.0.1:9/codex", upstream_retries=0)
    with serve_in_thread(create_app(settings)) as served, pytest.raises(anthropic.InternalServerError) as caught:
        client = anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=0)
        client.messages.create(model="gpt-5", max_tokens=5, messages=USER)
    assert caught.value.status_code == 500 and caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


# ---- Responses Lite ------------------------------------------------------------------------------


def test_lite_models_get_no_instructions_and_no_summary(gateway: Gateway) -> None:
    lite = dict(gateway.simulator.models[0], slug="gpt-lite-test", priority=0, use_responses_lite=True)
    gateway.simulator.models.insert(0, lite)
    gateway.simulator.enqueue(Scenario("text", text="lite"))
    client_of(gateway).messages.create(
        model="claude-opus-4-1",
        max_tokens=5,
        system="Rules here.",
        messages=USER,
        thinking={"type": "enabled", "budget_tokens": 20000},
    )
    body = last_body(gateway)
    assert body["model"] == "gpt-lite-test" and "instructions" not in body and "tools" not in body
    developer = [
        item for item in body["input"] if item.get("role") == "developer" and item.get("type") != "additional_tools"
    ]
    assert developer[0]["content"][0]["text"] == "Rules here."
    assert body["reasoning"] == {"effort": "high", "context": "all_turns"}  # the Lite shape: no summary
    assert body["parallel_tool_calls"] is False


def test_an_image_in_a_tool_result_follows_as_a_user_image(gateway: Gateway) -> None:
    """The backend takes text tool outputs only; the simulator (which checks bodies) accepts this form."""
    gateway.simulator.enqueue(Scenario("text", text="I see it"))
    image = png(2, 2)
    history: Any = [
        *USER,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "text", "text": "screenshot taken"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
                    ],
                }
            ],
        },
    ]
    message = client_of(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=history)
    assert message.content[0].text == "I see it"  # type: ignore[union-attr]
    items = last_body(gateway)["input"]
    kinds = [item.get("type") for item in items]
    output_at = kinds.index("function_call_output")
    assert items[output_at]["output"].startswith("screenshot taken")
    follower = items[output_at + 1]
    assert follower["role"] == "user"
    images = [part for part in follower["content"] if part["type"] == "input_image"]
    assert images and images[0]["image_url"] == f"data:image/png;base64,{image}"


def test_the_first_delta_goes_out_when_the_first_upstream_delta_arrives(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="one two three four five six seven eight", event_delay=0.15))
    started = time.monotonic()
    arrivals: dict[str, float] = {}
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/messages",
        json={"model": "claude-x", "max_tokens": 5, "messages": USER, "stream": True},
    ) as answer:
        for line in answer.iter_lines():
            if line.startswith("event: "):
                arrivals.setdefault(line.removeprefix("event: "), time.monotonic() - started)
    # about 14 upstream events 0.15 s apart: the first text delta must not wait for the rest
    assert arrivals["content_block_delta"] < arrivals["message_stop"] - 0.8
