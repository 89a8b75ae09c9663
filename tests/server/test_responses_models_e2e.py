"""``/v1/responses`` and ``/v1/models`` through the openai SDK, against the simulator."""

from __future__ import annotations

import httpx
import openai
import pytest

from codexgate.testing import Scenario
from tests.conftest import Gateway


def test_responses_non_stream(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="Plain answer."))
    response = gateway.client().responses.create(model="gpt-5", input="Hello", instructions="Be terse.")
    assert response.output_text == "Plain answer."
    assert response.model == "gpt-5"
    assert response.usage is not None and response.usage.output_tokens > 0
    body = gateway.simulator.responses_requests[-1].json
    assert body["instructions"] == "Be terse." and body["store"] is False and body["stream"] is True


def test_responses_stream_passes_events_through_with_the_alias_model(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("reasoning", text="streamed answer"))
    events = list(gateway.client().responses.create(model="gpt-5-low", input="Hello", stream=True))
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in types
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "streamed answer"
    completed = events[-1]
    assert completed.response.model == "gpt-5-low"  # type: ignore[union-attr]
    sent = gateway.simulator.responses_requests[-1].json
    assert sent["model"] == "gpt-5" and sent["reasoning"]["effort"] == "low"


def test_responses_pass_unknown_tools_items_and_fields(gateway: Gateway) -> None:
    body = {
        "model": "gpt-5",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-opaque"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        "tools": [
            {"type": "custom", "name": "apply_patch", "description": "freeform"},
            {"type": "namespace", "name": "ns", "tools": []},
        ],
        "client_metadata": {"x": "y"},
        "stream": True,
    }
    response = httpx.post(gateway.base_url + "/v1/responses", json=body, timeout=10)
    assert response.status_code == 200
    sent = gateway.simulator.responses_requests[-1].json
    assert sent["tools"] == body["tools"]
    assert sent["client_metadata"] == {"x": "y"}
    assert {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-opaque"} in sent["input"]
    assert isinstance(sent["instructions"], str) and sent["instructions"]


def test_previous_response_id_is_refused(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().responses.create(model="gpt-5", input="x", previous_response_id="resp_1")
    assert info.value.param == "previous_response_id"  # type: ignore[attr-defined]
    assert not gateway.simulator.responses_requests


def test_models_list_has_backend_models_and_aliases(gateway: Gateway) -> None:
    client = gateway.client()
    ids = [model.id for model in client.models.list()]
    slugs = [m["slug"] for m in gateway.simulator.models if m.get("visibility", "list") == "list"]
    assert slugs and all(slug in ids for slug in slugs)
    first = next(m for m in gateway.simulator.models if m["slug"] in ids)
    for level in first.get("supported_reasoning_levels", []):
        assert f"{first['slug']}-{level['effort']}" in ids
    assert client.models.retrieve(first["slug"]).id == first["slug"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    query = gateway.simulator.models_requests[-1].query
    assert query["client_version"] == gateway.settings.upstream.client_version


def test_models_list_without_backend_is_502_or_the_configured_list(simulator: object, tmp_path: object) -> None:
    from pathlib import Path

    from codexgate.testing import UpstreamSimulator
    from tests.conftest import start_gateway

    assert isinstance(simulator, UpstreamSimulator) and isinstance(tmp_path, Path)
    simulator.models_status = 500
    _settings, served_context = start_gateway(simulator, tmp_path / "a")
    with served_context as served:
        client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.models.list()
        assert info.value.status_code == 502
    _settings, served_context = start_gateway(simulator, tmp_path / "b", models=["gpt-5", "gpt-5-codex"])
    with served_context as served:
        client = openai.OpenAI(base_url=served.base_url + "/v1", api_key="x", max_retries=0)
        assert [m.id for m in client.models.list()] == ["gpt-5", "gpt-5-codex"]


async def test_async_client_stream(gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="async works"))
    client = gateway.async_client()
    stream = await client.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = ""
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert text == "async works"
    await client.close()


def test_codex_rate_limit_events_reach_only_the_codex_cli(gateway: Gateway) -> None:
    body = {"model": "gpt-5", "input": "hi", "stream": True}
    plain = httpx.post(gateway.base_url + "/v1/responses", json=body, timeout=10).text
    codex = httpx.post(
        gateway.base_url + "/v1/responses", json=body, headers={"originator": "codex_exec"}, timeout=10
    ).text
    assert "codex.rate_limits" not in plain and "response.completed" in plain
    assert "event: codex.rate_limits" in codex


def test_models_with_client_version_also_carry_the_backend_entries(gateway: Gateway) -> None:
    document = httpx.get(gateway.base_url + "/v1/models", params={"client_version": "0.169.0"}, timeout=10).json()
    assert document["object"] == "list" and document["data"]
    assert [entry["slug"] for entry in document["models"]] == [entry["slug"] for entry in gateway.simulator.models]
    assert "models" not in httpx.get(gateway.base_url + "/v1/models", timeout=10).json()


def test_a_usage_limit_tells_a_codex_client_when_it_resets(gateway: Gateway) -> None:
    """The Codex CLI shows its usage-limit message from ``error.type`` and the reset fields."""
    gateway.simulator.enqueue(Scenario("http_429_usage_limit", resets_in_seconds=600))
    response = httpx.post(
        gateway.base_url + "/v1/responses",
        json={"model": "gpt-5", "input": "hi", "stream": True},
        headers={"originator": "codex_exec", "authorization": "Bearer x"},
        timeout=10,
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "600"
    assert response.headers["x-codex-primary-used-percent"]  # the backend's windows come along
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["type"] == error["code"] == "usage_limit_reached"
    assert error["plan_type"] == "plus" and error["resets_in_seconds"] == 600 and error["resets_at"] > 0
    with pytest.raises(openai.RateLimitError):  # and an OpenAI client sees the usual 429
        gateway.simulator.enqueue(Scenario("http_429_usage_limit"))
        gateway.client().responses.create(model="gpt-5", input="hi")
