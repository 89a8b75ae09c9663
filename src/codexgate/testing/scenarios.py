"""Scenarios: what the simulator answers to one ``POST /responses``.

A :class:`Scenario` names a behaviour (``text``, ``reasoning``, ``tool_calls``, ``http_429_usage_limit``,
``drop_mid_stream`` …, see :data:`SCENARIO_NAMES`) plus optional knobs; knobs left ``None`` take the
simulator's defaults. :func:`iter_events` turns a stream scenario and the request into its event
dicts, made as they are consumed (:func:`build_events` gives the full list); HTTP-error answers are
in :mod:`codexgate.testing.http_errors`.

Prompt knobs (:func:`prompt_knobs`): a ``scenario:NAME`` marker may be followed, on the same line, by
``key=value`` words. ``tool_calls`` reads two of them when the scenario names no calls itself:
``tool=NAME`` (call that tool, whatever tools the request declares: a client such as Claude Code
declares many on every request, so their mere presence never decides anything) and ``args=JSON`` (the
call's arguments, a JSON object that may hold spaces and runs to its closing brace)::

    scenario:tool_calls tool=Bash args={"command": "echo nonce-123"}

A tool round ends by itself: when the request's last ``input`` item is a ``function_call_output``,
such a ``tool_calls`` scenario answers with text instead, ``Tool output: <output>``, so that a client
running a real tool loop sees the output it sent come back (and the loop stops).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from codexgate.testing.sse_events import (
    Event,
    EventStream,
    new_id,
    response_object,
    split_even,
    split_pieces,
    split_words,
    usage_object,
)

#: Scenarios answered with an SSE stream that ends in a terminal event.
STREAM_SCENARIOS = frozenset(
    {
        "text",
        "reasoning",
        "tool_calls",
        "tool_args_done_only",
        "refusal",
        "incomplete",
        "content_filter",
        "failed",
        "error_event",
        "context_length_exceeded",
        "rate_limit_exceeded",
        "web_search",
        "custom_tool",
        "replay",
        "slow",
    }
)
#: Scenarios answered with an HTTP error status before any event.
HTTP_SCENARIOS = frozenset(
    {"http_400", "http_401", "http_403", "http_404", "http_429_usage_limit", "http_500", "http_502", "http_503"}
)
#: Scenarios that break the connection or the stream on purpose.
FAULT_SCENARIOS = frozenset({"drop_mid_stream", "close_before_events", "never_answer", "stall_after", "non_json_data"})
SCENARIO_NAMES = STREAM_SCENARIOS | HTTP_SCENARIOS | FAULT_SCENARIOS

ALIASES = {
    "tools": "tool_calls",
    "tool": "tool_calls",
    "function_call": "tool_calls",
    "function_calls": "tool_calls",
    "parallel_tools": "tool_calls",
    "think": "reasoning",
    "thinking": "reasoning",
    "custom": "custom_tool",
    "search": "web_search",
    "error": "error_event",
    "drop": "drop_mid_stream",
    "stall": "stall_after",
    "non_json": "non_json_data",
    "usage_limit": "http_429_usage_limit",
    "http_429": "http_429_usage_limit",
    "http_5xx": "http_500",
}

DEFAULT_FAILURES: dict[str, tuple[str, str]] = {
    "failed": ("server_error", "An error occurred while processing your request. Please try again."),
    "error_event": ("server_error", "An error occurred while processing your request. Please try again."),
    "context_length_exceeded": (
        "context_length_exceeded",
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
    ),
    "rate_limit_exceeded": (
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1.2s.",
    ),
}
DEFAULT_SUMMARY = (
    "**Reading the request**\n\nThe user asked a question; I will restate it and answer briefly.",
    "**Drafting the answer**\n\nKeeping it short and deterministic so tests can check it.",
)
DEFAULT_REFUSAL = "I'm sorry, but I can't help with that."
DEFAULT_CITATION = {"url": "https://example.com/weather", "title": "Example weather report"}
MAX_ECHO_WORDS = 32
TOOL_OUTPUT_PREFIX = "Tool output: "
_JSON_DECODER = json.JSONDecoder()


def normalize_name(name: str) -> str:
    """The canonical scenario name for ``name`` (aliases such as ``tools`` accepted)."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in SCENARIO_NAMES:
        raise ValueError(f"unknown simulator scenario {name!r}; known: {', '.join(sorted(SCENARIO_NAMES))}")
    return key


@dataclass(frozen=True)
class ToolCall:
    """One function (or custom tool) call the simulated model makes."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    call_id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


CallSpec = ToolCall | tuple[str, "str | Mapping[str, Any]"]


@dataclass
class Scenario:
    """What to answer to one request. ``None`` knobs fall back to the simulator's defaults.

    Timing: ``tokens`` (text deltas; ``None`` = one per word), ``event_delay`` (seconds before each
    event after the first), ``header_delay`` (seconds before the status line), ``coalesce`` (one
    write for the whole stream instead of one per event).
    """

    name: str = "text"
    text: str | None = None
    tokens: int | None = None
    event_delay: float | None = None
    header_delay: float | None = None
    coalesce: bool | None = None
    model: str | None = None
    #: ``tool_calls`` / ``tool_args_done_only`` / ``custom_tool``: ``ToolCall`` or ``(name, args)``.
    calls: Sequence[CallSpec] | None = None
    #: text streamed as a message before the tool calls (``tool_calls``), or ``None`` for none.
    preamble: str | None = None
    arg_chunks: int = 4
    reasoning_summary: Sequence[str] | None = None
    summary_tokens: int | None = None
    encrypted_content: str | None = None
    refusal: str | None = None
    phase: str | None = None
    search_query: str = "weather in Paris"
    citation: Mapping[str, str] | None = None
    incomplete_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: ``error_event``: ``"nested"`` (``{"error": {...}}`` as recorded) or ``"flat"`` (SDK type).
    error_shape: str = "nested"
    #: HTTP scenarios: status (e.g. 502 for a custom 5xx), body (dict → JSON, str/bytes as is), headers.
    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] | None = None
    #: faults: how many events go out before the drop / stall / bad line.
    fault_after: int = 3
    empty_final_output: bool | None = None
    rate_limits_event: bool | None = None
    cached_tokens: int = 0
    usage: Mapping[str, Any] | None = None
    resets_in_seconds: int = 3600
    events: Sequence[Mapping[str, Any]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.name = normalize_name(self.name)
        if self.name == "replay" and self.events is None:
            raise ValueError("the replay scenario needs events (use Scenario.from_events)")

    @classmethod
    def from_events(cls, events: Sequence[Mapping[str, Any]], **knobs: Any) -> Scenario:
        """Replay recorded event dicts as they are (their ``sequence_number`` s included)."""
        return cls("replay", events=[dict(event) for event in events], **knobs)

    @property
    def is_http_error(self) -> bool:
        return self.name in HTTP_SCENARIOS

    def tool_calls(self) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for spec in self.calls or ():
            calls.append(spec if isinstance(spec, ToolCall) else ToolCall(spec[0], spec[1]))
        return calls


@dataclass(frozen=True)
class RequestContext:
    """What a scenario needs from the request."""

    body: Mapping[str, Any]
    prompt: str
    model: str
    input_tokens: int
    tools: list[Mapping[str, Any]]
    wants_encrypted_reasoning: bool

    @classmethod
    def from_body(cls, body: Mapping[str, Any], raw_size: int) -> RequestContext:
        tools = request_tools(body)
        include = body.get("include") or ()
        model = body.get("model")
        return cls(
            body=body,
            prompt=last_user_text(body),
            model=model if isinstance(model, str) and model else "gpt-5",
            input_tokens=max(1, raw_size // 4),
            tools=tools,
            wants_encrypted_reasoning="reasoning.encrypted_content" in include,
        )


def request_tools(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The top-level ``tools``, or a Responses Lite body's ``additional_tools`` item's (namespaces opened)."""
    listed: list[Any] = list(body.get("tools") or ())
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and item.get("type") == "additional_tools":
            listed += item.get("tools") or ()
    tools: list[Mapping[str, Any]] = []
    for tool in listed:
        if isinstance(tool, Mapping) and tool.get("type") == "namespace":
            tools += [inner for inner in tool.get("tools") or () if isinstance(inner, Mapping)]
        elif isinstance(tool, Mapping):
            tools.append(tool)
    return tools


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message in ``input`` (a string input counts as one)."""
    items = body.get("input")
    if isinstance(items, str):
        return items
    if not isinstance(items, list):
        return ""
    for item in reversed(items):
        if not isinstance(item, Mapping) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                str(part.get("text", ""))
                for part in content
                if isinstance(part, Mapping) and part.get("type") in ("input_text", "text", "output_text")
            ]
            return "\n".join(texts)
    return ""


class UnknownScenario(ValueError):
    """A ``scenario:NAME`` marker that names no scenario a prompt can pick (the message lists those)."""


#: scenarios a prompt cannot pick: ``replay`` needs recorded events (``Scenario.from_events``).
NOT_FROM_PROMPT = frozenset({"replay"})


def scenario_from_prompt(prompt: str) -> str | None:
    """``NAME`` from a ``scenario:NAME`` marker in the prompt; None without a marker.

    Raises :class:`UnknownScenario` (naming the known ones) when the marker names no scenario."""
    marker = prompt.find("scenario:")
    if marker < 0:
        return None
    rest = prompt[marker + len("scenario:") :]
    word = ""
    for char in rest:
        if not (char.isalnum() or char in "_-"):
            break
        word += char
    if not word:
        return None
    try:
        name = normalize_name(word)
    except ValueError:
        name = None
    if name is None or name in NOT_FROM_PROMPT:
        known = ", ".join(sorted(SCENARIO_NAMES - NOT_FROM_PROMPT))
        raise UnknownScenario(f"unknown simulator scenario {word!r} in the prompt; known: {known}")
    return name


def prompt_knobs(prompt: str) -> dict[str, Any]:
    """The ``key=value`` words after the ``scenario:`` marker, on its line (``args`` parsed as JSON).

    An ``args`` value that is not a JSON object is kept out (the scenario's defaults apply)."""
    marker = prompt.find("scenario:")
    if marker < 0:
        return {}
    line = prompt[marker:].split("\n", 1)[0]
    knobs: dict[str, Any] = {}
    position = line.find(" ")
    while 0 <= position < len(line):
        while position < len(line) and line[position] == " ":
            position += 1
        key, equals, _ = line[position:].partition("=")
        if not equals or " " in key or not key:
            break
        start = position + len(key) + 1
        if key == "args":
            try:
                value, end = _JSON_DECODER.raw_decode(line, start)
            except ValueError:
                break
            if isinstance(value, dict):
                knobs[key] = value
            position = end
        else:
            end = line.find(" ", start)
            end = len(line) if end < 0 else end
            knobs[key] = line[start:end]
            position = end
    return knobs


def last_tool_output(body: Mapping[str, Any]) -> str | None:
    """The output text when the request's last ``input`` item is a ``function_call_output``."""
    items = body.get("input")
    if not isinstance(items, list) or not items:
        return None
    last = items[-1]
    if not isinstance(last, Mapping) or last.get("type") != "function_call_output":
        return None
    output = last.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # content parts
        return "".join(str(part.get("text", "")) for part in output if isinstance(part, Mapping))
    return ""


def default_answer_pieces(prompt: str, tokens: int | None = None) -> list[str]:
    """The deterministic answer: ``Simulated answer to: <first words of the prompt>``.

    With ``tokens`` the words are cycled (or cut) to give exactly that many deltas.
    """
    echo = prompt.split()[:MAX_ECHO_WORDS] or ["(empty", "prompt)"]
    words = ["Simulated", "answer", "to:", *echo]
    count = len(words) if tokens is None else max(1, tokens)
    return [(" " if index else "") + words[index % len(words)] for index in range(count)]


def expected_text(prompt: str, tokens: int | None = None) -> str:
    """The text the ``text`` scenario answers to ``prompt`` when no text is set."""
    return "".join(default_answer_pieces(prompt, tokens))


def _schema_value(schema: Any) -> Any:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if isinstance(schema, Mapping) and schema.get("enum"):
        return schema["enum"][0]
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(str(kind), "example")


def calls_for_request(context: RequestContext) -> list[ToolCall]:
    """The default call: the request's first declared function tool, with arguments that validate
    against its ``parameters`` schema (see :func:`schema_instance`). Without one: two example calls."""
    for tool in context.tools:
        name = tool.get("name")
        if tool.get("type") != "function" or not isinstance(name, str):
            continue
        parameters = tool.get("parameters")
        if not isinstance(parameters, Mapping):
            return [ToolCall(name, {})]
        defs = {**(parameters.get("definitions") or {}), **(parameters.get("$defs") or {})}
        arguments = schema_instance(parameters, defs)
        return [ToolCall(name, arguments if isinstance(arguments, Mapping) else {})]
    return [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Tokyo"})]


def _prompt_calls(context: RequestContext) -> list[ToolCall]:
    """The call a ``tool=NAME [args=JSON]`` prompt knob asks for (none without ``tool=``)."""
    knobs = prompt_knobs(context.prompt)
    name = knobs.get("tool")
    if not isinstance(name, str) or not name:
        return []
    return [ToolCall(name, knobs.get("args") or {})]


@dataclass(frozen=True)
class Defaults:
    """Simulator-wide defaults the scenario's ``None`` knobs fall back to."""

    text: str | None = None
    tokens: int | None = None
    empty_final_output: bool = False


def answer_pieces(scenario: Scenario, context: RequestContext, defaults: Defaults) -> list[str]:
    tokens = scenario.tokens if scenario.tokens is not None else defaults.tokens
    text = scenario.text if scenario.text is not None else defaults.text
    if text is None:
        text = structured_answer(context.body, context.prompt)
    if text is None:
        return default_answer_pieces(context.prompt, tokens)
    return split_pieces(text, tokens)


def structured_answer(body: Mapping[str, Any], prompt: str) -> str | None:
    """The JSON a model gives for ``text.format`` ``json_schema`` (an instance of the schema, every
    property filled) or ``json_object``; None for plain text."""
    text = body.get("text")
    form = text.get("format") if isinstance(text, Mapping) else None
    kind = form.get("type") if isinstance(form, Mapping) else None
    if kind == "json_object":
        return orjson.dumps({"answer": expected_text(prompt)}).decode()
    if kind == "json_schema" and isinstance(form, Mapping) and isinstance(form.get("schema"), Mapping):
        schema = form["schema"]
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
        return orjson.dumps(schema_instance(schema, defs)).decode()
    return None


def schema_instance(schema: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """A value that validates against a JSON schema (the subset structured outputs use)."""
    if not isinstance(schema, Mapping) or depth > 20:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return schema_instance(defs.get(ref.rsplit("/", 1)[-1]), defs, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if isinstance(o, Mapping) and o.get("type") != "null"), options[0])
            return schema_instance(chosen, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: schema_instance(value, defs, depth + 1) for name, value in properties.items()}
    if kind == "array":
        item = schema_instance(schema.get("items"), defs, depth + 1)
        return [item] * max(1, int(schema.get("minItems") or 1))
    if kind == "null":
        return None
    return _schema_value(schema)


def _usage(stream: EventStream, scenario: Scenario, context: RequestContext) -> dict[str, Any]:
    usage = usage_object(
        context.input_tokens,
        stream.output_tokens,
        cached_tokens=min(scenario.cached_tokens, context.input_tokens),
        reasoning_tokens=stream.reasoning_tokens,
    )
    usage.update(scenario.usage or {})
    return usage


def _failure(scenario: Scenario) -> dict[str, Any]:
    code, message = DEFAULT_FAILURES.get(scenario.name, DEFAULT_FAILURES["failed"])
    return {"code": scenario.error_code or code, "message": scenario.error_message or message}


def build_events(scenario: Scenario, context: RequestContext, defaults: Defaults) -> list[Event]:
    """The complete event list of a stream scenario (faults use the ``text`` stream)."""
    return list(iter_events(scenario, context, defaults))


def iter_events(scenario: Scenario, context: RequestContext, defaults: Defaults) -> Iterator[Event]:
    """The events of a stream scenario, made one by one as they are consumed (a long answer's first
    events can go out before its last ones exist)."""
    if scenario.name == "replay":
        for event in scenario.events or ():
            yield dict(event)
        return
    model = scenario.model or context.model
    stream = EventStream(response_object(context.body, model=model))
    yield from stream.start()
    name = scenario.name
    empty = scenario.empty_final_output if scenario.empty_final_output is not None else defaults.empty_final_output
    pieces = answer_pieces(scenario, context, defaults)

    if name in ("failed", "context_length_exceeded", "rate_limit_exceeded", "error_event"):
        error = _failure(scenario)
        if name == "error_event":
            yield from stream.error_event(error["code"], error["message"], flat=scenario.error_shape == "flat")
        yield from stream.finish("failed", usage=None, error=error)
        return

    if name == "reasoning":
        summaries = scenario.reasoning_summary or DEFAULT_SUMMARY
        per_part = scenario.summary_tokens
        encrypted = scenario.encrypted_content
        if encrypted is None and context.wants_encrypted_reasoning:
            encrypted = "gAAAAAB" + new_id("enc")
        yield from stream.reasoning([split_pieces(part, per_part) for part in summaries], encrypted_content=encrypted)
        yield from stream.message(pieces, phase=scenario.phase)
    elif name == "tool_calls" and scenario.calls is None and last_tool_output(context.body) is not None:
        answer = TOOL_OUTPUT_PREFIX + (last_tool_output(context.body) or "")
        yield from stream.message(split_pieces(answer, scenario.tokens), phase=scenario.phase)
    elif name in ("tool_calls", "tool_args_done_only"):
        if scenario.preamble:
            yield from stream.message(split_words(scenario.preamble), phase=scenario.phase or "commentary")
        for call in scenario.tool_calls() or _prompt_calls(context) or calls_for_request(context):
            arguments = call.arguments_json()
            chunks = None if name == "tool_args_done_only" else split_even(arguments, scenario.arg_chunks)
            yield from stream.function_call(call.name, arguments, chunks, call_id=call.call_id or new_id("call"))
    elif name == "custom_tool":
        calls = scenario.tool_calls() or [ToolCall("apply_patch", "*** Begin Patch\n*** End Patch\n")]
        for call in calls:
            tool_input = call.arguments if isinstance(call.arguments, str) else call.arguments_json()
            yield from stream.custom_tool_call(
                call.name,
                tool_input,
                split_even(tool_input, scenario.arg_chunks),
                call_id=call.call_id or new_id("call"),
            )
    elif name == "refusal":
        yield from stream.refusal(split_words(scenario.refusal or DEFAULT_REFUSAL))
    elif name == "web_search":
        yield from stream.web_search_call(scenario.search_query)
        citation = dict(scenario.citation or DEFAULT_CITATION)
        text = "".join(pieces)
        annotation = {
            "type": "url_citation",
            "start_index": 0,
            "end_index": len(text),
            "title": citation.get("title", ""),
            "url": citation.get("url", ""),
        }
        yield from stream.message(pieces, annotations=[annotation], phase=scenario.phase)
    elif name in ("incomplete", "content_filter"):
        reason = scenario.incomplete_reason or ("content_filter" if name == "content_filter" else "max_output_tokens")
        yield from stream.message(pieces, status="incomplete", phase=scenario.phase)
        yield from stream.finish(
            "incomplete", usage=_usage(stream, scenario, context), empty_output=empty, incomplete_reason=reason
        )
        return
    else:  # text, slow and the stream faults
        yield from stream.message(pieces, phase=scenario.phase)
    yield from stream.finish("completed", usage=_usage(stream, scenario, context), empty_output=empty)
