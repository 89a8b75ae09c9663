"""Anthropic Messages request → Responses request for the Codex backend (pure).

:func:`map_messages_request` validates what it maps (400 ``invalid_request_error`` naming the field)
and returns a :class:`MappedMessagesRequest`. ``system`` and ``messages``: :mod:`.anthropic_content`.

Field policy:

* ``model``: required string; the caller resolves it (:mod:`.anthropic_models`) and passes
  ``target_model`` / ``target_effort``; the answer names the model the client asked for.
* ``max_tokens``: required positive integer; accepted but **not sent** (the backend rejects
  ``max_output_tokens``), so it is not enforced; ``max_tokens`` as a stop reason only comes from an
  upstream ``response.incomplete``.
* ``tools``: client tools (``name``, ``description``, ``input_schema``) → function tools; server tools
  whose ``type`` starts with ``web_search`` → ``{"type": "web_search"}``; other typed tools
  (Anthropic-defined ``bash_*``, ``text_editor_*``, ``computer_*``, ``code_execution_*`` …) have no
  equivalent and are ignored.
* ``tool_choice``: ``auto`` → ``auto``; ``any`` → ``required``; ``tool`` → ``{type: function, name}``
  (or ``{type: web_search}`` for the declared web search tool); ``none`` → ``none``;
  ``disable_parallel_tool_use: true`` → ``parallel_tool_calls: false`` (else ``true``).
* effort (first that applies): the mapping target's effort; ``thinking: {"type": "disabled"}`` → the
  model's lowest effort and no reasoning summary; ``output_config.effort`` (``low|medium|high``,
  ``max`` → ``xhigh``); ``thinking.budget_tokens`` by :data:`BUDGET_LADDER`; ``adaptive`` or nothing →
  no effort sent (the backend's default for the model). When the model's supported efforts are known
  the effort is moved to the nearest supported one.
* ``reasoning.summary``: ``auto``, except with thinking disabled or in Lite (none).
* session: ``X-Claude-Code-Session-Id`` (passed in as ``session_header``), else the session in
  ``metadata.user_id`` (a JSON string with ``session_id``, or the older ``…_session_<id>`` form) →
  ``prompt_cache_key`` and :attr:`MappedMessagesRequest.session_id`.
* accepted and not sent: ``stop_sequences``, ``temperature``, ``top_p``, ``top_k``, ``metadata``,
  ``context_management``, ``service_tier``, ``container``, ``mcp_servers`` and unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from codexgate.errors import invalid_request
from codexgate.protocol.anthropic_content import ThinkingVerifier, convert_messages, system_text

__all__ = [
    "BUDGET_LADDER",
    "EFFORT_ORDER",
    "MappedMessagesRequest",
    "ThinkingDisplay",
    "clamp_effort",
    "effort_for_budget",
    "map_messages_request",
    "session_from_metadata",
]

ThinkingDisplay = Literal["summarized", "omitted", "none"]
EFFORT_ORDER: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")
#: (largest budget_tokens, effort): the first row whose bound is >= the budget applies.
BUDGET_LADDER: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"), (32768, "high"))
BUDGET_ABOVE_LADDER = "xhigh"
_OUTPUT_EFFORTS: dict[str, str] = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}
_ACCEPTED_NOT_SENT = (
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "context_management",
    "service_tier",
    "container",
    "mcp_servers",
    "max_tokens",
)
_SESSION_SUFFIX = re.compile(r"_session_([A-Za-z0-9-]+)$")


@dataclass
class MappedMessagesRequest:
    """The Responses body for the backend, and what the answer needs to know."""

    body: dict[str, Any]
    requested_model: str
    upstream_model: str
    stream: bool
    max_tokens: int
    #: how thinking blocks are answered: with the summary text, empty text (still signed), or not at all
    thinking_display: ThinkingDisplay
    reasoning_effort: str | None
    session_id: str | None
    session_source: Literal["header", "metadata"] | None
    #: names of the declared ``web_search_*`` server tools (the answer's ``server_tool_use`` names)
    web_search_tool: str | None = None
    accepted_not_sent: list[str] = field(default_factory=list)


def effort_for_budget(budget_tokens: int) -> str:
    for bound, effort in BUDGET_LADDER:
        if budget_tokens <= bound:
            return effort
    return BUDGET_ABOVE_LADDER


def clamp_effort(effort: str, supported: Sequence[str] | None) -> str:
    """``effort`` if supported (or nothing is known), else the nearest supported one (ties: the lower)."""
    if not supported or effort in supported or effort not in EFFORT_ORDER:
        return effort
    known = [e for e in supported if e in EFFORT_ORDER]
    if not known:
        return effort
    position = EFFORT_ORDER.index(effort)
    return min(known, key=lambda e: (abs(EFFORT_ORDER.index(e) - position), EFFORT_ORDER.index(e)))


def _lowest_effort(supported: Sequence[str] | None) -> str:
    known = [e for e in supported or () if e in EFFORT_ORDER]
    return min(known, key=EFFORT_ORDER.index) if known else "low"


def session_from_metadata(metadata: Any) -> str | None:
    """The session id in ``metadata.user_id``: JSON with ``session_id``, or ``…_session_<id>``."""
    if not isinstance(metadata, Mapping):
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        try:
            parsed = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
        session = parsed.get("session_id") if isinstance(parsed, dict) else None
        return session if isinstance(session, str) and session else None
    match = _SESSION_SUFFIX.search(user_id)
    return match.group(1) if match else None


def _optional(body: Mapping[str, Any], key: str, types: tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
        raise invalid_request(f"'{key}' must be {what}.", param=key)
    return value


def _check_accepted(body: Mapping[str, Any]) -> None:
    stops = _optional(body, "stop_sequences", (list,), "a list of strings")
    if stops is not None and not all(isinstance(s, str) for s in stops):
        raise invalid_request("'stop_sequences' must be a list of strings.", param="stop_sequences")
    _optional(body, "temperature", (int, float), "a number")
    _optional(body, "top_p", (int, float), "a number")
    _optional(body, "top_k", (int,), "an integer")
    _optional(body, "metadata", (dict,), "an object")


def _tools(raw: Any) -> tuple[list[dict[str, Any]], str | None]:
    if raw is None:
        return [], None
    if not isinstance(raw, list):
        raise invalid_request("'tools' must be a list.", param="tools")
    tools: list[dict[str, Any]] = []
    web_search: str | None = None
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise invalid_request(f"'{where}' must be an object.", param=where)
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith("web_search"):
            name = tool.get("name")
            web_search = name if isinstance(name, str) and name else "web_search"
            if not any(t.get("type") == "web_search" for t in tools):
                tools.append({"type": "web_search"})
            continue
        if kind not in (None, "custom"):
            continue  # Anthropic-defined tools with no equivalent here
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"'{where}.name' must be a non-empty string.", param=f"{where}.name")
        schema = tool.get("input_schema")
        if not isinstance(schema, Mapping):
            raise invalid_request(f"'{where}.input_schema' must be a JSON Schema object.", f"{where}.input_schema")
        function: dict[str, Any] = {"type": "function", "name": name, "parameters": dict(schema), "strict": False}
        description = tool.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise invalid_request(f"'{where}.description' must be a string.", param=f"{where}.description")
            function["description"] = description
        tools.append(function)
    return tools, web_search


def _tool_choice(raw: Any, web_search: str | None) -> tuple[Any, bool]:
    """(the Responses tool_choice or None, parallel_tool_calls)."""
    if raw is None:
        return None, True
    if not isinstance(raw, Mapping):
        raise invalid_request("'tool_choice' must be an object with a type.", param="tool_choice")
    disable = raw.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise invalid_request(
            "'tool_choice.disable_parallel_tool_use' must be a boolean.", "tool_choice.disable_parallel_tool_use"
        )
    parallel = not disable
    kind = raw.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("'tool_choice.name' must be a non-empty string.", param="tool_choice.name")
        if web_search is not None and name == web_search:
            return {"type": "web_search"}, parallel
        return {"type": "function", "name": name}, parallel
    raise invalid_request("'tool_choice.type' must be auto, any, tool or none.", param="tool_choice.type")


def _thinking(raw: Any) -> tuple[str | None, int | None, ThinkingDisplay]:
    """(type, budget_tokens, display) of ``thinking``."""
    if raw is None:
        return None, None, "summarized"
    if not isinstance(raw, Mapping):
        raise invalid_request("'thinking' must be an object.", param="thinking")
    kind = raw.get("type")
    if kind not in ("enabled", "disabled", "adaptive"):
        raise invalid_request("'thinking.type' must be enabled, disabled or adaptive.", param="thinking.type")
    display = raw.get("display")
    if display not in (None, "summarized", "omitted"):
        raise invalid_request("'thinking.display' must be summarized or omitted.", param="thinking.display")
    budget = raw.get("budget_tokens")
    if kind == "enabled":
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise invalid_request(
                "'thinking.budget_tokens' must be a positive integer when thinking is enabled.",
                param="thinking.budget_tokens",
            )
    elif budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
        raise invalid_request("'thinking.budget_tokens' must be an integer.", param="thinking.budget_tokens")
    if kind == "disabled":
        return kind, None, "none"
    return kind, budget, "omitted" if display == "omitted" else "summarized"


def _output_effort(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise invalid_request("'output_config' must be an object.", param="output_config")
    effort = raw.get("effort")
    if effort is None:
        return None
    if effort not in _OUTPUT_EFFORTS:
        raise invalid_request("'output_config.effort' must be low, medium, high or max.", "output_config.effort")
    return _OUTPUT_EFFORTS[effort]


def map_messages_request(
    body: Any,
    *,
    target_model: str,
    target_effort: str | None = None,
    lite: bool = False,
    verify_thinking: ThinkingVerifier | None = None,
    model_efforts: Sequence[str] | None = None,
    session_header: str | None = None,
) -> MappedMessagesRequest:
    """Map a Messages body to the Responses body for the backend; raises 400 ``APIError``s.

    ``target_model``/``target_effort``: where the requested model goes (:func:`.resolve_model`);
    ``lite``: the model takes no ``instructions`` (``system`` becomes the first developer message);
    ``verify_thinking``: signature → the signed reasoning or None (thinking blocks dropped if absent);
    ``model_efforts``: the catalog's supported efforts for the model, when known.
    """
    if not isinstance(body, Mapping):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("'model' must be a non-empty string.", param="model")
    if "max_tokens" not in body:
        raise invalid_request("'max_tokens' is required.", param="max_tokens")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid_request("'max_tokens' must be a positive integer.", param="max_tokens")
    if "messages" not in body:
        raise invalid_request("'messages' is required.", param="messages")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_request("'stream' must be a boolean.", param="stream")
    _check_accepted(body)

    instructions = system_text(body.get("system"))
    items = convert_messages(body.get("messages"), verify_thinking)
    tools, web_search = _tools(body.get("tools"))
    choice, parallel = _tool_choice(body.get("tool_choice"), web_search)
    thinking_type, budget, display = _thinking(body.get("thinking"))
    output_effort = _output_effort(body.get("output_config"))

    effort: str | None
    if target_effort is not None:
        effort = target_effort
    elif thinking_type == "disabled":
        effort = _lowest_effort(model_efforts)
    elif output_effort is not None:
        effort = output_effort
    elif budget is not None and thinking_type == "enabled":
        effort = effort_for_budget(budget)
    else:
        effort = None
    if effort is not None:
        effort = clamp_effort(effort, model_efforts)

    out: dict[str, Any] = {"model": target_model}
    if lite:
        if instructions is not None:
            developer = {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": instructions}],
            }
            items.insert(0, developer)
    elif instructions is not None:
        out["instructions"] = instructions
    out["input"] = items
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    out["parallel_tool_calls"] = parallel
    reasoning: dict[str, Any] = {}
    if effort is not None:
        reasoning["effort"] = effort
    if thinking_type != "disabled" and not lite:
        reasoning["summary"] = "auto"
    if reasoning:
        out["reasoning"] = reasoning
    out["store"] = False
    out["stream"] = True
    out["include"] = ["reasoning.encrypted_content"]

    session_source: Literal["header", "metadata"] | None = None
    session_id = session_header.strip() if isinstance(session_header, str) and session_header.strip() else None
    if session_id is not None:
        session_source = "header"
    else:
        session_id = session_from_metadata(body.get("metadata"))
        session_source = "metadata" if session_id is not None else None
    if session_id is not None:
        out["prompt_cache_key"] = session_id
    return MappedMessagesRequest(
        body=out,
        requested_model=model,
        upstream_model=target_model,
        stream=bool(stream),
        max_tokens=max_tokens,
        thinking_display=display,
        reasoning_effort=effort,
        session_id=session_id,
        session_source=session_source,
        web_search_tool=web_search,
        accepted_not_sent=[key for key in _ACCEPTED_NOT_SENT if key in body],
    )
