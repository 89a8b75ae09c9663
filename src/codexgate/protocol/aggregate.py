"""Whole answers from a Responses event stream: a ``chat.completion`` or a Response object.

Both aggregators feed the same :class:`~codexgate.protocol.output_items.OutputBuilder` (items rebuilt
from the events, not only from ``response.completed``) and share the terminal/error handling and
the finish-reason/usage rules with the stream translator (:mod:`codexgate.protocol.outcome`).

If the stream failed (``error``, ``response.failed``, undecodable data, or no terminal event by
:meth:`finish`), ``error`` holds the :class:`APIError` and ``result()`` raises a copy of it (never
the stored one: see ``_check``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgate.errors import APIError
from codexgate.protocol import shapes as ev
from codexgate.protocol.chat_chunks import THINK_CLOSE, THINK_OPEN
from codexgate.protocol.outcome import (
    chat_annotation,
    chat_usage,
    error_from_error_event,
    error_from_failed_response,
    finish_reason_for,
    protocol_failure,
    stream_incomplete,
)
from codexgate.protocol.output_items import Item, OutputBuilder

_TERMINAL = (ev.RESPONSE_COMPLETED, ev.RESPONSE_INCOMPLETE, ev.RESPONSE_FAILED)
_STARTED = (ev.RESPONSE_CREATED, ev.RESPONSE_IN_PROGRESS, ev.RESPONSE_QUEUED)


def _fresh(error: APIError) -> APIError:
    """A new instance of ``error``'s class with the same fields and no traceback."""
    fresh = type(error).__new__(type(error), *error.args)
    fresh.__dict__.update(error.__dict__)
    fresh.headers = dict(error.headers)
    fresh.extra = dict(error.extra)
    return fresh


class _StreamAggregator:
    """Events in; items, the last Response object, usage and the failure (if any) kept."""

    def __init__(self) -> None:
        self.builder = OutputBuilder()
        self.done = False
        self.error: APIError | None = None
        self.response: dict[str, Any] | None = None
        self.rate_limits: dict[str, Any] | None = None

    @property
    def usage(self) -> dict[str, Any] | None:
        usage = self.response.get("usage") if self.response else None
        return dict(usage) if isinstance(usage, Mapping) else None

    @property
    def response_id(self) -> str | None:
        value = self.response.get("id") if self.response else None
        return value if isinstance(value, str) else None

    def feed(self, event: dict[str, Any]) -> None:
        if self.done:
            return
        kind = event.get("type")
        if kind in _STARTED or kind in _TERMINAL:
            response = event.get("response")
            if isinstance(response, Mapping):
                self.response = dict(response)
            if kind == ev.RESPONSE_FAILED:
                self._fail(error_from_failed_response(self.response))
            elif kind in _TERMINAL:
                self.builder.feed_final_output(self.response.get("output") if self.response else None)
                self.done = True
        elif kind == ev.ERROR:
            self._fail(error_from_error_event(event))
        elif kind == ev.PROTOCOL_ERROR:
            message = event.get("message")
            self._fail(protocol_failure(message if isinstance(message, str) else "Malformed upstream event."))
        elif kind == ev.RATE_LIMITS:
            self.rate_limits = event
        else:
            self.builder.feed(event)

    def finish(self) -> None:
        """The upstream bytes ended; without a terminal event that is a failure. Idempotent."""
        if not self.done:
            self._fail(stream_incomplete())

    def _fail(self, error: APIError) -> None:
        self.done = True
        self.error = error

    def _check(self) -> None:
        if self.error is not None:
            # A copy, never the stored error itself: raising it would tie its traceback (this frame,
            # hence ``self``) to ``self.error``: a cycle that keeps the whole answer alive until a
            # full GC, and a traceback that grows with every raise.
            raise _fresh(self.error)
        if not self.done:
            raise stream_incomplete()


def _chat_parts(items: list[Item]) -> tuple[str, str, list[dict[str, Any]], list[dict[str, Any]], str]:
    """(text, refusal, annotations, tool_calls, reasoning) of the output items."""
    text: list[str] = []
    refusal: list[str] = []
    annotations: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    offset = sum(map(len, text))
                    text.append(part.get("text") or "")
                    for annotation in part.get("annotations") or []:
                        converted = chat_annotation(annotation, offset)
                        if converted is not None:
                            annotations.append(converted)
                elif part.get("type") == "refusal":
                    refusal.append(part.get("refusal") or "")
        elif kind == "function_call":
            function = {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}
            tool_calls.append({"id": item.get("call_id") or "", "type": "function", "function": function})
        elif kind == "custom_tool_call":
            custom = {"name": item.get("name") or "", "input": item.get("input") or ""}
            tool_calls.append({"id": item.get("call_id") or "", "type": "custom", "custom": custom})
        elif kind == "reasoning":
            for field in ("summary", "content"):
                reasoning += [p.get("text") for p in item.get(field) or [] if p.get("text")]
    return "".join(text), "".join(refusal), annotations, tool_calls, "\n\n".join(reasoning)


class ChatCompletionAggregator(_StreamAggregator):
    """Builds one ``chat.completion`` object from a Responses stream."""

    def __init__(
        self,
        *,
        model: str,
        reasoning_format: str = "reasoning_content",
        completion_id: str,
        created: int,
        legacy_functions: bool = False,
    ) -> None:
        super().__init__()
        self.legacy_functions = legacy_functions  # the one call as ``message.function_call``
        if reasoning_format not in ev.REASONING_FORMATS:
            raise ValueError(f"reasoning_format must be one of {ev.REASONING_FORMATS}, not {reasoning_format!r}")
        self.model = model
        self.reasoning_format = reasoning_format
        self.completion_id = completion_id
        self.created = created

    @property
    def finish_reason(self) -> str | None:
        if not self.done or self.error is not None:
            return None
        tool_calls = any(i.get("type") in ("function_call", "custom_tool_call") for i in self.builder.items())
        reason = finish_reason_for(self.response, tool_calls)
        return "function_call" if self.legacy_functions and reason == "tool_calls" else reason

    def result(self) -> dict[str, Any]:
        """The ``chat.completion``; raises the stream's :class:`APIError` if it failed."""
        self._check()
        text, refusal, annotations, tool_calls, reasoning = _chat_parts(self.builder.items())
        message: dict[str, Any] = {"role": "assistant"}
        if reasoning and self.reasoning_format == "think":
            prefix = THINK_OPEN + reasoning + THINK_CLOSE
            for annotation in annotations:  # indexes count from the start of the content
                citation = annotation["url_citation"]
                for key in ("start_index", "end_index"):
                    if isinstance(citation.get(key), int):
                        citation[key] += len(prefix)
            text = prefix + text if text else THINK_OPEN + reasoning + THINK_CLOSE.rstrip("\n")
        message["content"] = text if text else (None if tool_calls or refusal else "")
        message["refusal"] = refusal or None
        if reasoning and self.reasoning_format == "reasoning_content":
            message["reasoning_content"] = reasoning
        if tool_calls and self.legacy_functions:
            message["function_call"] = tool_calls[0].get("function") or tool_calls[0].get("custom")
        elif tool_calls:
            message["tool_calls"] = tool_calls
        if annotations:
            message["annotations"] = annotations
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": self.finish_reason,
            "logprobs": None,
        }
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": chat_usage(self.usage),
        }


class ResponseAggregator(_StreamAggregator):
    """Builds the full Response object (non-streaming ``/v1/responses``) from its stream."""

    def __init__(self, *, created_at: int, model: str | None = None) -> None:
        super().__init__()
        self.model = model
        #: the ``created_at`` to use when the backend's response has none (Unix seconds, from the caller)
        self.created_at = created_at

    def result(self) -> dict[str, Any]:
        """The Response object; raises the stream's :class:`APIError` if it failed."""
        self._check()
        base = dict(self.response or {})
        base["object"] = "response"
        base.setdefault("id", None)
        base.setdefault("created_at", self.created_at)
        base.setdefault("status", "completed")
        if self.model is not None:
            base["model"] = self.model
        base.setdefault("model", None)
        base["output"] = self.builder.items()
        base.setdefault("usage", None)
        base.setdefault("incomplete_details", None)
        base.setdefault("error", None)
        return base
