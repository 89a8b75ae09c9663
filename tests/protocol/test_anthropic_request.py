"""Messages request → Responses request: every mapping rule of issue 13 and every 400."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from codexgate.errors import APIError
from codexgate.protocol.anthropic_content import TOOL_ERROR_MARKER
from codexgate.protocol.anthropic_request import (
    MappedMessagesRequest,
    clamp_effort,
    effort_for_budget,
    map_messages_request,
    session_from_metadata,
)
from codexgate.protocol.anthropic_signature import sign, verify

KEY = b"r" * 32
PNG = "iVBORw0KGgo="


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(fields)
    return base


def mapped(request: dict[str, Any], **options: Any) -> MappedMessagesRequest:
    options.setdefault("target_model", "gpt-5")
    return map_messages_request(request, **options)


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def verifier(signature: str) -> Any:
    return verify(signature, key=KEY)


# -- body and top-level fields ---------------------------------------------------------------


def test_minimal_body() -> None:
    result = mapped(body())
    assert result.body == {
        "model": "gpt-5",
        "input": [user("hi")],
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
    }
    assert result.requested_model == "claude-sonnet-4-5" and result.upstream_model == "gpt-5"
    assert result.stream is False and result.max_tokens == 1024 and result.thinking_display == "summarized"
    assert result.session_id is None and result.accepted_not_sent == ["max_tokens"]


def test_the_input_body_is_not_modified() -> None:
    request = body(system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}])
    before = copy.deepcopy(request)
    mapped(request)
    assert request == before


def test_system_string_and_blocks_drop_the_billing_line() -> None:
    assert mapped(body(system="Be brief.")).body["instructions"] == "Be brief."
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: made-up=1"},
        {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Second block."},
    ]
    result = mapped(body(system=system))
    assert result.body["instructions"] == "You are a coding agent.\n\nSecond block."
    assert "billing" not in str(result.body)
    assert "instructions" not in mapped(body(system=system[:1])).body


def test_system_in_lite_is_a_developer_message_and_no_summary() -> None:
    result = mapped(body(system="Rules."), lite=True)
    assert "instructions" not in result.body
    assert result.body["input"][0] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Rules."}],
    }
    assert result.body["input"][1] == user("hi")
    assert "summary" not in result.body.get("reasoning", {})


def test_system_role_anywhere_becomes_developer_in_place() -> None:
    messages = [
        {"role": "system", "content": "first"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"role": "system", "content": [{"type": "text", "text": "mid"}, {"type": "text", "text": "turn"}]},
        {"role": "user", "content": "q2"},
    ]
    items = mapped(body(messages=messages)).body["input"]
    assert [item["role"] for item in items] == ["developer", "user", "assistant", "developer", "user"]
    assert items[3]["content"] == [{"type": "input_text", "text": "mid\n\nturn"}]
    assert items[2]["content"] == [{"type": "output_text", "text": "a"}]
    assert all(item["role"] != "system" for item in items)


def test_accepted_fields_are_not_sent() -> None:
    extra = {
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "metadata": {"user_id": "u"},
        "context_management": {"edits": []},
        "some_future_field": {"x": 1},
    }
    result = mapped(body(**extra))
    for key in extra:
        assert key not in result.body
    assert "max_output_tokens" not in result.body and "max_tokens" not in result.body
    assert set(result.accepted_not_sent) >= {"stop_sequences", "temperature", "top_p", "top_k", "metadata"}


def test_stream_flag() -> None:
    result = mapped(body(stream=True))
    assert result.stream is True and result.body["stream"] is True


# -- content blocks --------------------------------------------------------------------------


def test_user_blocks_text_image_document() -> None:
    content = [
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.test/a.pdf"}},
        {"type": "search_result_future_beta", "anything": 1},
    ]
    items = mapped(body(messages=[{"role": "user", "content": content}])).body["input"]
    assert items == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                {"type": "input_image", "image_url": "https://example.test/cat.jpg", "detail": "auto"},
                {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                {"type": "input_text", "text": "plain doc"},
                {"type": "input_file", "file_url": "https://example.test/a.pdf"},
            ],
        }
    ]


def _tool_turn(result_block: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {"role": "user", "content": [result_block, *(extra or [])]},
    ]


def test_tool_use_and_tool_result_string() -> None:
    messages = _tool_turn({"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"})
    items = mapped(body(messages=messages)).body["input"]
    assert items[1] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Running."}],
    }
    assert items[2] == {"type": "function_call", "call_id": "toolu_1", "name": "Bash", "arguments": '{"command":"ls"}'}
    assert items[3] == {"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt"}
    assert len(items) == 4


def test_tool_result_blocks_with_image_and_error_marker() -> None:
    result_block = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "is_error": True,
        "cache_control": {"type": "ephemeral"},
        "content": [
            {"type": "text", "text": "line 1"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "line 2"},
        ],
    }
    items = mapped(body(messages=_tool_turn(result_block, [{"type": "text", "text": "and now?"}]))).body["input"]
    output, images, after = items[3], items[4], items[5]
    assert output == {
        "type": "function_call_output",
        "call_id": "toolu_1",
        "output": TOOL_ERROR_MARKER + "line 1\nline 2",
    }
    assert images["role"] == "user" and "toolu_1" in images["content"][0]["text"]
    assert images["content"][1] == {
        "type": "input_image",
        "image_url": f"data:image/png;base64,{PNG}",
        "detail": "auto",
    }
    assert after == user("and now?")


def test_parallel_tool_results_stay_together_before_their_images() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "a", "name": "shot", "input": {}},
                {"type": "tool_use", "id": "b", "name": "shot", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "a",
                    "content": [{"type": "image", "source": {"type": "url", "url": "u1"}}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "b",
                    "content": [{"type": "image", "source": {"type": "url", "url": "u2"}}],
                },
            ],
        },
    ]
    items = mapped(body(messages=messages)).body["input"]
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]
    assert [i["output"] for i in items[3:5]] == ["", ""]
    urls = [p["image_url"] for p in items[5]["content"] if p["type"] == "input_image"]
    assert urls == ["u1", "u2"]


def test_thinking_with_valid_signature_becomes_the_reasoning_item() -> None:
    signature = sign("ENC123", account="acct", key=KEY, item_id="rs_1")
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should answer", "signature": signature},
                {"type": "text", "text": "answer"},
            ],
        },
        {"role": "user", "content": "more"},
    ]
    items = mapped(body(messages=messages), verify_thinking=verifier).body["input"]
    assert items[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "I should answer"}],
        "encrypted_content": "ENC123",
    }
    assert "id" not in items[1]
    assert items[2]["content"] == [{"type": "output_text", "text": "answer"}]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "thinking", "thinking": "x", "signature": "EqQBCkYIBxgCKkAnthropicOwnSignature=="},
        {"type": "thinking", "thinking": "x", "signature": sign("E", account="a", key=b"other-key" * 4)},
        {"type": "thinking", "thinking": "x"},
        {"type": "redacted_thinking", "data": "opaque"},
    ],
)
def test_foreign_thinking_and_redacted_thinking_are_dropped(block: dict[str, Any]) -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [block, {"type": "text", "text": "answer"}]},
    ]
    items = mapped(body(messages=messages), verify_thinking=verifier).body["input"]
    assert [item["type"] for item in items] == ["message", "message"]


def test_thinking_dropped_without_a_verifier() -> None:
    signature = sign("ENC", account="a", key=KEY)
    messages = [{"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": signature}]}]
    assert mapped(body(messages=messages)).body["input"] == []


def test_unknown_assistant_blocks_are_ignored() -> None:
    content = [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "found", "citations": []},
        {"type": "mystery_beta"},
    ]
    items = mapped(body(messages=[{"role": "assistant", "content": content}])).body["input"]
    assert items == [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "found"}]}]


# -- tools, choice, effort -------------------------------------------------------------------


def test_tools_and_web_search() -> None:
    tools = [
        {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}, "cache_control": {}},
        {"name": "Read", "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "bash_20250124", "name": "bash"},
    ]
    result = mapped(body(tools=tools))
    assert result.body["tools"] == [
        {
            "type": "function",
            "name": "Bash",
            "parameters": {"type": "object"},
            "strict": False,
            "description": "Run a command",
        },
        {
            "type": "function",
            "name": "Read",
            "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
            "strict": False,
        },
        {"type": "web_search"},
    ]
    assert result.web_search_tool == "web_search"


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", True),
        ({"type": "any"}, "required", True),
        ({"type": "none"}, "none", True),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "name": "Bash"}, True),
        ({"type": "tool", "name": "web_search"}, {"type": "web_search"}, True),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool) -> None:
    tools = [
        {"name": "Bash", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    result = mapped(body(tools=tools, tool_choice=choice))
    assert result.body["tool_choice"] == expected and result.body["parallel_tool_calls"] is parallel


@pytest.mark.parametrize(
    ("fields", "target_effort", "efforts", "expected", "summary"),
    [
        ({"output_config": {"effort": "medium"}}, "high", None, "high", True),  # the mapping target wins
        (
            {"output_config": {"effort": "low"}, "thinking": {"type": "enabled", "budget_tokens": 30000}},
            None,
            None,
            "low",
            True,
        ),
        ({"output_config": {"effort": "max"}}, None, None, "xhigh", True),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, None, None, "low", True),
        ({"thinking": {"type": "enabled", "budget_tokens": 10000}}, None, None, "medium", True),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, None, None, "high", True),
        ({"thinking": {"type": "enabled", "budget_tokens": 64000}}, None, ["low", "medium", "high"], "high", True),
        ({"thinking": {"type": "disabled"}}, None, ["minimal", "low", "medium", "high"], "minimal", False),
        ({"thinking": {"type": "disabled"}}, None, None, "low", False),
        ({"thinking": {"type": "adaptive", "display": "omitted"}}, None, None, None, True),
        ({}, None, None, None, True),
    ],
)
def test_effort_precedence(
    fields: dict[str, Any], target_effort: str | None, efforts: list[str] | None, expected: str | None, summary: bool
) -> None:
    result = mapped(body(**fields), target_effort=target_effort, model_efforts=efforts)
    reasoning = result.body.get("reasoning", {})
    assert reasoning.get("effort") == expected and result.reasoning_effort == expected
    assert ("summary" in reasoning) is summary


def test_thinking_display() -> None:
    assert mapped(body(thinking={"type": "adaptive", "display": "omitted"})).thinking_display == "omitted"
    assert mapped(body(thinking={"type": "enabled", "budget_tokens": 2048})).thinking_display == "summarized"
    assert mapped(body(thinking={"type": "disabled"})).thinking_display == "none"


def test_effort_helpers() -> None:
    assert [effort_for_budget(b) for b in (1024, 4096, 4097, 16384, 32768, 32769)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "xhigh",
    ]
    assert clamp_effort("xhigh", ["low", "medium", "high"]) == "high"
    assert clamp_effort("minimal", ["low", "high"]) == "low"
    assert clamp_effort("medium", ["low", "high"]) == "low"
    assert clamp_effort("medium", None) == "medium"


# -- session ---------------------------------------------------------------------------------


def test_session_from_header_then_metadata() -> None:
    json_user = '{"device_id":"d","account_uuid":"","session_id":"5e55-10n"}'
    result = mapped(body(metadata={"user_id": json_user}), session_header="hdr-1")
    assert result.session_id == "hdr-1" and result.session_source == "header"
    assert result.body["prompt_cache_key"] == "hdr-1"
    result = mapped(body(metadata={"user_id": json_user}))
    assert result.session_id == "5e55-10n" and result.session_source == "metadata"
    assert result.body["prompt_cache_key"] == "5e55-10n"
    legacy = "user_abc123_account_0000_session_1f2e3d4c-aaaa-bbbb-cccc-123456789abc"
    assert session_from_metadata({"user_id": legacy}) == "1f2e3d4c-aaaa-bbbb-cccc-123456789abc"
    assert session_from_metadata({"user_id": "plain-user"}) is None
    assert session_from_metadata({"user_id": "{not json"}) is None
    assert "prompt_cache_key" not in mapped(body()).body


# -- 400s ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "model": "claude-x"}, "max_tokens"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_tokens="100"), "max_tokens"),
        (body(max_tokens=True), "max_tokens"),
        ({"model": "claude-x", "max_tokens": 10}, "messages"),
        (body(messages="hi"), "messages"),
        (body(messages=[]), "messages"),
        (body(model=""), "model"),
        (body(model=5), "model"),
        (body(stream="yes"), "stream"),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user"}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]), "messages[0].content[0].text"),
        (body(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages[0].content[0]"),
        (
            body(
                messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]
            ),
            "messages[0].content[0].source.type",
        ),
        (
            body(
                messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]
            ),
            "messages[0].content[0].tool_use_id",
        ),
        (
            body(
                messages=[
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "s"}]}
                ]
            ),
            "messages[0].content[0].input",
        ),
        (body(system=7), "system"),
        (body(tools={"name": "x"}), "tools"),
        (body(tools=[{"description": "no name", "input_schema": {}}]), "tools[0].name"),
        (body(tools=[{"name": "x", "input_schema": "object"}]), "tools[0].input_schema"),
        (body(tool_choice="auto"), "tool_choice"),
        (body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (body(tool_choice={"type": "tool"}), "tool_choice.name"),
        (body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (body(thinking={"type": "on"}), "thinking.type"),
        (body(thinking={"type": "adaptive", "display": "loud"}), "thinking.display"),
        (body(output_config={"effort": "extreme"}), "output_config.effort"),
        (body(stop_sequences="END"), "stop_sequences"),
        (body(temperature="hot"), "temperature"),
        (body(top_k=1.5), "top_k"),
        (body(metadata="m"), "metadata"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(request_body: Any, param: str) -> None:
    with pytest.raises(APIError) as caught:
        mapped(request_body)
    error = caught.value
    assert error.status_code == 400 and error.type == "invalid_request_error"
    assert error.param == param
    assert param.split("[")[0].split(".")[0] in error.message


def test_tool_result_must_answer_an_earlier_tool_use() -> None:
    later = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "n", "input": {}}]},
    ]
    with pytest.raises(APIError) as caught:
        mapped(body(messages=later))
    assert "t1" in caught.value.message


def test_a_non_object_body_is_a_400() -> None:
    with pytest.raises(APIError) as caught:
        map_messages_request([1, 2], target_model="gpt-5")
    assert caught.value.status_code == 400
