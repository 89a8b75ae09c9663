"""Scenario choice from a prompt: every scenario documented, an unknown name refused (also through the
gateway), and the tool_calls scenario's default call valid against the client's first declared tool."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from codexgate.server.app import create_app
from codexgate.testing import SCENARIO_NAMES, UpstreamSimulator, simulator_thread
from codexgate.testing.scenario_help import SCENARIO_MEANINGS, scenario_lines
from codexgate.testing.scenarios import UnknownScenario, scenario_from_prompt
from tests.helpers import serve_in_thread, settings_for, write_auth_json
from tests.testing.support import AUTH, events_of, request_body


def test_every_scenario_has_a_meaning_line() -> None:
    assert set(SCENARIO_MEANINGS) == set(SCENARIO_NAMES)
    lines = scenario_lines()
    assert len(lines) == len(SCENARIO_NAMES)
    for name, line in zip(sorted(SCENARIO_NAMES), lines, strict=True):
        assert line.startswith(f"{name} — ") and len(line) > len(name) + 10


def test_marker_parsing() -> None:
    assert scenario_from_prompt("no marker here") is None
    assert scenario_from_prompt("a bare scenario: with nothing after it") is None
    assert scenario_from_prompt("please scenario:Tools now") == "tool_calls"
    with pytest.raises(UnknownScenario) as raised:
        scenario_from_prompt("scenario:nonsense please")
    message = str(raised.value)
    assert "'nonsense'" in message and "tool_calls" in message and "http_429_usage_limit" in message
    with pytest.raises(UnknownScenario):
        scenario_from_prompt("scenario:replay")  # needs recorded events: a prompt cannot pick it


def test_the_simulator_refuses_an_unknown_scenario_with_a_400(sim: UpstreamSimulator, http: httpx.Client) -> None:
    response = http.post("/responses", json=request_body("scenario:nonsense"), headers=AUTH)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "nonsense" in detail and "refusal" in detail
    assert sim.requests[-1].status == 400


def test_the_gateway_passes_the_refusal_on_as_a_400(tmp_path: Path) -> None:
    write_auth_json(tmp_path)
    with simulator_thread() as simulator:
        settings = settings_for(tmp_path, simulator.base_url)
        with serve_in_thread(create_app(settings)) as served:
            body = {"model": "gpt-5", "messages": [{"role": "user", "content": "scenario:bogus_name"}]}
            response = httpx.post(f"{served.base_url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "bogus_name" in message and "tool_calls" in message


# ---- the default tool call is valid for the first declared tool ---------------------------------


def _valid(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    """A small validator for the JSON-schema subset tool parameters use."""
    if "$ref" in schema:
        return _valid(value, defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return any(_valid(value, option, defs) for option in schema["anyOf"])
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kinds and not any(checks[kind](value) for kind in kinds):
        return False
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        if any(name not in value for name in schema.get("required") or ()):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(properties):
            return False
        return all(_valid(value[name], sub, defs) for name, sub in properties.items() if name in value)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return len(value) >= int(schema.get("minItems") or 0) and all(_valid(v, schema["items"], defs) for v in value)
    return True


FIRST_TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
        "exact": {"type": "boolean"},
        "where": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}},
            "required": ["lat", "tags"],
            "additionalProperties": False,
        },
        "note": {"type": ["string", "null"]},
    },
    "required": ["city", "unit", "days", "where"],
    "additionalProperties": False,
    "$defs": {"tag": {"type": "string", "enum": ["home", "work"]}},
}


def test_tool_calls_calls_the_first_declared_tool_with_valid_arguments(http: httpx.Client) -> None:
    tools = [
        {"type": "function", "name": "forecast", "parameters": FIRST_TOOL_PARAMETERS},
        {"type": "function", "name": "second", "parameters": {"type": "object", "properties": {}}},
    ]
    response = http.post("/responses", json=request_body("scenario:tool_calls", tools=tools), headers=AUTH)
    assert response.status_code == 200, response.text
    done = [e["item"] for e in events_of(response.content) if e["type"] == "response.output_item.done"]
    calls = [item for item in done if item["type"] == "function_call"]
    assert [call["name"] for call in calls] == ["forecast"]
    arguments = json.loads(calls[0]["arguments"])
    assert _valid(arguments, FIRST_TOOL_PARAMETERS, FIRST_TOOL_PARAMETERS["$defs"]), arguments
    # The validator itself refuses what breaks the schema (so the check above can fail).
    assert not _valid({**arguments, "unit": "kelvin"}, FIRST_TOOL_PARAMETERS, FIRST_TOOL_PARAMETERS["$defs"])
    assert not _valid({"city": "x"}, FIRST_TOOL_PARAMETERS, FIRST_TOOL_PARAMETERS["$defs"])
