"""The Responses Lite shape: to_lite() field by field, idempotence, and is_lite_request()."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from codexgate.protocol.chat_to_responses import map_chat_request
from codexgate.protocol.lite_shape import (
    ADDITIONAL_TOOLS,
    ENCRYPTED_REASONING,
    LITE_HEADER,
    has_additional_tools,
    is_lite_request,
    to_lite,
)

AT_ID = "at_test_1"


def function_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "description": f"does {name}", "parameters": {"type": "object"}}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def full_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5.6-sol",
        "instructions": "Answer briefly.",
        "input": [user("hi")],
        "tools": [function_tool("get_weather"), function_tool("get_time")],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "high", "summary": "auto"},
        "store": False,
        "stream": True,
        "prompt_cache_key": "pck",
    }
    body.update(fields)
    return body


def cli_lite_body() -> dict[str, Any]:
    """A body shaped the way protocol.md §6 records the Codex CLI's Lite request (no prompt text)."""
    return {
        "model": "gpt-5.6-sol",
        "input": [
            {
                "type": "additional_tools",
                "id": "at_cli",
                "role": "developer",
                "tools": [
                    {"type": "namespace", "name": "functions", "description": "d", "tools": [function_tool("x")]},
                    {"type": "web_search"},
                ],
            },
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "p1"}]},
            user("hello"),
            {"type": "compaction_trigger"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "context": "all_turns"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc",
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "i"},
    }


def test_tools_move_to_the_additional_tools_item() -> None:
    lite = to_lite(full_body(), additional_tools_id=AT_ID)
    assert "tools" not in lite
    first = lite["input"][0]
    assert first["type"] == "additional_tools"
    assert first["id"] == AT_ID
    assert first["role"] == "developer"
    [namespace] = first["tools"]
    assert namespace["type"] == "namespace"
    assert namespace["name"] == "functions"
    assert isinstance(namespace["description"], str) and namespace["description"]
    assert namespace["tools"] == [function_tool("get_weather"), function_tool("get_time")]


def test_non_function_tools_sit_beside_the_namespace() -> None:
    custom = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}
    body = full_body(tools=[{"type": "web_search"}, function_tool("f"), custom])
    first = to_lite(body, additional_tools_id=AT_ID)["input"][0]
    assert [tool["type"] for tool in first["tools"]] == ["namespace", "web_search", "custom"]
    assert first["tools"][0]["tools"] == [function_tool("f")]
    only_search = to_lite(full_body(tools=[{"type": "web_search"}]), additional_tools_id=AT_ID)
    assert only_search["input"][0]["tools"] == [{"type": "web_search"}]


def test_instructions_become_a_developer_message_after_the_tools() -> None:
    lite = to_lite(full_body(), additional_tools_id=AT_ID)
    assert "instructions" not in lite
    assert [item.get("type") for item in lite["input"]] == ["additional_tools", "message", "message"]
    developer = lite["input"][1]
    assert developer == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Answer briefly."}],
    }
    assert lite["input"][2] == user("hi")


def test_blank_instructions_are_dropped() -> None:
    lite = to_lite(full_body(instructions="  "), additional_tools_id=AT_ID)
    assert "instructions" not in lite
    assert [item["type"] for item in lite["input"]] == ["additional_tools", "message"]
    assert lite["input"][1] == user("hi")


def test_reasoning_parallel_verbosity_include_and_tool_choice() -> None:
    lite = to_lite(full_body(), additional_tools_id=AT_ID)
    assert lite["reasoning"] == {"effort": "high", "context": "all_turns"}
    assert lite["parallel_tool_calls"] is False
    assert lite["text"] == {"verbosity": "low"}
    assert lite["include"] == [ENCRYPTED_REASONING]
    assert lite["tool_choice"] == "auto"
    for key in ("model", "store", "stream", "prompt_cache_key"):
        assert lite[key] == full_body()[key]


def test_effort_default_and_client_verbosity_and_includes_kept() -> None:
    body = full_body(
        reasoning={"summary": "detailed", "generate_summary": "auto"},
        text={"verbosity": "high"},
        include=["message.output_text.logprobs", ENCRYPTED_REASONING],
    )
    lite = to_lite(body, additional_tools_id=AT_ID, default_effort="medium")
    assert lite["reasoning"] == {"effort": "medium", "context": "all_turns"}
    assert lite["text"] == {"verbosity": "high"}
    assert lite["include"] == ["message.output_text.logprobs", ENCRYPTED_REASONING]
    no_effort = to_lite(full_body(reasoning=None), additional_tools_id=AT_ID)
    assert no_effort["reasoning"] == {"context": "all_turns"}


def test_named_function_tool_choice_is_kept() -> None:
    choice = {"type": "function", "name": "get_time"}
    lite = to_lite(full_body(tool_choice=choice), additional_tools_id=AT_ID)
    assert lite["tool_choice"] == choice
    missing = full_body()
    del missing["tool_choice"]
    assert to_lite(missing, additional_tools_id=AT_ID)["tool_choice"] == "auto"
    assert to_lite(full_body(tool_choice="required"), additional_tools_id=AT_ID)["tool_choice"] == "required"


def test_structured_output_keeps_text_format() -> None:
    schema = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}
    lite = to_lite(full_body(text={"format": schema}), additional_tools_id=AT_ID)
    assert lite["text"] == {"format": schema, "verbosity": "low"}


def test_a_body_without_tools() -> None:
    body = full_body()
    del body["tools"]
    lite = to_lite(body, additional_tools_id=AT_ID)
    assert not has_additional_tools(lite)
    assert "tools" not in lite
    assert lite["input"] == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer briefly."}]},
        user("hi"),
    ]
    assert lite["parallel_tool_calls"] is False


def test_string_input_and_missing_input() -> None:
    lite = to_lite(full_body(input="hello", instructions=None), additional_tools_id=AT_ID)
    assert lite["input"][1:] == [user("hello")]
    assert to_lite({"model": "m"}, additional_tools_id=AT_ID)["input"] == []


def test_the_original_body_is_not_changed() -> None:
    body = full_body(text={"verbosity": "medium"})
    before = copy.deepcopy(body)
    to_lite(body, additional_tools_id=AT_ID)
    assert body == before


def test_a_lite_body_from_the_cli_is_left_unchanged() -> None:
    body = cli_lite_body()
    assert to_lite(body, additional_tools_id="at_other") == body
    # even a Lite body that differs from what to_lite would make is passed through as it is
    odd = cli_lite_body() | {"parallel_tool_calls": True, "reasoning": {"effort": "max"}}
    assert to_lite(odd, additional_tools_id=AT_ID) == odd


def test_chat_mapper_output_to_lite() -> None:
    mapped = map_chat_request(
        {
            "model": "gpt-5.6-sol-max",
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "parallel_tool_calls": True,
            "reasoning_effort": "high",
        }
    )
    lite = to_lite(mapped.body, additional_tools_id=AT_ID)
    assert lite["input"][0]["tools"][0]["tools"][0]["name"] == "lookup"
    assert lite["input"][1]["role"] == "developer"
    assert lite["input"][1]["content"][0]["text"] == "Be terse."
    assert lite["parallel_tool_calls"] is False  # the client's explicit true is forced off
    assert lite["tool_choice"] == {"type": "function", "name": "lookup"}
    assert lite["reasoning"] == {"effort": "high", "context": "all_turns"}


tool_lists = st.lists(
    st.one_of(
        st.builds(function_tool, st.text(min_size=1, max_size=5)),
        st.just({"type": "web_search"}),
        st.just({"type": "custom", "name": "c"}),
    ),
    max_size=4,
)
optional_text = st.one_of(st.none(), st.text(max_size=5))


@given(
    tools=st.one_of(st.none(), tool_lists),
    instructions=optional_text,
    effort=st.one_of(st.none(), st.sampled_from(["low", "max"])),
    summary=st.one_of(st.none(), st.just("auto")),
    verbosity=st.one_of(st.none(), st.sampled_from(["low", "high"])),
    parallel=st.one_of(st.none(), st.booleans()),
)
def test_to_lite_is_idempotent_and_has_the_lite_shape(
    tools: list[dict[str, Any]] | None,
    instructions: str | None,
    effort: str | None,
    summary: str | None,
    verbosity: str | None,
    parallel: bool | None,
) -> None:
    body: dict[str, Any] = {"model": "gpt-5.6-sol", "input": [user("q")]}
    optional = {
        "tools": tools,
        "instructions": instructions,
        "parallel_tool_calls": parallel,
        "reasoning": {"effort": effort, "summary": summary},
        "text": {"verbosity": verbosity} if verbosity else None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    once = to_lite(body, additional_tools_id=AT_ID)
    assert to_lite(once, additional_tools_id="at_again") == once
    assert "tools" not in once and "instructions" not in once
    assert once["parallel_tool_calls"] is False
    assert "summary" not in once["reasoning"] and once["reasoning"]["context"] == "all_turns"
    assert once["reasoning"].get("effort") == effort
    assert once["text"]["verbosity"] == (verbosity or "low")
    assert ENCRYPTED_REASONING in once["include"]
    assert has_additional_tools(once) == bool(tools)
    assert once["input"][-1] == user("q")
    moved = [tool for item in once["input"] if item.get("type") == ADDITIONAL_TOOLS for tool in item["tools"]]
    flat = [inner for tool in moved for inner in (tool["tools"] if tool["type"] == "namespace" else [tool])]
    assert sorted(map(repr, flat)) == sorted(map(repr, tools or []))


def test_is_lite_request() -> None:
    assert LITE_HEADER == "x-openai-internal-codex-responses-lite"
    plain = full_body()
    assert not is_lite_request(plain, {})
    assert is_lite_request(plain, {LITE_HEADER: "true"})
    assert is_lite_request(plain, {"X-OpenAI-Internal-Codex-Responses-Lite": " True "})
    assert not is_lite_request(plain, {LITE_HEADER: "false"})
    assert is_lite_request(cli_lite_body(), {})
    assert is_lite_request(to_lite(plain, additional_tools_id=AT_ID), {})
    assert not is_lite_request({"input": "text"}, {"accept": "text/event-stream"})
