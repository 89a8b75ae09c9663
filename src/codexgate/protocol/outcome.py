"""How a Responses stream ended, in Chat Completions terms: finish_reason, usage, errors.

Shared by the stream translator and the aggregators so they always agree.

Error policy: an in-stream ``error`` event, a ``response.failed`` event, a ``codexgate.protocol_error``
(undecodable data) and a stream that ends without a terminal event all become an :class:`APIError`
carrying the upstream ``code``. Its HTTP status follows the code: ``context_length_exceeded`` → 400;
``rate_limit_exceeded``/``usage_limit_reached``/``usage_not_included``/``insufficient_quota`` → 429;
``server_is_overloaded``/``slow_down`` → 503; anything else → 502. The error ``type`` is the upstream
one when given, else one derived from the status.

A usage limit reported inside the stream (``usage_limit_reached`` / ``usage_not_included``) carries
the same reset fields as one reported before it (``upstream/errors.py``): ``plan_type``,
``resets_at`` and ``resets_in_seconds`` as the backend gave them (this module reads no clock, so a
field the backend left out stays out), and ``Retry-After`` when the seconds are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgate.errors import APIError, type_for_status
from codexgate.protocol.shapes import ChatUsage, FinishReason

_STATUS_BY_CODE: dict[str, int] = {
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "rate_limit_exceeded": 429,
    "usage_limit_reached": 429,
    "usage_not_included": 429,
    "insufficient_quota": 429,
    "server_is_overloaded": 503,
    "slow_down": 503,
}
STREAM_INCOMPLETE_CODE = "stream_incomplete"
PROTOCOL_ERROR_CODE = "upstream_protocol_error"


def status_for_code(code: str | None) -> int:
    """HTTP status for an upstream in-stream error code."""
    return _STATUS_BY_CODE.get(code or "", 502)


USAGE_LIMIT_CODES = frozenset({"usage_limit_reached", "usage_not_included"})


def usage_limit_fields(source: Mapping[str, Any]) -> dict[str, Any]:
    """``plan_type``, ``resets_at`` and ``resets_in_seconds`` of a usage-limit error, those present."""
    fields: dict[str, Any] = {}
    plan = source.get("plan_type")
    if isinstance(plan, str):
        fields["plan_type"] = plan[:100]
    resets_at = source.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        fields["resets_at"] = int(resets_at)
    seconds = source.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        fields["resets_in_seconds"] = max(int(seconds), 1)
    return fields


def upstream_error(
    message: str,
    code: str | None,
    type_: str | None = None,
    param: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> APIError:
    """An :class:`APIError` for a failure reported inside the upstream stream; ``details`` is the
    backend's error object (a usage limit's reset fields are read from it)."""
    if code is None and type_ in USAGE_LIMIT_CODES:
        code = type_  # as the usage limit answered before the stream (upstream/errors.py)
    status = status_for_code(code)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if details is not None and (code in USAGE_LIMIT_CODES or type_ in USAGE_LIMIT_CODES):
        extra = usage_limit_fields(details)
        if "resets_in_seconds" in extra:
            headers["retry-after"] = str(extra["resets_in_seconds"])
    if isinstance(type_, str) and type_:
        kind = type_
    elif code == "server_is_overloaded":  # the backend said it is overloaded: keep its word
        kind = "server_overloaded"
    else:
        kind = type_for_status(status)
    return APIError(
        status,
        message or "The upstream response failed.",
        type=kind,
        param=param,
        code=code,
        headers=headers,
        extra=extra,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def error_from_error_event(event: Mapping[str, Any]) -> APIError:
    """From an ``error`` event: fields at the top level, or nested under ``error``."""
    source: Mapping[str, Any] = event
    nested = event.get("error")
    if isinstance(nested, Mapping):
        source = nested
    code = _str_or_none(source.get("code")) or _str_or_none(event.get("code"))
    message = _str_or_none(source.get("message")) or _str_or_none(event.get("message")) or ""
    type_ = _str_or_none(source.get("type")) if source is not event else None
    details = {**event, **source} if source is not event else event
    return upstream_error(message, code, type_, _str_or_none(source.get("param")), details)


def error_from_failed_response(response: Mapping[str, Any] | None) -> APIError:
    """From the ``response`` of a ``response.failed`` event."""
    error = response.get("error") if isinstance(response, Mapping) else None
    if not isinstance(error, Mapping):
        return upstream_error("The upstream response failed without an error message.", "response_failed")
    code = _str_or_none(error.get("code")) or "response_failed"
    return upstream_error(_str_or_none(error.get("message")) or "", code, _str_or_none(error.get("type")), None, error)


def protocol_failure(message: str) -> APIError:
    return APIError(502, message, type="upstream_error", code=PROTOCOL_ERROR_CODE)


def stream_incomplete() -> APIError:
    return APIError(
        502,
        "The upstream stream closed before response.completed.",
        type="upstream_error",
        code=STREAM_INCOMPLETE_CODE,
    )


def finish_reason_for(response: Mapping[str, Any] | None, has_tool_calls: bool) -> FinishReason:
    """§3: incomplete max_output_tokens → length; content_filter → content_filter; calls → tool_calls."""
    if isinstance(response, Mapping):
        details = response.get("incomplete_details")
        if isinstance(details, Mapping):
            reason = details.get("reason")
            if reason == "max_output_tokens":
                return "length"
            if reason == "content_filter":
                return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def _count(mapping: Any, key: str) -> int:
    if isinstance(mapping, Mapping):
        value = mapping.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def chat_usage(usage: Mapping[str, Any] | None) -> ChatUsage:
    """Responses usage → Chat usage (all zeros when the upstream reported none)."""
    prompt = _count(usage, "input_tokens")
    completion = _count(usage, "output_tokens")
    total = _count(usage, "total_tokens") or prompt + completion
    details_in = usage.get("input_tokens_details") if isinstance(usage, Mapping) else None
    details_out = usage.get("output_tokens_details") if isinstance(usage, Mapping) else None
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": _count(details_in, "cached_tokens")},
        "completion_tokens_details": {"reasoning_tokens": _count(details_out, "reasoning_tokens")},
    }


def chat_annotation(annotation: Any, offset: int = 0) -> dict[str, Any] | None:
    """A Responses ``url_citation`` annotation in Chat's shape; other annotations → ``None``.

    Responses indexes count from the start of the annotated text part; Chat's count from the start of
    the message content, so ``offset`` (the content before that part) is added.
    """
    if not isinstance(annotation, Mapping) or annotation.get("type") != "url_citation":
        return None
    citation = {key: annotation.get(key) for key in ("url", "title", "start_index", "end_index")}
    for key in ("start_index", "end_index"):
        value = citation[key]
        if offset and isinstance(value, int):
            citation[key] = value + offset
    return {"type": "url_citation", "url_citation": citation}
