"""What a ``/v1/responses`` WebSocket remembers between turns, and what one turn's events told.

:class:`SocketMemory` keeps the last turn's full input and output (and its response id) so that a turn
sent as ``previous_response_id`` + new items can be expanded into the whole conversation for the
backend, which keeps nothing (``store: false``). It is bounded: a turn whose input and output together
exceed ``limit`` bytes (as JSON) is not kept, and a later turn naming it answers
``previous_response_not_found``. :class:`TurnRecord` reads one turn's events as they go by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from codexgate.errors import APIError

__all__ = ["SocketMemory", "TurnRecord", "previous_response_not_found", "warmup_events"]


def previous_response_not_found(response_id: str) -> APIError:
    return APIError(
        400,
        f"Previous response with id '{response_id}' not found. This socket keeps only its last response; "
        "send the whole conversation in `input` instead.",
        type="invalid_request_error",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def _items(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    return list(raw) if isinstance(raw, list) else []


class SocketMemory:
    """The last response of one socket: its id, its full input and its output items."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.response_id: str | None = None
        self.input: list[Any] = []
        self.output: list[Any] = []

    def expand(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` without ``previous_response_id``/``generate``, its input made whole; 400 for an unknown id."""
        expanded = {key: value for key, value in body.items() if key not in ("previous_response_id", "generate")}
        previous = body.get("previous_response_id")
        if previous is None or previous == "":
            return expanded
        if not isinstance(previous, str) or previous != self.response_id:
            raise previous_response_not_found(str(previous))
        expanded["input"] = [*self.input, *self.output, *_items(body.get("input"))]
        return expanded

    def remember(self, response_id: str, input_items: Any, output: list[Any]) -> None:
        items = _items(input_items)
        if len(orjson.dumps(items)) + len(orjson.dumps(output)) > self.limit:
            self.clear()
            return
        self.response_id, self.input, self.output = response_id, items, list(output)

    def clear(self) -> None:
        self.response_id, self.input, self.output = None, [], []


@dataclass
class TurnRecord:
    """One turn's events, read as they go by: the response id, the output items, usage, a failure."""

    outcome: str = "completed"
    response_id: str | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    #: the failure's code when the stream carried ``error`` or ``response.failed``
    failed: str | None = None

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_item.done":
            item = event.get("item")
            if isinstance(item, dict):
                self.output.append(item)
            return
        response = event.get("response")
        if isinstance(response, Mapping):
            if isinstance(response.get("id"), str):
                self.response_id = response["id"]
            if isinstance(response.get("usage"), Mapping):
                self.usage = dict(response["usage"])
        if kind == "response.failed":
            error = response.get("error") if isinstance(response, Mapping) else None
            code = error.get("code") if isinstance(error, Mapping) else None
            self.failed = str(code or "response_failed")
        elif kind == "error":
            code = event.get("code")
            nested = event.get("error")
            if code is None and isinstance(nested, Mapping):
                code = nested.get("code")
            self.failed = str(code or "upstream_error")


def warmup_events(response_id: str, model: str, created_at: int) -> list[dict[str, Any]]:
    """The answer to a ``generate: false`` warm-up: created and completed, no output, no tokens."""
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "model": model,
        "output": [],
        "usage": None,
    }
    usage = {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }
    return [
        {"type": "response.created", "sequence_number": 0, "response": response},
        {
            "type": "response.completed",
            "sequence_number": 1,
            "response": {**response, "status": "completed", "usage": usage},
        },
    ]
