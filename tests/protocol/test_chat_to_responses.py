"""Chat Completions request → Responses request: every mapped field and every 400."""

from __future__ import annotations

from typing import Any

import pytest

from codexgate.errors import APIError
from codexgate.protocol.catalog_rules import ModelRules
from codexgate.protocol.chat_to_responses import map_chat_request, split_model_effort

USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}


def mapped(**fields: Any) -> dict[str, Any]:
    body = {"model": "gpt-5", "messages": [USER], **fields}
    return map_chat_request(body).body


def rejects(param: str, **fields: Any) -> APIError:
    body = {"model": "gpt-5", "messages": [USER], **fields}
    with pytest.raises(APIError) as info:
        map_chat_request(body)
    assert info.value.status_code == 400 and info.value.type == "invalid_request_error"
    assert info.value.param == param, info.value.message
    return info.value


def test_minimal_request() -> None:
    result = map_chat_request({"model": "gpt-5", "messages": [USER]})
    assert result.body == {
        "model": "gpt-5",
        "instructions": None,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "stream": False,
    }
    assert (result.requested_model, result.upstream_model, result.stream, result.include_usage) == (
        "gpt-5",
        "gpt-5",
        False,
        False,
    )
    assert result.reasoning_format is None


def test_leading_system_and_developer_become_instructions_later_ones_developer_messages() -> None:
    body = mapped(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "French."}]},
            USER,
            {"role": "system", "content": "Now be verbose."},
        ]
    )
    assert body["instructions"] == "Be brief.\n\nUse French."
    assert body["input"][1] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Now be verbose."}],
    }
    assert all(item.get("role") != "system" for item in body["input"])


def test_user_parts() -> None:
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/img.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_id": "file_1"}},
    ]
    parts = mapped(messages=[{"role": "user", "content": content, "name": "bob"}])["input"][0]["content"]
    assert parts == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "https://x/img.png", "detail": "high"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "auto"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
        {"type": "input_file", "file_id": "file_1"},
    ]


def test_assistant_history_tool_calls_and_outputs() -> None:
    messages = [
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "one"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "done"}], "id": "msg_x"},
    ]
    items = mapped(messages=messages)["input"][1:]
    assert items == [
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'},
        {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": '{"b":2}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "one"},
        {"type": "function_call_output", "call_id": "call_2", "output": "two"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
    ]


def test_assistant_text_and_refusal() -> None:
    items = mapped(
        messages=[
            USER,
            {"role": "assistant", "content": "yes", "refusal": None},
            {"role": "assistant", "content": None, "refusal": "no"},
        ]
    )["input"]
    assert items[1]["content"] == [{"type": "output_text", "text": "yes"}]
    assert items[2]["content"] == [{"type": "refusal", "refusal": "no"}]


def test_legacy_functions_and_function_role() -> None:
    body = mapped(
        messages=[
            USER,
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "result"},
        ],
        functions=[{"name": "f", "parameters": {"type": "object"}}],
        function_call={"name": "f"},
    )
    call, output = body["input"][1:]
    assert call["type"] == "function_call" and call["name"] == "f"
    assert output == {"type": "function_call_output", "call_id": call["call_id"], "output": "result"}
    assert body["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["parallel_tool_calls"] is False  # the legacy answer holds one call
    assert mapped(function_call="auto")["tool_choice"] == "auto"
    functions = [{"name": "f", "parameters": {"type": "object"}}]
    assert map_chat_request({"model": "gpt-5", "messages": [USER], "functions": functions}).legacy_functions
    with_tools = {"model": "gpt-5", "messages": [USER], "functions": functions, "tools": [TOOL]}
    assert not map_chat_request(with_tools).legacy_functions


def test_tools_flattened_and_others_pass_through() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
        },
        {"type": "custom", "custom": {"name": "sql", "format": {"type": "text"}}},
        {"type": "web_search"},
    ]
    assert mapped(tools=tools)["tools"] == [
        {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
        {"type": "custom", "name": "sql", "format": {"type": "text"}},
        {"type": "web_search"},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", "none"),
        ("auto", "auto"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "f"}}, {"type": "function", "name": "f"}),
        ({"type": "function", "name": "f"}, {"type": "function", "name": "f"}),
        ({"type": "custom", "custom": {"name": "sql"}}, {"type": "custom", "name": "sql"}),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "f"}}]},
            },
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
        ),
    ],
)
def test_tool_choice_forms(choice: Any, expected: Any) -> None:
    assert mapped(tool_choice=choice)["tool_choice"] == expected


def test_response_format_verbosity_and_parallel_calls() -> None:
    assert mapped(response_format={"type": "text"})["text"] == {"format": {"type": "text"}}
    assert mapped(response_format={"type": "json_object"}, verbosity="low")["text"] == {
        "format": {"type": "json_object"},
        "verbosity": "low",
    }
    schema = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    assert mapped(response_format=schema)["text"] == {
        "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
    }
    assert mapped(parallel_tool_calls=False)["parallel_tool_calls"] is False


def test_effort_suffix_and_explicit_effort() -> None:
    result = map_chat_request({"model": "gpt-5-high", "messages": [USER]})
    assert (result.requested_model, result.upstream_model, result.body["model"]) == ("gpt-5-high", "gpt-5", "gpt-5")
    assert result.body["reasoning"] == {"effort": "high"}
    result = map_chat_request({"model": "gpt-5.1-codex-xhigh", "messages": [USER], "reasoning_effort": "low"})
    assert result.upstream_model == "gpt-5.1-codex" and result.body["reasoning"] == {"effort": "low"}
    assert split_model_effort("my-model") == ("my-model", None)
    assert split_model_effort("high") == ("high", None)
    assert split_model_effort("o3-minimal") == ("o3", "minimal")
    assert mapped(reasoning={"effort": "medium", "summary": "detailed"})["reasoning"] == {
        "effort": "medium",
        "summary": "detailed",
    }


def test_tokens_stream_options_user_cache_key() -> None:
    assert mapped(max_tokens=10)["max_output_tokens"] == 10
    assert mapped(max_tokens=10, max_completion_tokens=20)["max_output_tokens"] == 20
    result = map_chat_request(
        {"model": "m", "messages": [USER], "stream": True, "stream_options": {"include_usage": True}}
    )
    assert result.stream and result.include_usage and result.body["stream"] is True
    assert not map_chat_request(
        {"model": "m", "messages": [USER], "stream_options": {"include_usage": True}}
    ).include_usage
    body = mapped(user="u1", prompt_cache_key="k")
    assert (body["user"], body["prompt_cache_key"]) == ("u1", "k")


def test_reasoning_format_field() -> None:
    assert map_chat_request({"model": "m", "messages": [USER], "reasoning_format": "think"}).reasoning_format == "think"
    rejects("reasoning_format", reasoning_format="loud")


def test_dropped_fields_are_ignored_and_reported() -> None:
    result = map_chat_request(
        {
            "model": "m",
            "messages": [USER],
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 1,
            "frequency_penalty": 1,
            "presence_penalty": 1,
            "stop": ["x"],
            "logit_bias": {"1": 2},
            "logprobs": False,
            "top_logprobs": 2,
            "n": 1,
            "metadata": {"a": "b"},
            "store": True,
            "service_tier": "auto",
            "some_future_field": {"x": 1},
        }
    )
    assert set(result.body) == {"model", "instructions", "input", "stream"}
    assert "temperature" in result.dropped and "n" in result.dropped


def test_web_search_options_become_a_tool() -> None:
    assert mapped(web_search_options={"search_context_size": "low"})["tools"] == [
        {"type": "web_search", "search_context_size": "low"}
    ]


@pytest.mark.parametrize(
    ("param", "fields"),
    [
        ("n", {"n": 2}),
        ("logprobs", {"logprobs": True}),
        ("audio", {"audio": {"voice": "x"}}),
        ("modalities", {"modalities": ["text", "audio"]}),
        ("messages", {"messages": []}),
        ("messages", {"messages": "hi"}),
        ("messages[0]", {"messages": ["hi"]}),
        ("messages[0].role", {"messages": [{"role": "robot", "content": "x"}]}),
        ("messages[0].content", {"messages": [{"role": "user", "content": 5}]}),
        (
            "messages[0].content[0]",
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        ),
        ("messages[0].content[0]", {"messages": [{"role": "user", "content": [{"type": "video"}]}]}),
        (
            "messages[0].content[0].image_url",
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        ),
        ("messages[0].content[0].file", {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]}),
        ("messages[0].content[0]", {"messages": [{"role": "system", "content": [{"type": "image_url"}]}]}),
        ("messages[1].tool_call_id", {"messages": [USER, {"role": "tool", "content": "x"}]}),
        ("messages[1].tool_call_id", {"messages": [USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
        ("messages[1].name", {"messages": [USER, {"role": "function", "name": "f", "content": "x"}]}),
        (
            "messages[1].tool_calls[0].function.name",
            {"messages": [USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]},
        ),
        (
            "messages[1].tool_calls[0].id",
            {"messages": [USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
        ),
        ("model", {"model": ""}),
        ("stream", {"stream": "yes"}),
        ("tools", {"tools": {}}),
        ("tools[0].function.name", {"tools": [{"type": "function", "function": {}}]}),
        ("tool_choice", {"tool_choice": "sometimes"}),
        ("tool_choice", {"tool_choice": {"type": "function"}}),
        ("response_format.type", {"response_format": {"type": "yaml"}}),
        ("response_format.json_schema", {"response_format": {"type": "json_schema"}}),
        (
            "response_format.json_schema.name",
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        ),
        ("verbosity", {"verbosity": "loud"}),
        ("reasoning_effort", {"reasoning_effort": "Extreme effort!"}),
        ("reasoning_effort", {"reasoning_effort": 3}),
        ("max_tokens", {"max_tokens": 0}),
        ("max_completion_tokens", {"max_completion_tokens": "10"}),
        ("parallel_tool_calls", {"parallel_tool_calls": "yes"}),
        ("function_call", {"function_call": 3}),
    ],
)
def test_invalid_requests_name_the_param(param: str, fields: dict[str, Any]) -> None:
    rejects(param, **fields)


def test_body_that_is_not_an_object() -> None:
    with pytest.raises(APIError) as info:
        map_chat_request([])  # type: ignore[arg-type]
    assert info.value.status_code == 400


# --- efforts and models resolved by the catalog's rules ---------------------------------------

_CATALOG = ModelRules.from_catalog_json(
    [
        {"slug": "gpt-5.6-sol", "use_responses_lite": True, "supported_reasoning_levels": ["low", "high", "max"]},
        {"slug": "gpt-5.1-codex-max", "supported_reasoning_levels": ["low", "medium"]},
        {"slug": "gpt-5.1-codex", "supported_reasoning_levels": ["low", "medium", "high"]},
    ]
)


def test_catalog_levels_work_as_suffix_and_reasoning_effort() -> None:
    mapped = map_chat_request({"model": "gpt-5.6-sol-max", "messages": [USER]}, _CATALOG)
    assert mapped.body["model"] == "gpt-5.6-sol" and mapped.body["reasoning"]["effort"] == "max"
    mapped = map_chat_request({"model": "gpt-5.6-sol", "messages": [USER], "reasoning_effort": "max"}, _CATALOG)
    assert mapped.body["reasoning"] == {"effort": "max"} and mapped.resolved is not None
    assert mapped.resolved.entry is not None and mapped.resolved.entry.use_responses_lite


def test_an_exact_slug_wins_over_suffix_parsing() -> None:
    mapped = map_chat_request({"model": "gpt-5.1-codex-max", "messages": [USER]}, _CATALOG)
    assert mapped.body["model"] == "gpt-5.1-codex-max" and "reasoning" not in mapped.body


def test_a_level_the_model_does_not_list_is_a_400_naming_its_levels() -> None:
    with pytest.raises(APIError) as info:
        map_chat_request({"model": "gpt-5.6-sol", "messages": [USER], "reasoning_effort": "medium"}, _CATALOG)
    assert info.value.status_code == 400 and info.value.param == "reasoning_effort"
    assert "low, high, max" in info.value.message
    with pytest.raises(APIError) as info:
        map_chat_request({"model": "gpt-5.1-codex-ultra", "messages": [USER]}, _CATALOG)
    assert info.value.status_code == 400 and info.value.param == "model"


def test_without_a_catalog_new_levels_are_passed_on() -> None:
    mapped = map_chat_request({"model": "gpt-9", "messages": [USER], "reasoning_effort": "ultra"})
    assert mapped.body["reasoning"] == {"effort": "ultra"} and mapped.body["model"] == "gpt-9"
