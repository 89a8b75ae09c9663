"""Building blocks of a Responses API event stream, as the Codex backend sends it.

:class:`EventStream` numbers events (``sequence_number`` from 0), keeps the response object that
``response.created`` / ``response.in_progress`` / the terminal event carry, and has one method per
item kind that yields the item's whole event run (``output_item.added`` … ``output_item.done``) at
the next ``output_index``. The methods are generators: events are made as they are consumed, so a
server can send the first ones while the rest of a long stream is still to be built. Field names and
order follow the recorded streams in ``tests/fixtures/recorded/`` and ``protocol.md`` §1. Nothing
here does I/O.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

Event = dict[str, Any]

EVENT_PREFIX = b"event: "
DATA_PREFIX = b"\ndata: "
EVENT_END = b"\n\n"


def new_id(prefix: str) -> str:
    """An id shaped like the backend's (``resp_…``, ``msg_…``, ``rs_…``, ``fc_…``, ``call_…``)."""
    if prefix == "call":
        return "call_" + base64.b64encode(secrets.token_bytes(18), altchars=b"Ab").decode()
    return f"{prefix}_{secrets.token_hex(24)}"


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One SSE event: ``event: <type>\\ndata: <json>\\n\\n``."""
    return EVENT_PREFIX + str(event.get("type", "message")).encode() + DATA_PREFIX + orjson.dumps(event) + EVENT_END


def split_words(text: str) -> list[str]:
    """Token-like pieces: each word keeps the whitespace before it, so the pieces join to ``text``."""
    pieces: list[str] = []
    start = 0
    length = len(text)
    index = 0
    while index < length:
        while index < length and text[index].isspace():
            index += 1
        while index < length and not text[index].isspace():
            index += 1
        pieces.append(text[start:index])
        start = index
    return pieces or ([text] if text else [])


def split_even(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` pieces of near-equal length (fewer if ``text`` is shorter)."""
    count = max(1, min(count, len(text)))
    if not text:
        return []
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def split_pieces(text: str, count: int | None) -> list[str]:
    """Words when ``count`` is None, else exactly ``count`` pieces (or one per character if shorter)."""
    return split_words(text) if count is None else split_even(text, count)


# The backend pads deltas with a random ``obfuscation`` string that clients must ignore. A pool
# keeps it cheap on the hot path (the benchmark streams thousands of deltas).
_OBFUSCATION_POOL = itertools.cycle([secrets.token_urlsafe(12) for _ in range(257)])


def _obfuscation(delta: str) -> str:
    return next(_OBFUSCATION_POOL)[: max(2, 16 - len(delta))]


def usage_object(
    input_tokens: int, output_tokens: int, *, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(request: Mapping[str, Any], *, model: str, response_id: str | None = None) -> dict[str, Any]:
    """The ``response`` of ``response.created``: request settings echoed, empty output, no usage."""
    reasoning = request.get("reasoning")
    text = request.get("text")
    return {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)),
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "prompt_cache_retention": None,
        "reasoning": {
            "effort": (reasoning or {}).get("effort", "medium") if isinstance(reasoning, Mapping) else "medium",
            "summary": (reasoning or {}).get("summary") if isinstance(reasoning, Mapping) else None,
        },
        "safety_identifier": None,
        "service_tier": "auto",
        "store": False,
        "temperature": 1.0,
        "text": {
            "format": (text or {}).get("format", {"type": "text"}) if isinstance(text, Mapping) else {"type": "text"},
            "verbosity": (text or {}).get("verbosity", "medium") if isinstance(text, Mapping) else "medium",
        },
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }


class EventStream:
    """Makes events with increasing ``sequence_number`` and tracks the finished output items.

    Each item method yields that item's events; ``yield from`` them in order (a method's counters,
    e.g. :attr:`output_tokens`, are up to date once its events have all been consumed).
    """

    def __init__(self, response: dict[str, Any], *, obfuscate: bool = True) -> None:
        self.response = response
        self.count = 0  # events made so far: the next ``sequence_number``
        self.output: list[dict[str, Any]] = []
        self.obfuscate = obfuscate
        self.output_tokens = 0
        self.reasoning_tokens = 0

    # -- plumbing -----------------------------------------------------------------------------
    def emit(self, event_type: str, **fields: Any) -> Event:
        event: Event = {"type": event_type, "sequence_number": self.count, **fields}
        self.count += 1
        return event

    def _delta(self, event_type: str, delta: str, where: Mapping[str, Any], **extra: Any) -> Event:
        # Field order as recorded: where, delta, logprobs, obfuscation.
        if self.obfuscate:
            extra["obfuscation"] = _obfuscation(delta)
        return self.emit(event_type, **where, delta=delta, **extra)

    def _snapshot(self, status: str) -> dict[str, Any]:
        return {**self.response, "status": status}

    @property
    def next_index(self) -> int:
        return len(self.output)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Iterator[Event]:
        yield self.emit("response.created", response=self._snapshot("in_progress"))
        yield self.emit("response.in_progress", response=self._snapshot("in_progress"))

    def finish(
        self,
        status: str = "completed",
        *,
        usage: dict[str, Any] | None,
        empty_output: bool = False,
        error: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
    ) -> Iterator[Event]:
        """The terminal event: ``response.completed`` / ``.incomplete`` / ``.failed``."""
        final = self._snapshot(status)
        final["output"] = [] if empty_output else list(self.output)
        final["usage"] = usage
        final["error"] = error
        final["incomplete_details"] = {"reason": incomplete_reason} if incomplete_reason else None
        event_type = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
            status, "response.failed"
        )
        yield self.emit(event_type, response=final)

    def error_event(self, code: str, message: str, *, flat: bool = False) -> Iterator[Event]:
        """An in-stream ``error`` event (nested as recorded from the API, or flat as the SDK types it)."""
        if flat:
            yield self.emit("error", code=code, message=message, param=None)
        else:
            yield self.emit("error", error={"type": code, "code": code, "message": message, "param": None})

    # -- items --------------------------------------------------------------------------------
    def message(
        self,
        pieces: Sequence[str],
        *,
        phase: str | None = None,
        annotations: Sequence[dict[str, Any]] = (),
        status: str = "completed",
    ) -> Iterator[Event]:
        """An assistant message with one ``output_text`` part streamed as ``pieces``."""
        index = self.next_index
        item_id = new_id("msg")
        item: dict[str, Any] = {"id": item_id, "type": "message", "status": "in_progress", "content": []}
        if phase is not None:
            item["phase"] = phase
        item["role"] = "assistant"
        yield self.emit("response.output_item.added", output_index=index, item=item)
        empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        yield self.emit("response.content_part.added", **where, part=empty_part)
        for piece in pieces:
            yield self._delta("response.output_text.delta", piece, where, logprobs=[])
        self.output_tokens += len(pieces)
        text = "".join(pieces)
        for number, annotation in enumerate(annotations):
            yield self.emit(
                "response.output_text.annotation.added", **where, annotation_index=number, annotation=annotation
            )
        yield self.emit("response.output_text.done", **where, text=text, logprobs=[])
        part = {"type": "output_text", "annotations": list(annotations), "logprobs": [], "text": text}
        yield self.emit("response.content_part.done", **where, part=part)
        yield from self._done(index, {**item, "status": status, "content": [part]})

    def refusal(self, pieces: Sequence[str]) -> Iterator[Event]:
        index = self.next_index
        item_id = new_id("msg")
        item = {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        yield self.emit("response.output_item.added", output_index=index, item=item)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        yield self.emit("response.content_part.added", **where, part={"type": "refusal", "refusal": ""})
        for piece in pieces:
            yield self._delta("response.refusal.delta", piece, where)
        self.output_tokens += len(pieces)
        refusal = "".join(pieces)
        yield self.emit("response.refusal.done", **where, refusal=refusal)
        part = {"type": "refusal", "refusal": refusal}
        yield self.emit("response.content_part.done", **where, part=part)
        yield from self._done(index, {**item, "status": "completed", "content": [part]})

    def reasoning(
        self, summaries: Sequence[Sequence[str]], *, encrypted_content: str | None, tokens: int | None = None
    ) -> Iterator[Event]:
        """A reasoning item whose summary parts stream as ``reasoning_summary_part``/``_text`` events."""
        index = self.next_index
        item_id = new_id("rs")
        added: dict[str, Any] = {"id": item_id, "type": "reasoning"}
        if encrypted_content is not None:
            added["encrypted_content"] = encrypted_content
        added["summary"] = []
        yield self.emit("response.output_item.added", output_index=index, item=added)
        where = {"item_id": item_id, "output_index": index}
        parts: list[dict[str, str]] = []
        for number, pieces in enumerate(summaries):
            yield self.emit(
                "response.reasoning_summary_part.added",
                **where,
                summary_index=number,
                part={"type": "summary_text", "text": ""},
            )
            for piece in pieces:
                yield self._delta("response.reasoning_summary_text.delta", piece, {**where, "summary_index": number})
            text = "".join(pieces)
            yield self.emit("response.reasoning_summary_text.done", **where, summary_index=number, text=text)
            part = {"type": "summary_text", "text": text}
            yield self.emit("response.reasoning_summary_part.done", **where, summary_index=number, part=part)
            parts.append(part)
        spent = tokens if tokens is not None else 4 * sum(len(p) for p in summaries) + 16
        self.reasoning_tokens += spent
        self.output_tokens += spent
        yield from self._done(index, {**added, "summary": parts})

    def function_call(
        self, name: str, arguments: str, pieces: Sequence[str] | None, *, call_id: str
    ) -> Iterator[Event]:
        """A function call: ``arguments: ""`` when added, then argument deltas (or none) and ``.done``."""
        index = self.next_index
        item_id = new_id("fc")
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id,
            "name": name,
        }
        yield self.emit("response.output_item.added", output_index=index, item=item)
        where = {"item_id": item_id, "output_index": index}
        for piece in pieces or ():
            yield self._delta("response.function_call_arguments.delta", piece, where)
        self.output_tokens += max(1, len(pieces or ()))
        yield self.emit("response.function_call_arguments.done", **where, name=name, arguments=arguments)
        yield from self._done(index, {**item, "status": "completed", "arguments": arguments})

    def custom_tool_call(self, name: str, tool_input: str, pieces: Sequence[str], *, call_id: str) -> Iterator[Event]:
        index = self.next_index
        item_id = new_id("ctc")
        item = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": "in_progress",
            "call_id": call_id,
            "input": "",
            "name": name,
        }
        yield self.emit("response.output_item.added", output_index=index, item=item)
        where = {"item_id": item_id, "output_index": index}
        for piece in pieces:
            yield self._delta("response.custom_tool_call_input.delta", piece, where)
        self.output_tokens += max(1, len(pieces))
        yield self.emit("response.custom_tool_call_input.done", **where, input=tool_input)
        yield from self._done(index, {**item, "status": "completed", "input": tool_input})

    def web_search_call(self, query: str) -> Iterator[Event]:
        index = self.next_index
        item_id = new_id("ws")
        yield self.emit(
            "response.output_item.added",
            output_index=index,
            item={"id": item_id, "type": "web_search_call", "status": "in_progress"},
        )
        for phase in ("in_progress", "searching", "completed"):
            yield self.emit(f"response.web_search_call.{phase}", output_index=index, item_id=item_id)
        action = {"type": "search", "query": query, "sources": [{"type": "url", "url": "https://example.com/"}]}
        yield from self._done(
            index, {"id": item_id, "type": "web_search_call", "status": "completed", "action": action}
        )

    def _done(self, index: int, item: dict[str, Any]) -> Iterator[Event]:
        yield self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)
