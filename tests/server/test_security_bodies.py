"""Issue 20 items 5 and 7: bodies that used to be 500s (or to reach labels, logs and headers unbounded)
are 400s naming the field; a little fuzzing over body shapes on both answer endpoints never gets a 500.
In-process, through the real app; the upstream is a closed port, so a body that passes every check is
answered 502 ``upstream_unreachable``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from codexgate.server.body import MAX_DEPTH, too_deep_at
from tests.server.conftest import client_for, in_process_gateway

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
MESSAGES = [{"role": "user", "content": "hi"}]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-5", "messages": MESSAGES, **fields}


def _responses(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-5", "input": "hi", **fields}


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (RESPONSES, _responses(reasoning="high"), "reasoning"),
        (RESPONSES, _responses(reasoning=["effort"]), "reasoning"),
        (RESPONSES, _responses(include="reasoning.encrypted_content"), "include"),
        (RESPONSES, _responses(include=[1]), "include[0]"),
        (RESPONSES, _responses(stream="true"), "stream"),
        (RESPONSES, _responses(stream=1), "stream"),
        (CHAT, _chat(stream="yes"), "stream"),
        (CHAT, _chat(model="m" * 257), "model"),
        (RESPONSES, _responses(model="m" * 5000), "model"),
        (CHAT, _chat(model="gpt-5\r\nINFO forged line"), "model"),
        (RESPONSES, _responses(model="gpt-5\x1b[31m"), "model"),
        (CHAT, _chat(user="u" * 257), "user"),
        (RESPONSES, _responses(safety_identifier="s" * 1000), "safety_identifier"),
        (CHAT, _chat(prompt_cache_key="k" * 257), "prompt_cache_key"),
        (RESPONSES, _responses(prompt_cache_key="a\x01b"), "prompt_cache_key"),
        (RESPONSES, _responses(prompt_cache_key="caf\u00e9"), "prompt_cache_key"),
        (CHAT, _chat(metadata={"k" * 65: "v"}), "metadata"),
        (RESPONSES, _responses(metadata={"k": "v" * 513}), "metadata.k"),
        (RESPONSES, _responses(metadata={f"k{i}": "v" for i in range(17)}), "metadata"),
        (CHAT, _chat(extra=_nested(MAX_DEPTH + 5)), "extra"),
        (RESPONSES, _responses(tools=[{"type": "function", "parameters": _nested(300)}]), "tools[0].parameters"),
    ],
)
async def test_bad_bodies_are_400s_naming_the_field(tmp_path: Path, path: str, body: Any, param: str) -> None:
    raw = _dumps_deep(body)
    async with in_process_gateway(tmp_path / "home") as (app, _), client_for(app) as client:
        response = await client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] is not None and error["param"].startswith(param), error
        assert len(response.content) < 4096  # nothing huge is echoed back


def _dumps_deep(body: Any) -> bytes:
    """orjson writes 255 levels at most: deeper test bodies are written by the standard library."""
    import json

    return json.dumps(body).encode()


async def test_limits_are_inclusive_and_good_values_pass(tmp_path: Path) -> None:
    bodies = [
        (CHAT, _chat(model="m" * 256, user="u" * 256, prompt_cache_key="k" * 256)),
        (RESPONSES, _responses(reasoning={"effort": "low"}, include=["reasoning.encrypted_content"], stream=False)),
        (RESPONSES, _responses(metadata={f"k{i}": "v" * 512 for i in range(16)})),
        (CHAT, _chat(extra=_nested(MAX_DEPTH - 2))),
    ]
    async with in_process_gateway(tmp_path / "home") as (app, _), client_for(app) as client:
        for path, body in bodies:
            response = await client.post(path, content=_dumps_deep(body))
            assert response.status_code == 502, response.text  # past every check: the closed upstream
            assert response.json()["error"]["code"] == "upstream_unreachable"


@pytest.mark.parametrize("value", [b"caf\xc3\xa9", b"a\x01b", b"x" * 300])
async def test_session_headers_that_cannot_go_upstream_are_400s(tmp_path: Path, value: bytes) -> None:
    async with in_process_gateway(tmp_path / "home") as (app, _), client_for(app) as client:
        for path, body in ((CHAT, _chat()), (RESPONSES, _responses())):
            for name in ("session_id", "session-id"):
                response = await client.post(path, content=orjson.dumps(body), headers=[(name.encode(), value)])
                assert response.status_code == 400, response.text
                assert response.json()["error"]["param"] == name
        good = await client.post(CHAT, content=orjson.dumps(_chat()), headers={"session_id": "conv-123 abc"})
        assert good.status_code == 502


def test_the_depth_walk_names_the_place() -> None:
    assert too_deep_at({"a": [1, {"b": 2}]}) is None
    assert too_deep_at({"a": {"b": {"c": 1}}}, limit=2) == "a.b"
    assert too_deep_at([[[1]]], limit=2) == "[0][0]"


async def test_client_model_names_do_not_become_metric_labels(tmp_path: Path) -> None:
    """Labels: catalog models by name, anything else ``other`` (once the catalog is known)."""
    overrides: dict[str, Any] = {"models": ["gpt-5"]}
    async with in_process_gateway(tmp_path / "home", **overrides) as (app, _), client_for(app) as client:
        app.state.gateway.models._cached = [{"id": "gpt-5"}]  # a catalog as the backend listed it
        for index in range(50):
            await client.post(CHAT, content=orjson.dumps(_chat(model=f"attacker-{index}-" + "x" * 200)))
        await client.post(CHAT, content=orjson.dumps(_chat()))
        text = (await client.get("/metrics")).text
    models = {
        sample.labels["model"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "codexgate_requests_total"
    }
    assert models <= {"gpt-5", "other", ""} and "other" in models and "gpt-5" in models


# ---- fuzz: never a 500 ----------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False), st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_field_names = st.sampled_from(
    [
        "model",
        "messages",
        "input",
        "instructions",
        "stream",
        "tools",
        "tool_choice",
        "reasoning",
        "include",
        "stream_options",
        "n",
        "user",
        "metadata",
        "prompt_cache_key",
        "previous_response_id",
        "response_format",
        "text",
        "max_tokens",
        "functions",
        "reasoning_effort",
        "parallel_tool_calls",
    ]
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "x"]), "content": _json}
)
_bodies = st.one_of(
    _json,
    st.dictionaries(_field_names, _json, max_size=6),
    st.builds(
        lambda extra, messages: {"model": "gpt-5", "messages": messages, **extra},
        st.dictionaries(_field_names, _json, max_size=4),
        st.lists(_message, min_size=1, max_size=3),
    ),
    st.builds(
        lambda extra, items: {"model": "gpt-5", "input": items, **extra},
        st.dictionaries(_field_names, _json, max_size=4),
        st.lists(st.dictionaries(st.sampled_from(["type", "role", "content", "call_id"]), _json), max_size=3),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, path=st.sampled_from([CHAT, RESPONSES]))
async def test_fuzzed_bodies_never_get_a_500(tmp_path: Path, body: Any, path: str) -> None:
    async with in_process_gateway(tmp_path / "fuzz", upstream_retries=0) as (app, _), client_for(app) as client:
        response = await client.post(path, content=orjson.dumps(body))
    assert response.status_code < 500 or response.json()["error"]["code"] == "upstream_unreachable", response.text
    assert "error" in response.json()
