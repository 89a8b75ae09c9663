"""Bounded maps with a TTL for routing memory: session → account, and account-bound content → account.

Pure: ``now`` is passed in. Entries expire ``ttl`` seconds after their last use (a sliding TTL) and
the least recently used entry goes first once the map holds ``max_entries``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["BoundedTTLMap", "content_key", "scoped_session_key"]

K = TypeVar("K")
V = TypeVar("V")

#: hex digits of sha256 kept for a content key (128 bits: collisions are not a concern)
CONTENT_KEY_HEX = 32


def content_key(encrypted_content: str) -> str:
    """The key under which account-bound content (encrypted reasoning, a compaction item) is remembered."""
    return hashlib.sha256(encrypted_content.encode("utf-8", "surrogatepass")).hexdigest()[:CONTENT_KEY_HEX]


def scoped_session_key(api_key_id: str | None, session: str) -> str:
    """A session key scoped per API key, so two clients' equal session ids never share an account binding."""
    return f"{api_key_id or '-'}\x1f{session}"


class BoundedTTLMap(Generic[K, V]):
    """An LRU map whose entries expire ``ttl`` seconds after they were last set or read."""

    __slots__ = ("_entries", "max_entries", "ttl")

    def __init__(self, max_entries: int, ttl: float) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        """The value for ``key`` (its TTL starts over), or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= now:
            del self._entries[key]
            return None
        self._entries[key] = (value, now + self.ttl)
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, now: float) -> None:
        entries = self._entries
        entries[key] = (value, now + self.ttl)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return entry[0] if entry is not None else None

    def remove_value(self, value: V) -> int:
        """Forget every entry pointing at ``value`` (an account removed from the pool); returns how many."""
        doomed = [key for key, (held, _) in self._entries.items() if held == value]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def purge_expired(self, now: float) -> int:
        """Drop expired entries (they are also dropped lazily when read); returns how many."""
        doomed = [key for key, (_, expires_at) in self._entries.items() if expires_at <= now]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
