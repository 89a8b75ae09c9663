"""Building ``chat.completion.chunk`` dicts: the part of the stream translator that knows Chat's shape.

:class:`ChatChunks` holds what every chunk of one answer shares (``id``, ``created``, ``model``,
``usage: null`` with ``include_usage``) and the state of the content stream: whether the role was
sent (it rides on the first delta), whether a ``<think>`` block is open, and how many characters of
each part and of the whole content went out (for ``.done`` events and annotation offsets).
:class:`~codexgate.protocol.stream_translator.ChatStreamTranslator` builds on it.
"""

from __future__ import annotations

from typing import Any

from codexgate.protocol import shapes as ev

THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"
REASONING_SEPARATOR = "\n\n"
Chunk = dict[str, Any]


class ChatChunks:
    """Chunk building for one answer (see the module docstring)."""

    def __init__(
        self,
        *,
        model: str,
        include_usage: bool,
        reasoning_format: str = "reasoning_content",
        completion_id: str,
        created: int,
    ) -> None:
        if reasoning_format not in ev.REASONING_FORMATS:
            raise ValueError(f"reasoning_format must be one of {ev.REASONING_FORMATS}, not {reasoning_format!r}")
        self.model = model
        self.include_usage = include_usage
        self.reasoning_format = reasoning_format
        self.completion_id = completion_id
        self.created = created
        self.has_output = False
        self._role_sent = False
        self._think_open = False
        self._emitted: dict[Any, int] = {}  # (kind, output key, part index) → characters streamed
        self._last_reasoning: Any = None
        self._content_chars = 0  # characters sent in delta.content so far
        self._part_offsets: dict[Any, int] = {}  # text part key → its first character's content index

    # -- chunk building ---------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
        chunk: Chunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        content = delta.get("content")
        if content:
            self._content_chars += len(content)
        return chunk

    def _output(self, delta: dict[str, Any]) -> Chunk:
        """A content/reasoning/tool delta; the first one also carries the role."""
        self.has_output = True
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        return self._chunk(delta)

    def _answer(self, field: str, value: Any) -> list[Chunk]:
        """Answer output (content, refusal, tool calls): closes an open ``<think>`` block first."""
        if self._think_open:
            self._think_open = False
            if field == "content":
                return [self._output({"content": THINK_CLOSE + value})]
            return [self._output({"content": THINK_CLOSE}), self._output({field: value})]
        return [self._output({field: value})]

    def _text(self, key: Any, text: str) -> list[Chunk]:
        self._emitted[key] = self._emitted.get(key, 0) + len(text)
        if self._think_open or not self._role_sent:
            chunks = self._answer("content", text)
        else:
            self.has_output = True
            chunks = [self._chunk({"content": text})]
        if key not in self._part_offsets:  # where this part starts in the content (annotation indexes)
            self._part_offsets[key] = self._content_chars - len(text)
        return chunks

    def _rest(self, key: Any, full: Any) -> str:
        """The part of ``full`` not streamed yet under ``key`` (and record it as streamed)."""
        if not isinstance(full, str):
            return ""
        emitted = self._emitted.get(key, 0)
        if len(full) <= emitted:
            return ""
        self._emitted[key] = len(full)
        return full[emitted:]

    def _reasoning(self, key: Any, text: str) -> list[Chunk]:
        self._emitted[key] = self._emitted.get(key, 0) + len(text)
        if self.reasoning_format == "hidden":
            return []
        new_part = key != self._last_reasoning
        had_reasoning = self._last_reasoning is not None
        self._last_reasoning = key
        if self.reasoning_format == "think":
            if not self._think_open:
                self._think_open = True
                return [self._output({"content": THINK_OPEN + text})]
            return [self._output({"content": REASONING_SEPARATOR + text if new_part else text})]
        if new_part and had_reasoning:
            text = REASONING_SEPARATOR + text
        return [self._output({"reasoning_content": text})]
