"""Chat Completions request → Responses request (pure). Messages: :mod:`.chat_messages`.

:func:`map_chat_request` validates what it maps (400 ``invalid_request_error`` naming the ``param``)
and returns a :class:`MappedChatRequest`. Backend shaping (what the Codex backend rejects: ``store``,
``max_output_tokens``, ``user`` …) is a separate step in ``codexgate.upstream.shaping``.

Field policy:

* mapped: ``model`` (resolved by the caller's :class:`~codexgate.protocol.catalog_rules.ModelRules`:
  an exact catalog slug wins, a ``-<level>`` suffix is split off when the rest is a catalog slug —
  ``gpt-5-high`` → model ``gpt-5``, effort ``high``; without a catalog, the fallback table's rules),
  ``messages`` (→ ``instructions`` + ``input``), ``tools`` (function tools flattened; ``custom`` tools
  flattened; other tool types pass through), legacy ``functions`` (→ function tools, one call at a
  time, answered as ``function_call`` with ``finish_reason: "function_call"`` as the legacy API was),
  ``tool_choice`` (``none|auto|required``, ``{type: function, function: {name}}`` → ``{type: function,
  name}``, ``{type: allowed_tools, allowed_tools: {mode, tools}}`` → flat, ``custom``), legacy
  ``function_call`` (→ ``tool_choice``), ``parallel_tool_calls``, ``response_format`` (text /
  json_object / json_schema → flat ``text.format``), ``verbosity`` → ``text.verbosity``,
  ``reasoning_effort`` (wins over a Responses-style ``reasoning.effort``, which wins over the model
  suffix) and a Responses-style ``reasoning`` object, ``max_completion_tokens`` / ``max_tokens`` →
  ``max_output_tokens`` (accepted; the Codex backend rejects the field, so shaping removes it and it is
  **not enforced** there — ``length`` only comes from an upstream ``response.incomplete``),
  ``stream``, ``stream_options.include_usage``, ``user``, ``prompt_cache_key``,
  ``web_search_options`` (→ a ``web_search`` tool), extra field ``reasoning_format``
  (``reasoning_content``/``think``/``hidden``).
* dropped harmlessly (sampling/bookkeeping with no effect on what the answer means): ``temperature``,
  ``top_p``, ``seed``, ``frequency_penalty``, ``presence_penalty``, ``stop``, ``logit_bias``,
  ``top_logprobs`` (when ``logprobs`` is not true), ``logprobs: false``, ``n: 1``, ``metadata``,
  ``store``, ``service_tier``, ``prediction``, ``safety_identifier``, and any unknown field.
* 400 (dropping would change the meaning): ``n`` > 1, ``logprobs: true``, ``audio``, ``modalities``
  containing ``audio``, ``input_audio`` parts; and every malformed value of a mapped field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codexgate.errors import invalid_request
from codexgate.protocol.catalog_rules import CLASSIC_EFFORTS, KNOWN_EFFORTS, ModelRules, Resolved, check_effort
from codexgate.protocol.chat_messages import convert_messages
from codexgate.protocol.shapes import REASONING_FORMATS

#: the classic levels (kept for callers that list them); the catalog decides what a model accepts
EFFORTS: tuple[str, ...] = CLASSIC_EFFORTS
#: what an effort the catalog may list looks like (``max``, ``ultra`` … pass on when the catalog is silent)
_EFFORT_SHAPE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
VERBOSITIES: tuple[str, ...] = ("low", "medium", "high")
DROPPED_FIELDS: tuple[str, ...] = (
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "logit_bias",
    "top_logprobs",
    "logprobs",
    "n",
    "metadata",
    "store",
    "service_tier",
    "prediction",
    "safety_identifier",
)


@dataclass
class MappedChatRequest:
    """The Responses request for a Chat request, and what the stream translation needs to know."""

    body: dict[str, Any]
    requested_model: str
    upstream_model: str
    stream: bool
    include_usage: bool
    reasoning_format: str | None
    reasoning_effort: str | None = None
    dropped: list[str] = field(default_factory=list)
    #: legacy ``functions`` (and no ``tools``): the answer's call is a ``function_call``, not ``tool_calls``
    legacy_functions: bool = False
    #: the requested name resolved by the rules (slug, suffix effort, catalog entry)
    resolved: Resolved | None = None


def split_model_effort(model: str, rules: ModelRules | None = None) -> tuple[str, str | None]:
    """``gpt-5-high`` → ``("gpt-5", "high")`` per ``rules`` (the fallback table's when None)."""
    resolved = (rules or _FALLBACK).resolve(model)
    return resolved.slug, resolved.effort


_FALLBACK = ModelRules.fallback()


def check_effort_value(effort: Any, param: str) -> str:
    """A string shaped like an effort level, else a 400 naming the known ones."""
    if not isinstance(effort, str) or not _EFFORT_SHAPE.fullmatch(effort):
        raise invalid_request(
            f"'{param}' must be one of {', '.join(KNOWN_EFFORTS)} (or a level the model lists).", param
        )
    return effort


def _flat_function(function: Any, param: str) -> dict[str, Any]:
    if not isinstance(function, Mapping):
        raise invalid_request(f"'{param}' must be an object.", param=param)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request(f"'{param}.name' must be a non-empty string.", param=f"{param}.name")
    tool: dict[str, Any] = {"type": "function", "name": name}
    for key in ("description", "parameters", "strict"):
        if function.get(key) is not None:
            tool[key] = function[key]
    if "parameters" in tool and not isinstance(tool["parameters"], Mapping):
        raise invalid_request(f"'{param}.parameters' must be a JSON Schema object.", param=f"{param}.parameters")
    return tool


def _tools(body: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    tools: list[dict[str, Any]] = []
    raw = body.get("tools")
    if raw is not None:
        if not isinstance(raw, list):
            raise invalid_request("'tools' must be a list.", param="tools")
        for i, tool in enumerate(raw):
            where = f"tools[{i}]"
            if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
                raise invalid_request(f"'{where}' must be an object with a type.", param=where)
            if tool["type"] == "function":
                function = tool.get("function")
                tools.append(_flat_function(function if function is not None else tool, f"{where}.function"))
            elif tool["type"] == "custom" and isinstance(tool.get("custom"), Mapping):
                custom = tool["custom"]
                if not isinstance(custom.get("name"), str) or not custom["name"]:
                    raise invalid_request(f"'{where}.custom.name' must be a non-empty string.", f"{where}.custom.name")
                tools.append({"type": "custom", **{k: v for k, v in custom.items() if v is not None}})
            else:
                tools.append(dict(tool))  # Responses-style or hosted tools pass through
    functions = body.get("functions")
    if functions is not None:
        if not isinstance(functions, list):
            raise invalid_request("'functions' must be a list.", param="functions")
        tools += [_flat_function(function, f"functions[{i}]") for i, function in enumerate(functions)]
    options = body.get("web_search_options")
    if isinstance(options, Mapping):
        search: dict[str, Any] = {"type": "web_search"}
        for key in ("search_context_size", "user_location"):
            if options.get(key) is not None:
                search[key] = options[key]
        tools.append(search)
    return tools or None


def _named_choice(choice: Mapping[str, Any], param: str) -> dict[str, Any]:
    kind = choice.get("type")
    if kind == "function":
        inner = choice.get("function")
        name = inner.get("name") if isinstance(inner, Mapping) else choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"'{param}.function.name' must be a non-empty string.", param=param)
        return {"type": "function", "name": name}
    if kind == "custom":
        inner = choice.get("custom")
        name = inner.get("name") if isinstance(inner, Mapping) else choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"'{param}.custom.name' must be a non-empty string.", param=param)
        return {"type": "custom", "name": name}
    return dict(choice)  # hosted-tool choices ({type: web_search} …) pass through


def _tool_choice(body: Mapping[str, Any]) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        legacy = body.get("function_call")
        if legacy is None:
            return None
        if legacy in ("none", "auto"):
            return legacy
        if isinstance(legacy, Mapping) and isinstance(legacy.get("name"), str) and legacy["name"]:
            return {"type": "function", "name": legacy["name"]}
        raise invalid_request("'function_call' must be 'none', 'auto' or {\"name\": ...}.", param="function_call")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise invalid_request("'tool_choice' must be 'none', 'auto', 'required' or an object.", "tool_choice")
        return choice
    if not isinstance(choice, Mapping) or not isinstance(choice.get("type"), str):
        raise invalid_request("'tool_choice' must be a string or an object with a type.", param="tool_choice")
    if choice["type"] != "allowed_tools":
        return _named_choice(choice, "tool_choice")
    allowed = choice.get("allowed_tools")
    source = allowed if isinstance(allowed, Mapping) else choice
    mode = source.get("mode", "auto")
    tools = source.get("tools")
    if mode not in ("auto", "required") or not isinstance(tools, list):
        raise invalid_request(
            "'tool_choice.allowed_tools' needs mode auto|required and a list of tools.", param="tool_choice"
        )
    flat = []
    for j, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise invalid_request(f"'tool_choice.allowed_tools.tools[{j}]' must be an object.", param="tool_choice")
        flat.append(_named_choice(tool, f"tool_choice.allowed_tools.tools[{j}]"))
    return {"type": "allowed_tools", "mode": mode, "tools": flat}


def _text_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    text: dict[str, Any] = {}
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, Mapping) else None
        if kind in ("text", "json_object"):
            text["format"] = {"type": kind}
        elif kind == "json_schema":
            schema = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
            if not isinstance(schema, Mapping):
                raise invalid_request("'response_format.json_schema' must be an object.", "response_format.json_schema")
            name = schema.get("name")
            if not isinstance(name, str) or not name:
                raise invalid_request(
                    "'response_format.json_schema.name' must be a non-empty string.", "response_format.json_schema.name"
                )
            flat: dict[str, Any] = {"type": "json_schema", "name": name}
            for key in ("schema", "strict", "description"):
                if schema.get(key) is not None:
                    flat[key] = schema[key]
            text["format"] = flat
        else:
            raise invalid_request(
                "'response_format.type' must be text, json_object or json_schema.", param="response_format.type"
            )
    verbosity = body.get("verbosity")
    if verbosity is not None:
        if verbosity not in VERBOSITIES:
            raise invalid_request("'verbosity' must be low, medium or high.", param="verbosity")
        text["verbosity"] = verbosity
    return text or None


def _reasoning(body: Mapping[str, Any], suffix_effort: str | None) -> dict[str, Any] | None:
    reasoning: dict[str, Any] = {}
    raw = body.get("reasoning")
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise invalid_request("'reasoning' must be an object.", param="reasoning")
        reasoning = {key: value for key, value in raw.items() if value is not None}
    effort = body.get("reasoning_effort")
    if effort is not None:
        reasoning["effort"] = check_effort_value(effort, "reasoning_effort")
    elif "effort" not in reasoning and suffix_effort is not None:
        reasoning["effort"] = suffix_effort
    return reasoning or None


def _positive_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid_request(f"'{key}' must be a positive integer.", param=key)
    return value


def _reject_unsupported(body: Mapping[str, Any]) -> list[str]:
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n != 1):
        raise invalid_request("Only n=1 is supported: the backend returns one choice.", param="n")
    if body.get("logprobs") is True:
        raise invalid_request("logprobs are not available from this backend.", param="logprobs")
    if body.get("audio") is not None:
        raise invalid_request("Audio output is not supported by this backend.", param="audio")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise invalid_request("Audio output is not supported by this backend.", param="modalities")
    return [key for key in DROPPED_FIELDS if key in body]


def map_chat_request(body: dict[str, Any], rules: ModelRules | None = None) -> MappedChatRequest:
    """Map a Chat Completions request body to a Responses request; raises 400 ``APIError``s.

    ``rules`` (the gateway's catalog) resolves the model name and judges the effort: a level the
    model's entry does not list is a 400 naming the levels it does. Without it, the fallback table."""
    if not isinstance(body, Mapping):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("'model' must be a non-empty string.", param="model")
    reasoning_format = body.get("reasoning_format")
    if reasoning_format is not None and reasoning_format not in REASONING_FORMATS:
        raise invalid_request(
            f"'reasoning_format' must be one of {', '.join(REASONING_FORMATS)}.", param="reasoning_format"
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_request("'stream' must be a boolean.", param="stream")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, Mapping):
        raise invalid_request("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(stream and stream_options and stream_options.get("include_usage") is True)
    dropped = _reject_unsupported(body)

    resolved = (rules or _FALLBACK).resolve(model)
    upstream_model, suffix_effort = resolved.slug, resolved.effort
    instructions, items = convert_messages(body.get("messages"))
    out: dict[str, Any] = {"model": upstream_model, "instructions": instructions, "input": items}
    tools = _tools(body)
    if tools is not None:
        out["tools"] = tools
    choice = _tool_choice(body)
    if choice is not None:
        out["tool_choice"] = choice
    legacy_functions = body.get("functions") is not None and not body.get("tools")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise invalid_request("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls")
        out["parallel_tool_calls"] = parallel
    elif legacy_functions:
        out["parallel_tool_calls"] = False  # a legacy answer holds one function_call
    reasoning = _reasoning(body, suffix_effort)
    if reasoning is not None:
        out["reasoning"] = reasoning
        explicit = body.get("reasoning_effort") is not None
        check_effort(resolved, reasoning.get("effort"), param="reasoning_effort" if explicit else "model")
    text = _text_format(body)
    if text is not None:
        out["text"] = text
    max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    if max_tokens is not None:
        out["max_output_tokens"] = max_tokens
    for key in ("user", "prompt_cache_key"):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise invalid_request(f"'{key}' must be a string.", param=key)
            out[key] = value
    out["stream"] = bool(stream)
    return MappedChatRequest(
        body=out,
        requested_model=model,
        upstream_model=upstream_model,
        stream=bool(stream),
        include_usage=include_usage,
        reasoning_format=reasoning_format,
        reasoning_effort=reasoning.get("effort") if reasoning else None,
        dropped=dropped,
        legacy_functions=legacy_functions,
        resolved=resolved,
    )
