"""Catalog-driven shaping end to end (served gateway + simulator): Responses Lite through chat and the
Responses passthrough, catalog efforts and aliases, unknown and gated models, compaction, and the
on-demand catalog refresh."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageFunctionToolCall

from codexgate.cli.models_cmd import request_refresh
from codexgate.protocol.lite_shape import LITE_HEADER
from codexgate.testing import Scenario, ToolCall
from codexgate.testing.models_catalog import GATED_MODEL, LITE_MODEL, LITE_ONLY_MODEL
from tests.conftest import Gateway

WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _assert_lite_shape(body: dict[str, Any]) -> None:
    assert "tools" not in body and "instructions" not in body
    assert body["parallel_tool_calls"] is False
    assert body["reasoning"]["context"] == "all_turns" and "summary" not in body["reasoning"]
    assert isinstance(body["text"]["verbosity"], str)
    assert "reasoning.encrypted_content" in body["include"]


def test_a_chat_tool_loop_on_a_lite_model(gateway: Gateway) -> None:
    simulator = gateway.simulator
    simulator.enqueue(Scenario("tool_calls", calls=[ToolCall("get_weather", {"city": "Paris"})]))
    simulator.enqueue(Scenario("text", text="Sunny in Paris."))
    client = gateway.client()
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    first = client.chat.completions.create(model=LITE_MODEL, messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert first.model == LITE_MODEL and first.usage is not None and first.usage.total_tokens > 0

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sun"},
    ]
    second = client.chat.completions.create(model=LITE_MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny in Paris."

    for request in simulator.responses_requests:
        assert request.headers[LITE_HEADER] == "true"
        body = request.json
        _assert_lite_shape(body)
        tools_item = body["input"][0]
        assert tools_item["type"] == "additional_tools" and tools_item["id"].startswith("at_")
        namespace = tools_item["tools"][0]
        assert namespace["type"] == "namespace" and namespace["name"] == "functions"
        assert [tool["name"] for tool in namespace["tools"]] == ["get_weather"]
        assert body["input"][1]["role"] == "developer"  # the system prompt
    later = simulator.responses_requests[1].json["input"]
    assert [item.get("type") for item in later][-2:] == ["function_call", "function_call_output"]


def test_structured_output_and_streaming_on_a_lite_only_model(gateway: Gateway) -> None:
    client = gateway.client()
    schema: dict[str, object] = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    answer = client.chat.completions.create(
        model=LITE_ONLY_MODEL,
        messages=[{"role": "user", "content": "a city"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert "city" in json.loads(answer.choices[0].message.content or "{}")
    stream = client.chat.completions.create(
        model=LITE_ONLY_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    body = gateway.simulator.responses_requests[0].json
    _assert_lite_shape(body)
    assert body["text"]["format"]["type"] == "json_schema"


def test_a_codex_lite_request_passes_unchanged_in_shape(gateway: Gateway) -> None:
    items = [
        {
            "type": "additional_tools",
            "id": "at_client1",
            "role": "developer",
            "tools": [{"type": "namespace", "name": "functions", "description": "d", "tools": []}],
        },
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "prompt"}]},
        {"type": "compaction", "encrypted_content": "cmp_old"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "compaction_trigger"},
    ]
    body = {
        "model": LITE_MODEL,
        "input": items,
        "stream": True,
        "store": False,
        "parallel_tool_calls": False,
        "reasoning": {"effort": "max", "context": "all_turns"},
        "text": {"verbosity": "low"},
        "include": ["reasoning.encrypted_content"],
        "client_metadata": {"x-codex-installation-id": "inst-1", "turn_id": "t1"},
    }
    headers = {
        "originator": "codex_exec",
        LITE_HEADER: "true",
        "x-codex-beta-features": "remote_compaction_v2",
        "session-id": "sess-1",
        "thread-id": "thread-1",
        "x-codex-window-id": "thread-1:0",
        "x-codex-turn-metadata": '{"turn_id":"t1"}',
        "x-codex-turn-state": "state-1",
        "x-client-request-id": "creq-1",
    }
    response = httpx.post(gateway.base_url + "/v1/responses", json=body, headers=headers, timeout=10)
    assert response.status_code == 200 and "response.completed" in response.text
    sent = gateway.simulator.responses_requests[-1]
    assert sent.json["input"] == items  # additional_tools keeps its id; compaction items untouched
    assert "instructions" not in sent.json and "summary" not in sent.json["reasoning"]
    assert sent.json["reasoning"]["effort"] == "max"
    assert sent.json["client_metadata"] == body["client_metadata"]
    for name, value in headers.items():
        if name != "originator":
            assert sent.headers[name] == value, name

    too_long = {**headers, "x-codex-turn-state": "s" * 5000}
    refused = httpx.post(gateway.base_url + "/v1/responses", json=body, headers=too_long, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "x-codex-turn-state"


def test_a_full_shape_responses_request_for_a_lite_model_is_reshaped(gateway: Gateway) -> None:
    client = gateway.client()
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    result = client.responses.create(model=LITE_ONLY_MODEL, input="hi", instructions="Be brief.", tools=[tool])  # type: ignore[list-item]
    assert result.status == "completed"
    sent = gateway.simulator.responses_requests[-1]
    assert sent.headers[LITE_HEADER] == "true"
    _assert_lite_shape(sent.json)
    assert sent.json["input"][0]["type"] == "additional_tools"
    assert sent.json["input"][1] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Be brief."}],
    }


def test_catalog_efforts_aliases_and_errors(gateway: Gateway) -> None:
    client = gateway.client()
    ids = {model.id for model in client.models.list()}
    assert {f"{LITE_MODEL}-max", f"{LITE_ONLY_MODEL}-ultra", "gpt-5-minimal", "gpt-5.1-codex-max"} <= ids
    assert "gpt-5.1-codex-max-max" not in ids

    client.chat.completions.create(model=f"{LITE_MODEL}-max", messages=[{"role": "user", "content": "x"}])
    sent = gateway.simulator.responses_requests[-1].json
    assert sent["model"] == LITE_MODEL and sent["reasoning"]["effort"] == "max"
    client.chat.completions.create(
        model=LITE_ONLY_MODEL,
        messages=[{"role": "user", "content": "x"}],
        reasoning_effort="ultra",  # type: ignore[call-overload]  # the SDK does not know the newer levels yet
    )
    assert gateway.simulator.responses_requests[-1].json["reasoning"]["effort"] == "ultra"

    with pytest.raises(openai.BadRequestError) as bad_effort:
        client.chat.completions.create(
            model=LITE_MODEL,
            messages=[{"role": "user", "content": "x"}],
            reasoning_effort="ultra",  # type: ignore[call-overload]  # the SDK does not know the newer levels yet
        )
    assert "low, medium, high, xhigh, max" in str(bad_effort.value)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert unknown.value.code == "model_not_found" and "gpt-5" in str(unknown.value)
    with pytest.raises(openai.BadRequestError) as gated:
        client.responses.create(model=GATED_MODEL, input="x")
    assert gated.value.code == "client_version_too_old" and "client_version" in str(gated.value)
    count = len(gateway.simulator.responses_requests)
    assert all(r.json["model"] != "gpt-nope" for r in gateway.simulator.responses_requests[:count])


def test_the_backends_newer_version_answer_names_the_setting(gateway: Gateway) -> None:
    gateway.simulator.enqueue(
        Scenario("http_400", body={"detail": "The 'gpt-5' model requires a newer version of Codex. Please upgrade."})
    )
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "client_version_too_old" and "`client_version`" in str(info.value)


def test_compaction_items_survive_the_non_stream_aggregation(gateway: Gateway) -> None:
    compaction = {"type": "compaction", "id": "cmp_1", "encrypted_content": "opaque"}
    response = {"id": "resp_c", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-5"}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": compaction},
        {"type": "response.output_item.done", "output_index": 0, "item": compaction},
        {"type": "response.completed", "response": {**response, "status": "completed", "output": [compaction]}},
    ]
    gateway.simulator.enqueue(Scenario("replay", events=events))
    answer = httpx.post(
        gateway.base_url + "/v1/responses",
        json={"model": "gpt-5", "input": [{"type": "compaction_trigger"}], "stream": False},
        headers={"x-codex-beta-features": "remote_compaction_v2"},
        timeout=10,
    ).json()
    assert answer["output"] == [compaction]
    sent = gateway.simulator.responses_requests[-1]
    assert sent.json["input"] == [{"type": "compaction_trigger"}]
    assert sent.headers["x-codex-beta-features"] == "remote_compaction_v2"


def test_responses_compact_is_passed_through(gateway: Gateway) -> None:
    for path in ("/v1/responses/compact", "/responses/compact"):
        answer = httpx.post(
            gateway.base_url + path,
            json={"model": "gpt-5-high", "input": "a long conversation", "store": False, "stream": True},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.json()["output"][0]["type"] == "compaction"
        sent = gateway.simulator.requests[-1]
        assert sent.path.endswith("/responses/compact") and sent.headers["authorization"].startswith("Bearer ")
        assert "store" not in sent.json and "stream" not in sent.json
        assert sent.json["model"] == "gpt-5" and sent.json["reasoning"] == {"effort": "high"}
    missing = httpx.post(
        gateway.base_url + "/v1/responses/compact", json={"model": "gpt-nope", "input": []}, timeout=10
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_models_refresh_picks_up_a_new_model_within_a_second(gateway: Gateway) -> None:
    client = gateway.client()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-7-new", messages=[{"role": "user", "content": "x"}])
    gateway.simulator.models.append({"slug": "gpt-7-new", "supported_reasoning_levels": [{"effort": "ultra"}]})
    started = time.monotonic()
    report = request_refresh(gateway.home, timeout=10)
    assert report is not None and report["ok"] is True and report["models"] == len(gateway.simulator.models)
    assert time.monotonic() - started < 5  # acts within a quarter second; wide margin for a loaded machine
    client.chat.completions.create(model="gpt-7-new-ultra", messages=[{"role": "user", "content": "x"}])
    sent = gateway.simulator.responses_requests[-1].json
    assert sent["model"] == "gpt-7-new" and sent["reasoning"]["effort"] == "ultra"


def test_the_models_refresh_command(gateway: Gateway) -> None:
    from typer.testing import CliRunner

    from codexgate.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(gateway.home), "models", "refresh", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["models"] == len(gateway.simulator.models)
    lonely = runner.invoke(app, ["--home", str(gateway.home / "elsewhere"), "models", "refresh", "--timeout", "0.5"])
    assert lonely.exit_code != 0 and "No running codexgate server" in lonely.output


def test_a_backend_answer_naming_an_unknown_model_makes_the_catalog_read_again(gateway: Gateway) -> None:
    client = gateway.client()
    client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    fetched = len(gateway.simulator.models_requests)
    gateway.simulator.enqueue(Scenario("http_404", body={"detail": "Model gpt-5 not found"}))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    assert len(gateway.simulator.models_requests) == fetched + 1
