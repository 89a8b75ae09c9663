"""Responses stream events → ``chat.completion.chunk`` dicts (a pure state machine).

Feed every decoded upstream event to :meth:`ChatStreamTranslator.feed` and write the chunks it
returns; call :meth:`ChatStreamTranslator.finish` when the upstream bytes end.

What comes out (protocol.md §3):

* every chunk has the same ``id``/``created``/``model`` and ``object: "chat.completion.chunk"``;
  with ``include_usage`` every chunk has ``usage: null`` and a final ``choices: []`` chunk has usage;
* the first delta carries ``role: "assistant"`` (merged into the first content/tool delta);
* text deltas → ``delta.content``; refusal deltas → ``delta.refusal``; ``url_citation`` annotations →
  ``delta.annotations`` in Chat's shape (other annotation types are dropped);
* function calls → ``delta.tool_calls``: ``index`` counts calls 0, 1, 2 … in arrival order; the first
  delta of a call has ``id`` (the ``call_id``), ``type``, ``function.name`` and ``arguments: ""``;
  later deltas only ``{index, function: {arguments}}``;
* ``custom_tool_call`` items (a client-declared ``custom`` tool) → one ``tool_calls`` delta with
  ``type: "custom"`` and ``custom: {name, input}`` when the item is done (Chat's custom-tool shape);
* hosted-tool items (web/file search, code interpreter, image generation, MCP, …) produce nothing;
* ``.done`` events and ``output_item.done`` items only add what the deltas had not carried yet
  (text, refusal, arguments and reasoning are counted per part), so a server that sends only
  ``.done`` events still streams everything and nothing is ever duplicated; items that show up only in
  the terminal ``response.output`` are streamed the same way;
* reasoning (summary parts and raw ``reasoning_text``), per ``reasoning_format``:
  ``reasoning_content`` → ``delta.reasoning_content``; ``think`` → ``<think>\\n…\\n</think>\\n\\n`` in
  ``content``, closed before the first answer token/tool call (or at the end); ``hidden`` → nothing.
  Consecutive parts are separated by a blank line;
* exactly one chunk with ``finish_reason`` (empty delta), unless the stream failed: then exactly one
  ``{"error": {...}}`` payload and no finish chunk. After a terminal event further events are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from codexgate.errors import APIError
from codexgate.protocol import shapes as ev
from codexgate.protocol.chat_chunks import THINK_CLOSE, ChatChunks, Chunk
from codexgate.protocol.outcome import (
    chat_annotation,
    chat_usage,
    error_from_error_event,
    error_from_failed_response,
    finish_reason_for,
    protocol_failure,
    stream_incomplete,
)

_Handler = Callable[["ChatStreamTranslator", dict[str, Any]], list[Chunk]]


class _Call:
    __slots__ = ("emitted", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.emitted = 0  # characters of arguments streamed so far


def _key(event: Mapping[str, Any]) -> Any:
    index = event.get("output_index")
    return event.get("item_id") if index is None else index


class ChatStreamTranslator(ChatChunks):
    """Translate one Responses event stream into Chat Completions chunks."""

    def __init__(
        self,
        *,
        model: str,
        include_usage: bool,
        reasoning_format: str = "reasoning_content",
        completion_id: str,
        created: int,
        legacy_functions: bool = False,
    ) -> None:
        super().__init__(
            model=model,
            include_usage=include_usage,
            reasoning_format=reasoning_format,
            completion_id=completion_id,
            created=created,
        )
        self.done = False
        self.error: APIError | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.response_id: str | None = None
        self.rate_limits: dict[str, Any] | None = None
        #: the request used the legacy ``functions``: its one call goes out as ``delta.function_call``
        self.legacy_functions = legacy_functions
        self._calls: dict[Any, _Call] = {}  # output key → call
        self._seen: set[Any] = set()  # output keys that appeared in item events

    # -- public -----------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[Chunk]:
        """Chunks for one upstream event (often exactly one, possibly none)."""
        if self.done:
            return []
        handler = _HANDLERS.get(event.get("type"))  # type: ignore[arg-type]
        if handler is None:
            return []
        return handler(self, event)

    def finish(self) -> list[Chunk]:
        """The upstream bytes ended: an error payload if no terminal event was seen. Idempotent."""
        if self.done:
            return []
        return self._fail(stream_incomplete())

    def _fail(self, error: APIError) -> list[Chunk]:
        self.done = True
        self.error = error
        return [{"error": error.to_dict()}]

    # -- deltas -----------------------------------------------------------------------------

    def _on_text_delta(self, event: dict[str, Any]) -> list[Chunk]:
        delta = event.get("delta")
        if not delta or type(delta) is not str:
            return []
        index = event.get("output_index")
        key = ("t", event.get("item_id") if index is None else index, event.get("content_index"))
        emitted = self._emitted.get(key)
        if emitted is None or self._think_open or not self._role_sent:
            return self._text(key, delta)
        self._emitted[key] = emitted + len(delta)  # the steady state of an answer: one plain chunk
        self.has_output = True
        return [self._chunk({"content": delta})]

    def _on_refusal_delta(self, event: dict[str, Any]) -> list[Chunk]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        key = ("r", _key(event), event.get("content_index"))
        self._emitted[key] = self._emitted.get(key, 0) + len(delta)
        return self._answer("refusal", delta)

    def _on_summary_delta(self, event: dict[str, Any]) -> list[Chunk]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        return self._reasoning(("s", _key(event), event.get("summary_index")), delta)

    def _on_reasoning_text_delta(self, event: dict[str, Any]) -> list[Chunk]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        return self._reasoning(("c", _key(event), event.get("content_index")), delta)

    def _on_arguments_delta(self, event: dict[str, Any]) -> list[Chunk]:
        delta = event.get("delta")
        call = self._calls.get(_key(event))
        if call is None or not delta or not isinstance(delta, str):
            return []  # a call we have no header for is streamed whole at output_item.done
        call.emitted += len(delta)
        return self._arguments(call, delta)

    # -- done events: only what the deltas did not carry ----------------------------------

    def _rest_text(self, key: Any, full: Any) -> list[Chunk]:
        rest = self._rest(key, full)
        return self._text(key, rest) if rest else []

    def _rest_refusal(self, key: Any, full: Any) -> list[Chunk]:
        rest = self._rest(key, full)
        return self._answer("refusal", rest) if rest else []

    def _rest_reasoning(self, key: Any, full: Any) -> list[Chunk]:
        if not isinstance(full, str):
            return []
        emitted = self._emitted.get(key, 0)
        if len(full) <= emitted:
            return []
        return self._reasoning(key, full[emitted:])

    def _on_text_done(self, event: dict[str, Any]) -> list[Chunk]:
        return self._rest_text(("t", _key(event), event.get("content_index")), event.get("text"))

    def _on_refusal_done(self, event: dict[str, Any]) -> list[Chunk]:
        return self._rest_refusal(("r", _key(event), event.get("content_index")), event.get("refusal"))

    def _on_summary_done(self, event: dict[str, Any]) -> list[Chunk]:
        key = ("s", _key(event), event.get("summary_index"))
        return self._rest_reasoning(key, event.get("text"))

    def _on_summary_part_done(self, event: dict[str, Any]) -> list[Chunk]:
        part = event.get("part")
        text = part.get("text") if isinstance(part, Mapping) else None
        return self._rest_reasoning(("s", _key(event), event.get("summary_index")), text)

    def _on_reasoning_text_done(self, event: dict[str, Any]) -> list[Chunk]:
        key = ("c", _key(event), event.get("content_index"))
        return self._rest_reasoning(key, event.get("text"))

    def _on_content_part_done(self, event: dict[str, Any]) -> list[Chunk]:
        part = event.get("part")
        if not isinstance(part, Mapping):
            return []
        return self._part(_key(event), event.get("content_index"), part)

    def _part(self, key: Any, index: Any, part: Mapping[str, Any]) -> list[Chunk]:
        kind = part.get("type")
        if kind == "output_text":
            return self._rest_text(("t", key, index), part.get("text"))
        if kind == "refusal":
            return self._rest_refusal(("r", key, index), part.get("refusal"))
        if kind == "reasoning_text":
            return self._rest_reasoning(("c", key, index), part.get("text"))
        return []

    def _on_arguments_done(self, event: dict[str, Any]) -> list[Chunk]:
        call = self._calls.get(_key(event))
        if call is None:
            return []
        return self._rest_arguments(call, event.get("arguments"))

    def _rest_arguments(self, call: _Call, full: Any) -> list[Chunk]:
        if not isinstance(full, str) or len(full) <= call.emitted:
            return []
        rest = full[call.emitted :]
        call.emitted = len(full)
        return self._arguments(call, rest)

    def _arguments(self, call: _Call, text: str) -> list[Chunk]:
        if self.legacy_functions:  # one call only, as the legacy API has it
            return self._answer("function_call", {"arguments": text}) if call.index == 0 else []
        return self._answer("tool_calls", [{"index": call.index, "function": {"arguments": text}}])

    def _on_annotation(self, event: dict[str, Any]) -> list[Chunk]:
        offset = self._part_offsets.get(("t", _key(event), event.get("content_index")), self._content_chars)
        annotation = chat_annotation(event.get("annotation"), offset)
        if annotation is None:
            return []
        return [self._output({"annotations": [annotation]})]

    # -- items ------------------------------------------------------------------------------

    def _start_call(self, key: Any, item: Mapping[str, Any]) -> list[Chunk]:
        call = self._calls[key] = _Call(len(self._calls))
        name = item.get("name") or ""
        if self.legacy_functions:
            chunks = self._answer("function_call", {"name": name, "arguments": ""}) if call.index == 0 else []
        else:
            header = {
                "index": call.index,
                "id": item.get("call_id") or item.get("id") or "",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            chunks = self._answer("tool_calls", [header])
        return chunks + self._rest_arguments(call, item.get("arguments"))

    def _on_item_added(self, event: dict[str, Any]) -> list[Chunk]:
        item = event.get("item")
        key = _key(event)
        self._seen.add(key)
        if isinstance(item, Mapping) and item.get("type") == "function_call" and key not in self._calls:
            return self._start_call(key, item)
        return []

    def _on_item_done(self, event: dict[str, Any]) -> list[Chunk]:
        item = event.get("item")
        key = _key(event)
        self._seen.add(key)
        return self._item(key, item) if isinstance(item, Mapping) else []

    def _item(self, key: Any, item: Mapping[str, Any]) -> list[Chunk]:
        kind = item.get("type")
        if kind == "message":
            chunks: list[Chunk] = []
            content = item.get("content")
            if isinstance(content, list):
                for index, part in enumerate(content):
                    if isinstance(part, Mapping):
                        chunks += self._part(key, index, part)
            return chunks
        if kind == "function_call":
            call = self._calls.get(key)
            if call is None:
                return self._start_call(key, item)
            return self._rest_arguments(call, item.get("arguments"))
        if kind == "reasoning":
            return self._reasoning_item(key, item)
        if kind == "custom_tool_call" and key not in self._calls:
            call = self._calls[key] = _Call(len(self._calls))
            custom = {"name": item.get("name") or "", "input": item.get("input") or ""}
            header = {"index": call.index, "id": item.get("call_id") or "", "type": "custom", "custom": custom}
            return self._answer("tool_calls", [header])
        return []

    def _reasoning_item(self, key: Any, item: Mapping[str, Any]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for field, tag in (("summary", "s"), ("content", "c")):
            parts = item.get(field)
            if isinstance(parts, list):
                for index, part in enumerate(parts):
                    if isinstance(part, Mapping):
                        chunks += self._rest_reasoning((tag, key, index), part.get("text"))
        return chunks

    # -- response lifecycle -----------------------------------------------------------------

    def _on_response_started(self, event: dict[str, Any]) -> list[Chunk]:
        response = event.get("response")
        if isinstance(response, Mapping) and isinstance(response.get("id"), str):
            self.response_id = response["id"]
        return []

    def _on_rate_limits(self, event: dict[str, Any]) -> list[Chunk]:
        self.rate_limits = event
        return []

    def _on_completed(self, event: dict[str, Any]) -> list[Chunk]:
        response = event.get("response")
        chunks: list[Chunk] = []
        if isinstance(response, Mapping):
            self._on_response_started(event)
            usage = response.get("usage")
            self.usage = dict(usage) if isinstance(usage, Mapping) else None
            output = response.get("output")
            if isinstance(output, list):  # items only the final object carries
                for index, item in enumerate(output):
                    if isinstance(item, Mapping) and index not in self._seen and item.get("id") not in self._seen:
                        chunks += self._item(index, item)
        if self._think_open:
            self._think_open = False
            chunks.append(self._output({"content": THINK_CLOSE.rstrip("\n")}))
        if not self._role_sent:
            self._role_sent = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        self.finish_reason = finish_reason_for(response if isinstance(response, Mapping) else None, bool(self._calls))
        if self.legacy_functions and self.finish_reason == "tool_calls":
            self.finish_reason = "function_call"
        chunks.append(self._chunk({}, self.finish_reason))
        if self.include_usage:
            chunks.append(
                {
                    "id": self.completion_id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": chat_usage(self.usage),
                }
            )
        self.done = True
        return chunks

    def _on_failed(self, event: dict[str, Any]) -> list[Chunk]:
        response = event.get("response")
        if isinstance(response, Mapping):
            self._on_response_started(event)
            usage = response.get("usage")
            self.usage = dict(usage) if isinstance(usage, Mapping) else None
        return self._fail(error_from_failed_response(response if isinstance(response, Mapping) else None))

    def _on_error(self, event: dict[str, Any]) -> list[Chunk]:
        return self._fail(error_from_error_event(event))

    def _on_protocol_error(self, event: dict[str, Any]) -> list[Chunk]:
        message = event.get("message")
        return self._fail(protocol_failure(message if isinstance(message, str) else "Malformed upstream event."))


#: event type -> handler (looked up once per event; the handlers take the translator first).
_HANDLERS: dict[str, _Handler] = {
    ev.OUTPUT_TEXT_DELTA: ChatStreamTranslator._on_text_delta,
    ev.SUMMARY_TEXT_DELTA: ChatStreamTranslator._on_summary_delta,
    ev.REASONING_TEXT_DELTA: ChatStreamTranslator._on_reasoning_text_delta,
    ev.ARGUMENTS_DELTA: ChatStreamTranslator._on_arguments_delta,
    ev.REFUSAL_DELTA: ChatStreamTranslator._on_refusal_delta,
    ev.OUTPUT_TEXT_DONE: ChatStreamTranslator._on_text_done,
    ev.REFUSAL_DONE: ChatStreamTranslator._on_refusal_done,
    ev.ARGUMENTS_DONE: ChatStreamTranslator._on_arguments_done,
    ev.SUMMARY_TEXT_DONE: ChatStreamTranslator._on_summary_done,
    ev.SUMMARY_PART_DONE: ChatStreamTranslator._on_summary_part_done,
    ev.REASONING_TEXT_DONE: ChatStreamTranslator._on_reasoning_text_done,
    ev.CONTENT_PART_DONE: ChatStreamTranslator._on_content_part_done,
    ev.ANNOTATION_ADDED: ChatStreamTranslator._on_annotation,
    ev.OUTPUT_ITEM_ADDED: ChatStreamTranslator._on_item_added,
    ev.OUTPUT_ITEM_DONE: ChatStreamTranslator._on_item_done,
    ev.RESPONSE_CREATED: ChatStreamTranslator._on_response_started,
    ev.RESPONSE_IN_PROGRESS: ChatStreamTranslator._on_response_started,
    ev.RESPONSE_QUEUED: ChatStreamTranslator._on_response_started,
    ev.RESPONSE_COMPLETED: ChatStreamTranslator._on_completed,
    ev.RESPONSE_INCOMPLETE: ChatStreamTranslator._on_completed,
    ev.RESPONSE_FAILED: ChatStreamTranslator._on_failed,
    ev.ERROR: ChatStreamTranslator._on_error,
    ev.PROTOCOL_ERROR: ChatStreamTranslator._on_protocol_error,
    ev.RATE_LIMITS: ChatStreamTranslator._on_rate_limits,
}
