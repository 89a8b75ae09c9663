"""Backend shaping, error mapping, session keys and the model catalog (pure parts of upstream/)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from codexgate.errors import APIError
from codexgate.upstream.errors import map_http_error
from codexgate.upstream.models import ModelCatalog, model_objects
from codexgate.upstream.session import conversation_key, session_and_cache_key
from codexgate.upstream.shaping import shape_for_codex


def _shape(body: dict[str, Any], summary: str = "auto") -> Any:
    return shape_for_codex(body, default_instructions=lambda model: f"default for {model}", reasoning_summary=summary)


def test_shaping_sets_what_the_backend_requires_and_strips_what_it_rejects() -> None:
    body: dict[str, Any] = {
        "model": "gpt-5",
        "input": [
            {"id": "msg_1", "type": "message", "role": "system", "content": [{"type": "input_text", "text": "s"}]},
            {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        ],
        "store": True,
        "stream": False,
        "temperature": 0.2,
        "top_p": 1,
        "max_output_tokens": 10,
        "metadata": {"a": "b"},
        "service_tier": "auto",
        "user": "u",
        "include": ["message.output_text.logprobs"],
        "client_metadata": {"kept": True},
        "tools": [{"type": "namespace", "name": "x"}],
    }
    shaped = _shape(body)
    out = shaped.body
    assert out["store"] is False and out["stream"] is True
    assert out["instructions"] == "default for gpt-5"
    assert "reasoning.encrypted_content" in out["include"] and "message.output_text.logprobs" in out["include"]
    assert out["reasoning"] == {"summary": "auto"}
    for name in ("temperature", "top_p", "max_output_tokens", "metadata", "service_tier", "user"):
        assert name not in out
    assert set(shaped.dropped) >= {"temperature", "top_p", "max_output_tokens", "metadata", "service_tier", "user"}
    assert all("id" not in item for item in out["input"])
    assert out["input"][0]["role"] == "developer"
    assert out["client_metadata"] == {"kept": True} and out["tools"] == [{"type": "namespace", "name": "x"}]
    assert body["store"] is True and "id" in body["input"][0]  # the input is not mutated


def test_client_instructions_and_reasoning_choices_are_kept() -> None:
    out = _shape(
        {"model": "m", "input": "hi", "instructions": "mine", "reasoning": {"effort": "low", "summary": "detailed"}}
    ).body
    assert out["instructions"] == "mine"
    assert out["reasoning"] == {"effort": "low", "summary": "detailed"}
    assert out["input"][0]["content"][0] == {"type": "input_text", "text": "hi"}
    assert "summary" not in _shape({"model": "m", "input": []}, summary="none").body.get("reasoning", {})


def test_usage_limit_429_has_retry_after_and_reset_time() -> None:
    body = (
        b'{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached",'
        b'"plan_type":"plus","resets_at":%d,"resets_in_seconds":5400}}' % int(time.time() + 5400)
    )
    error = map_http_error(429, body, {})
    assert error.status_code == 429
    assert error.headers["retry-after"] == "5400"
    assert "1 h 30 min" in error.message and "plus" in error.message
    assert error.code == "usage_limit_reached"
    # OpenAI's envelope, plus what the Codex CLI reads to say when the limit resets
    inner = error.envelope()["error"]
    assert list(inner)[:4] == ["message", "type", "param", "code"]
    assert inner["type"] == "usage_limit_reached" and inner["plan_type"] == "plus"
    assert inner["resets_in_seconds"] == 5400 and abs(inner["resets_at"] - (time.time() + 5400)) < 5


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "needle"),
    [
        (400, b'{"detail": "Instructions are not valid"}', 400, "Instructions are not valid"),
        (401, b'{"detail": "token expired"}', 401, "codexgate login"),
        (404, b'{"detail": "not found"}', 404, "not found"),
        (500, b"oops", 502, "HTTP 500"),
        (503, b"", 502, "HTTP 503"),
        (429, b'{"error": {"message": "slow down"}}', 429, "slow down"),
    ],
)
def test_http_error_mapping(status: int, body: bytes, expected_status: int, needle: str) -> None:
    error = map_http_error(status, body, {})
    assert error.status_code == expected_status
    assert needle in error.message
    assert set(error.envelope()["error"]) == {"message", "type", "param", "code"}


def test_session_and_cache_key() -> None:
    body = {"model": "gpt-5", "instructions": "x", "input": [{"role": "user", "content": "first"}]}
    later_turn = {**body, "input": [*body["input"], {"role": "assistant", "content": "a"}]}
    assert conversation_key(body) == conversation_key(later_turn)
    assert conversation_key(body) != conversation_key({**body, "input": [{"role": "user", "content": "other"}]})
    assert session_and_cache_key({**body, "prompt_cache_key": "k"}, {}) == ("k", "k")
    assert session_and_cache_key(body, {"session_id": "s"}) == ("s", "s")
    assert session_and_cache_key(body, {"session-id": "s2"})[0] == "s2"
    derived = session_and_cache_key(body, {})
    assert derived[0] == derived[1] == conversation_key(body)


ENTRIES: list[Mapping[str, Any]] = [
    {
        "slug": "gpt-5",
        "visibility": "list",
        "priority": 1,
        "supported_reasoning_levels": [{"effort": "low"}, {"effort": "high"}],
    },
    {"slug": "hidden-model", "visibility": "hide"},
    {"slug": "gpt-5-codex", "priority": 0, "supported_reasoning_levels": [{"effort": "medium"}], "extra": 1},
]


def test_model_objects_have_aliases_and_skip_hidden() -> None:
    ids = [model["id"] for model in model_objects(ENTRIES, 1)]
    assert ids == ["gpt-5-codex", "gpt-5-codex-medium", "gpt-5", "gpt-5-low", "gpt-5-high"]
    assert all(model["object"] == "model" for model in model_objects(ENTRIES, 1))


async def test_catalog_caches_and_falls_back() -> None:
    calls = 0

    async def fetch() -> list[Mapping[str, Any]]:
        nonlocal calls
        calls += 1
        return ENTRIES

    catalog = ModelCatalog(fetch, ttl=60, fallback=[])
    await catalog.models()
    await catalog.models()
    assert calls == 1
    assert (await catalog.get("gpt-5-high"))["id"] == "gpt-5-high"
    with pytest.raises(APIError) as info:
        await catalog.get("nope")
    assert info.value.status_code == 404 and info.value.param == "model"

    async def failing() -> list[Mapping[str, Any]]:
        raise APIError(502, "down")

    assert [m["id"] for m in await ModelCatalog(failing, ttl=60, fallback=["a", "b"]).models()] == ["a", "b"]
    with pytest.raises(APIError) as info:
        await ModelCatalog(failing, ttl=60, fallback=[]).models()
    assert info.value.status_code == 502
