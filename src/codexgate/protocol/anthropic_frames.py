"""Building Anthropic Messages SSE frames: the part of the stream translator that knows the frames.

:class:`MessageFrames` holds what every frame of one answer shares and the block state: whether
``message_start`` went out, which block is open (Anthropic's blocks never interleave: opening one
closes the one before), the next block ``index``, and how many characters of each text, summary and
argument part were sent (so ``.done`` events only add the rest). The hot deltas (text, thinking,
arguments) are written as bytes around one ``orjson.dumps`` of the delta string.
:class:`~codexgate.protocol.anthropic_stream.MessagesStreamTranslator` builds on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from codexgate.errors import APIError
from codexgate.protocol.anthropic_blocks import frame, message_shell, zero_usage

__all__ = ["DELTA_HEAD", "DELTA_TAIL", "MESSAGE_STOP", "TEXT_MID", "Block", "MessageFrames", "ReasoningSigner"]

#: (encrypted_content, reasoning item id) → the thinking block's signature
ReasoningSigner = Callable[[str, str | None], str]

_dumps = orjson.dumps
DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
TEXT_MID = b',"delta":{"type":"text_delta","text":'
_THINKING_MID = b',"delta":{"type":"thinking_delta","thinking":'
_JSON_MID = b',"delta":{"type":"input_json_delta","partial_json":'
DELTA_TAIL = b"}}\n\n"
_STOP_HEAD = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


class Block:
    __slots__ = ("index", "key", "kind", "last_part", "open")

    def __init__(self, index: int, key: Any, kind: str) -> None:
        self.index = index
        self.key = key
        self.kind = kind
        self.open = True
        self.last_part: Any = None  # thinking: the summary part streamed last (for separators)


class MessageFrames:
    """Frame building and block state for one answer (see the module docstring)."""

    def __init__(
        self,
        *,
        model: str,
        message_id: str,
        thinking: str = "summarized",
        sign_reasoning: ReasoningSigner | None = None,
    ) -> None:
        if thinking not in ("summarized", "omitted", "none"):
            raise ValueError(f"thinking must be summarized, omitted or none, not {thinking!r}")
        self.model = model
        self.message_id = message_id
        self.thinking = thinking
        self.sign_reasoning = sign_reasoning
        self.done = False
        self.started = False  # message_start was produced
        self.has_output = False  # a content block was produced
        self.error: APIError | None = None
        self.usage: dict[str, Any] | None = None  # the backend's (Responses) usage
        self.stop_reason: str | None = None
        self.response_id: str | None = None
        self.rate_limits: dict[str, Any] | None = None
        self._open: Block | None = None
        self._blocks: dict[Any, Block] = {}  # output key → its latest block
        self._next_index = 0
        self._emitted: dict[Any, int] = {}  # (tag, output key, part) → characters sent
        self._seen: set[Any] = set()
        self._tool_use = False
        self._refused = False

    def _begin(self, key: Any, kind: str, content_block: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        if not self.started:
            self.started = True
            shell = message_shell(self.message_id, self.model, zero_usage())
            frames.append(frame("message_start", {"type": "message_start", "message": shell}))
        if self._open is not None:
            frames.append(self._stop(self._open))
        block = Block(self._next_index, key, kind)
        self._next_index += 1
        self._open = self._blocks[key] = block
        self.has_output = True
        payload = {"type": "content_block_start", "index": block.index, "content_block": content_block}
        frames.append(frame("content_block_start", payload))
        return frames

    def _stop(self, block: Block) -> bytes:
        block.open = False
        if self._open is block:
            self._open = None
        return _STOP_HEAD + b"%d" % block.index + b"}\n\n"

    def _current(self, key: Any, kind: str) -> Block | None:
        block = self._blocks.get(key)
        return block if block is not None and block.open and block.kind == kind else None

    # -- text and refusals ------------------------------------------------------------------

    def _text(self, key: Any, part_key: Any, text: str) -> list[bytes]:
        self._emitted[part_key] = self._emitted.get(part_key, 0) + len(text)
        block = self._current(key, "text")
        frames = [] if block is not None else self._begin(key, "text", {"type": "text", "text": ""})
        index = self._open.index if self._open is not None else 0
        frames.append(DELTA_HEAD + b"%d" % index + TEXT_MID + _dumps(text) + DELTA_TAIL)
        return frames

    def _rest(self, part_key: Any, full: Any) -> str:
        if not isinstance(full, str):
            return ""
        emitted = self._emitted.get(part_key, 0)
        return full[emitted:] if len(full) > emitted else ""

    def _thinking_block(self, key: Any) -> list[bytes]:
        if self._current(key, "thinking") is not None:
            return []
        return self._begin(key, "thinking", {"type": "thinking", "thinking": "", "signature": ""})

    def _thinking(self, key: Any, part_key: Any, text: str) -> list[bytes]:
        self._emitted[part_key] = self._emitted.get(part_key, 0) + len(text)
        if self.thinking != "summarized":
            return [] if self.thinking == "none" else self._thinking_block(key)
        frames = self._thinking_block(key)
        block = self._blocks[key]
        if block.last_part is not None and block.last_part != part_key:
            text = "\n\n" + text
        block.last_part = part_key
        frames.append(DELTA_HEAD + b"%d" % block.index + _THINKING_MID + _dumps(text) + DELTA_TAIL)
        return frames

    def _arguments(self, block: Block, text: str) -> bytes:
        return DELTA_HEAD + b"%d" % block.index + _JSON_MID + _dumps(text) + DELTA_TAIL
