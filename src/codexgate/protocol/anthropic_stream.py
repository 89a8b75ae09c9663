"""Responses stream events → Anthropic Messages SSE frames (a pure state machine).

Feed every decoded upstream event to :meth:`MessagesStreamTranslator.feed` and write the bytes it
returns (one ``event: X\\ndata: {...}\\n\\n`` frame per list element); call
:meth:`~MessagesStreamTranslator.finish` when the upstream bytes end, and
:meth:`~MessagesStreamTranslator.fail` for a failure the translator cannot see (a broken connection).

What comes out (protocol.md §7):

* ``message_start`` (empty content, usage zeros, the model the client asked for, the message id
  passed in), sent together with the first block, or at the end for an answer with no content, so
  that nothing is written before the backend produced something (the caller may still fail over);
* one content block per output item, opened and closed in order with increasing ``index``:
  reasoning → ``thinking`` (``thinking_delta``\\ s from the summary deltas, parts joined by a blank
  line, then a ``signature_delta`` made from the item's ``encrypted_content`` at ``output_item.done``;
  with display ``omitted`` the text stays empty but the signature is sent; with ``none`` — thinking
  disabled — reasoning items produce nothing); message text and refusals → ``text``
  (``text_delta``); ``function_call`` → ``tool_use`` (``input: {}`` then ``input_json_delta``\\ s;
  ``id`` = ``call_id``); ``web_search_call`` → ``server_tool_use`` and ``web_search_tool_result``
  (:func:`.web_search_blocks`). Other hosted items produce nothing;
* the first upstream delta produces the first ``content_block_delta`` in the same call (no buffering);
  ``.done`` events and finished items only add what the deltas had not carried, so a server that sends
  only ``.done`` events still produces everything and nothing is duplicated; items that show up only
  in the terminal ``response.output`` are sent then;
* ``message_delta`` (stop reason, usage: :func:`.anthropic_usage`) and ``message_stop``, exactly once;
* an ``error`` event, a ``response.failed``, undecodable data, or the end of the bytes without a
  terminal event → one ``event: error`` frame (:func:`.error_event`) and nothing after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from codexgate.errors import APIError
from codexgate.protocol import shapes as ev
from codexgate.protocol.anthropic_blocks import (
    anthropic_usage,
    frame,
    message_shell,
    stop_reason_for,
    web_search_blocks,
    zero_usage,
)
from codexgate.protocol.anthropic_errors import error_event
from codexgate.protocol.anthropic_frames import (
    DELTA_HEAD,
    DELTA_TAIL,
    MESSAGE_STOP,
    TEXT_MID,
    MessageFrames,
    ReasoningSigner,
)
from codexgate.protocol.outcome import (
    error_from_error_event,
    error_from_failed_response,
    protocol_failure,
    stream_incomplete,
)

__all__ = ["MessagesStreamTranslator", "ReasoningSigner"]

_Handler = Callable[["MessagesStreamTranslator", dict[str, Any]], list[bytes]]


def _key(event: Mapping[str, Any]) -> Any:
    index = event.get("output_index")
    return event.get("item_id") if index is None else index


class MessagesStreamTranslator(MessageFrames):
    """Translate one Responses event stream into Anthropic Messages SSE frames."""

    # -- public -----------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[bytes]:
        """The frames for one upstream event (often exactly one, possibly none)."""
        if self.done:
            return []
        handler = _HANDLERS.get(event.get("type"))  # type: ignore[arg-type]
        return [] if handler is None else handler(self, event)

    def finish(self) -> list[bytes]:
        """The upstream bytes ended: an error frame if no terminal event was seen. Idempotent."""
        return [] if self.done else self.fail(stream_incomplete())

    def fail(self, error: APIError) -> list[bytes]:
        """End the stream with ``event: error`` (nothing after it). No-op once done."""
        if self.done:
            return []
        self.done = True
        self.error = error
        return [error_event(error)]

    # -- blocks -----------------------------------------------------------------------------

    def _on_text_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta")
        if not delta or type(delta) is not str:
            return []
        index = event.get("output_index")
        key = event.get("item_id") if index is None else index
        part_key = ("t", key, event.get("content_index"))
        block = self._open
        if block is not None and block.key == key and block.kind == "text":  # the steady state
            self._emitted[part_key] = self._emitted.get(part_key, 0) + len(delta)
            return [DELTA_HEAD + b"%d" % block.index + TEXT_MID + orjson.dumps(delta) + DELTA_TAIL]
        return self._text(key, part_key, delta)

    def _on_refusal_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._refused = True
        key = _key(event)
        return self._text(key, ("r", key, event.get("content_index")), delta)

    def _rest_text(self, key: Any, part_key: Any, full: Any) -> list[bytes]:
        rest = self._rest(part_key, full)
        return self._text(key, part_key, rest) if rest else []

    def _on_text_done(self, event: dict[str, Any]) -> list[bytes]:
        key = _key(event)
        return self._rest_text(key, ("t", key, event.get("content_index")), event.get("text"))

    def _on_refusal_done(self, event: dict[str, Any]) -> list[bytes]:
        key = _key(event)
        full = event.get("refusal")
        if isinstance(full, str) and full:
            self._refused = True
        return self._rest_text(key, ("r", key, event.get("content_index")), full)

    def _part(self, key: Any, index: Any, part: Mapping[str, Any]) -> list[bytes]:
        kind = part.get("type")
        if kind == "output_text":
            return self._rest_text(key, ("t", key, index), part.get("text"))
        if kind == "refusal":
            refusal = part.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._refused = True
            return self._rest_text(key, ("r", key, index), refusal)
        if kind == "reasoning_text":
            return self._rest_thinking(key, ("c", key, index), part.get("text"))
        return []

    def _on_content_part_done(self, event: dict[str, Any]) -> list[bytes]:
        part = event.get("part")
        return self._part(_key(event), event.get("content_index"), part) if isinstance(part, Mapping) else []

    # -- thinking ---------------------------------------------------------------------------

    def _rest_thinking(self, key: Any, part_key: Any, full: Any) -> list[bytes]:
        rest = self._rest(part_key, full)
        return self._thinking(key, part_key, rest) if rest else []

    def _on_summary_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        key = _key(event)
        return self._thinking(key, ("s", key, event.get("summary_index")), delta)

    def _on_reasoning_text_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        key = _key(event)
        return self._thinking(key, ("c", key, event.get("content_index")), delta)

    def _on_summary_done(self, event: dict[str, Any]) -> list[bytes]:
        key = _key(event)
        return self._rest_thinking(key, ("s", key, event.get("summary_index")), event.get("text"))

    def _on_summary_part_done(self, event: dict[str, Any]) -> list[bytes]:
        part = event.get("part")
        text = part.get("text") if isinstance(part, Mapping) else None
        key = _key(event)
        return self._rest_thinking(key, ("s", key, event.get("summary_index")), text)

    def _on_reasoning_text_done(self, event: dict[str, Any]) -> list[bytes]:
        key = _key(event)
        return self._rest_thinking(key, ("c", key, event.get("content_index")), event.get("text"))

    def _reasoning_done(self, key: Any, item: Mapping[str, Any]) -> list[bytes]:
        if self.thinking == "none":
            return []
        frames = self._thinking_block(key)
        for field, tag in (("summary", "s"), ("content", "c")):
            parts = item.get(field)
            if isinstance(parts, list):
                for index, part in enumerate(parts):
                    if isinstance(part, Mapping):
                        frames += self._rest_thinking(key, (tag, key, index), part.get("text"))
        block = self._blocks[key]
        encrypted = item.get("encrypted_content")
        if self.sign_reasoning is not None and isinstance(encrypted, str) and encrypted:
            item_id = item.get("id")
            signature = self.sign_reasoning(encrypted, item_id if isinstance(item_id, str) else None)
            delta = {"type": "signature_delta", "signature": signature}
            frames.append(
                frame("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta})
            )
        frames.append(self._stop(block))
        return frames

    # -- tool use ---------------------------------------------------------------------------

    def _start_call(self, key: Any, item: Mapping[str, Any]) -> list[bytes]:
        self._tool_use = True
        call_id = item.get("call_id") or item.get("id") or ""
        content_block: dict[str, Any] = {"type": "tool_use", "id": call_id, "name": item.get("name") or "", "input": {}}
        return self._begin(key, "tool_use", content_block) + self._rest_arguments(key, item.get("arguments"))

    def _rest_arguments(self, key: Any, full: Any) -> list[bytes]:
        block = self._current(key, "tool_use")
        rest = self._rest(("a", key), full)
        if block is None or not rest:
            return []
        self._emitted[("a", key)] = len(full)
        return [self._arguments(block, rest)]

    def _on_arguments_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta")
        key = _key(event)
        block = self._current(key, "tool_use")
        if block is None or not delta or not isinstance(delta, str):
            return []  # a call with no header yet is sent whole at output_item.done
        self._emitted[("a", key)] = self._emitted.get(("a", key), 0) + len(delta)
        return [self._arguments(block, delta)]

    def _on_arguments_done(self, event: dict[str, Any]) -> list[bytes]:
        return self._rest_arguments(_key(event), event.get("arguments"))

    # -- items ------------------------------------------------------------------------------

    def _on_item_added(self, event: dict[str, Any]) -> list[bytes]:
        item = event.get("item")
        key = _key(event)
        self._seen.add(key)
        if not isinstance(item, Mapping) or key in self._blocks:
            return []
        kind = item.get("type")
        if kind == "function_call":
            return self._start_call(key, item)
        if kind == "reasoning" and self.thinking != "none":
            return self._thinking_block(key)
        return []

    def _on_item_done(self, event: dict[str, Any]) -> list[bytes]:
        item = event.get("item")
        key = _key(event)
        self._seen.add(key)
        return self._item(key, item) if isinstance(item, Mapping) else []

    def _close(self, key: Any) -> list[bytes]:
        block = self._blocks.get(key)
        return [self._stop(block)] if block is not None and block.open else []

    def _item(self, key: Any, item: Mapping[str, Any]) -> list[bytes]:
        kind = item.get("type")
        if kind == "message":
            frames: list[bytes] = []
            content = item.get("content")
            if isinstance(content, list):
                for index, part in enumerate(content):
                    if isinstance(part, Mapping):
                        frames += self._part(key, index, part)
            return frames + self._close(key)
        if kind == "function_call":
            if key in self._blocks:
                return self._rest_arguments(key, item.get("arguments")) + self._close(key)
            return self._start_call(key, item) + self._close(key)
        if kind == "reasoning":
            return self._reasoning_done(key, item)
        if kind == "web_search_call" and key not in self._blocks:
            use, result = web_search_blocks(item)
            query = use["input"]
            use = {**use, "input": {}}
            frames = self._begin(key, "server_tool_use", use)
            block = self._blocks[key]
            if query:
                frames.append(self._arguments(block, orjson.dumps(query).decode()))
            frames.append(self._stop(block))
            frames += self._begin(("result", key), "web_search_tool_result", result)
            frames.append(self._stop(self._blocks[("result", key)]))
            return frames
        return []

    # -- response lifecycle -----------------------------------------------------------------

    def _on_response_started(self, event: dict[str, Any]) -> list[bytes]:
        response = event.get("response")
        if isinstance(response, Mapping) and isinstance(response.get("id"), str):
            self.response_id = response["id"]
        return []

    def _on_rate_limits(self, event: dict[str, Any]) -> list[bytes]:
        self.rate_limits = event
        return []

    def _on_completed(self, event: dict[str, Any]) -> list[bytes]:
        response = event.get("response")
        frames: list[bytes] = []
        if isinstance(response, Mapping):
            self._on_response_started(event)
            usage = response.get("usage")
            self.usage = dict(usage) if isinstance(usage, Mapping) else None
            output = response.get("output")
            if isinstance(output, list):  # items only the final object carries
                for index, item in enumerate(output):
                    if isinstance(item, Mapping) and index not in self._seen and item.get("id") not in self._seen:
                        frames += self._item(index, item)
        if self._open is not None:
            frames.append(self._stop(self._open))
        if not self.started:
            self.started = True
            shell = message_shell(self.message_id, self.model, zero_usage())
            frames.append(frame("message_start", {"type": "message_start", "message": shell}))
        final = response if isinstance(response, Mapping) else None
        self.stop_reason = stop_reason_for(final, tool_use=self._tool_use, refused=self._refused)
        delta = {"stop_reason": self.stop_reason, "stop_sequence": None}
        frames.append(
            frame("message_delta", {"type": "message_delta", "delta": delta, "usage": anthropic_usage(self.usage)})
        )
        frames.append(MESSAGE_STOP)
        self.done = True
        return frames

    def _on_failed(self, event: dict[str, Any]) -> list[bytes]:
        response = event.get("response")
        if isinstance(response, Mapping):
            self._on_response_started(event)
            usage = response.get("usage")
            self.usage = dict(usage) if isinstance(usage, Mapping) else None
        return self.fail(error_from_failed_response(response if isinstance(response, Mapping) else None))

    def _on_error(self, event: dict[str, Any]) -> list[bytes]:
        return self.fail(error_from_error_event(event))

    def _on_protocol_error(self, event: dict[str, Any]) -> list[bytes]:
        message = event.get("message")
        return self.fail(protocol_failure(message if isinstance(message, str) else "Malformed upstream event."))


_HANDLERS: dict[str, _Handler] = {
    ev.OUTPUT_TEXT_DELTA: MessagesStreamTranslator._on_text_delta,
    ev.SUMMARY_TEXT_DELTA: MessagesStreamTranslator._on_summary_delta,
    ev.REASONING_TEXT_DELTA: MessagesStreamTranslator._on_reasoning_text_delta,
    ev.ARGUMENTS_DELTA: MessagesStreamTranslator._on_arguments_delta,
    ev.REFUSAL_DELTA: MessagesStreamTranslator._on_refusal_delta,
    ev.OUTPUT_TEXT_DONE: MessagesStreamTranslator._on_text_done,
    ev.REFUSAL_DONE: MessagesStreamTranslator._on_refusal_done,
    ev.ARGUMENTS_DONE: MessagesStreamTranslator._on_arguments_done,
    ev.SUMMARY_TEXT_DONE: MessagesStreamTranslator._on_summary_done,
    ev.SUMMARY_PART_DONE: MessagesStreamTranslator._on_summary_part_done,
    ev.REASONING_TEXT_DONE: MessagesStreamTranslator._on_reasoning_text_done,
    ev.CONTENT_PART_DONE: MessagesStreamTranslator._on_content_part_done,
    ev.OUTPUT_ITEM_ADDED: MessagesStreamTranslator._on_item_added,
    ev.OUTPUT_ITEM_DONE: MessagesStreamTranslator._on_item_done,
    ev.RESPONSE_CREATED: MessagesStreamTranslator._on_response_started,
    ev.RESPONSE_IN_PROGRESS: MessagesStreamTranslator._on_response_started,
    ev.RESPONSE_QUEUED: MessagesStreamTranslator._on_response_started,
    ev.RESPONSE_COMPLETED: MessagesStreamTranslator._on_completed,
    ev.RESPONSE_INCOMPLETE: MessagesStreamTranslator._on_completed,
    ev.RESPONSE_FAILED: MessagesStreamTranslator._on_failed,
    ev.ERROR: MessagesStreamTranslator._on_error,
    ev.PROTOCOL_ERROR: MessagesStreamTranslator._on_protocol_error,
    ev.RATE_LIMITS: MessagesStreamTranslator._on_rate_limits,
}
