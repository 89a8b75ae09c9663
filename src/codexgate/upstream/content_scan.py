"""The encrypted items of a pooled request and answer: which account can read them.

:func:`content_keys` finds the keys of the encrypted reasoning and compaction items a Responses body
carries; :class:`ContentScanner` (installed with :func:`scanning` on a stream's reads) binds the
encrypted items of an answer to the account that produced it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from codexgate.pool.router import Router
from codexgate.pool.sticky import content_key

__all__ = ["ContentScanner", "content_keys", "scanning"]

_MARKER = b'"encrypted_content"'
_BOUND_TYPES = frozenset(("reasoning", "compaction", "compaction_summary"))
_COMPACTION_TYPES = frozenset(("compaction", "compaction_summary"))


def content_keys(body: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(reasoning keys, compaction keys)`` of the encrypted items in a Responses body's ``input``."""
    items = body.get("input")
    if not isinstance(items, list):
        return (), ()
    reasoning: list[str] = []
    compaction: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind not in _BOUND_TYPES:
            continue
        encrypted = item.get("encrypted_content")
        if isinstance(encrypted, str) and encrypted:
            (compaction if kind in _COMPACTION_TYPES else reasoning).append(content_key(encrypted))
    return tuple(reasoning), tuple(compaction)


class ContentScanner:
    """Finds the encrypted items of an answer in its raw SSE bytes and binds them to the account.

    Only complete lines that contain ``"encrypted_content"`` are parsed (a memchr-fast search per read)."""

    __slots__ = ("_account_key", "_pending", "_router")

    def __init__(self, router: Router, account_key: str) -> None:
        self._router = router
        self._account_key = account_key
        self._pending = b""

    def feed(self, data: bytes) -> None:
        buffer = self._pending + data if self._pending else data
        end = buffer.rfind(b"\n")
        if end < 0:
            self._pending = buffer
            return
        self._pending = buffer[end + 1 :]
        if _MARKER not in buffer[:end]:
            return
        for line in buffer[:end].split(b"\n"):
            if _MARKER in line and line.startswith(b"data:"):
                self._take(line[5:])

    def _take(self, raw: bytes) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        items: list[Any] = []
        item = event.get("item")
        if isinstance(item, dict):
            items.append(item)
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("output"), list):
            items.extend(response["output"])
        keys = [
            content_key(found["encrypted_content"])
            for found in items
            if isinstance(found, dict)
            and found.get("type") in _BOUND_TYPES
            and isinstance(found.get("encrypted_content"), str)
            and found["encrypted_content"]
        ]
        if keys:
            self._router.remember_content(keys, self._account_key, time.time())


def scanning(read: Callable[[], Awaitable[bytes]], scanner: ContentScanner) -> Callable[[], Awaitable[bytes]]:
    async def scanned() -> bytes:
        data = await read()
        scanner.feed(data)
        return data

    return scanned
