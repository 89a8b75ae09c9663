"""Prompt-cache key and session id: the client's when given, else derived from the conversation.

The Codex backend caches a prompt prefix per ``prompt_cache_key``; consecutive turns of one
conversation share their first messages, so a key derived from those (instructions + the first
user message) lets them share the cache without the client doing anything.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

_NAMESPACE = uuid.UUID("6f1c2a8e-3f5d-4c3b-9a53-0c8e7d1b2a40")


def _first_user_item(items: Any) -> Any:
    if isinstance(items, str):
        return items
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and item.get("role") == "user":
                return item.get("content")
    return None


def conversation_key(body: Mapping[str, Any]) -> str:
    """A stable UUID string from the model, instructions and first user message."""
    seed = orjson.dumps(
        [body.get("model"), body.get("instructions"), _first_user_item(body.get("input"))],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    digest = hashlib.sha256(seed).digest()
    return str(uuid.uuid5(_NAMESPACE, digest.hex()))


def session_and_cache_key(body: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
    """``(session_id, prompt_cache_key)`` for an upstream request."""
    client_key = body.get("prompt_cache_key")
    client_session = headers.get("session_id") or headers.get("session-id")
    derived = None
    if not client_session or not isinstance(client_key, str) or not client_key:
        derived = conversation_key(body)
    session_id = client_session or (client_key if isinstance(client_key, str) and client_key else derived)
    cache_key = client_key if isinstance(client_key, str) and client_key else (client_session or derived)
    assert session_id is not None and cache_key is not None
    return session_id, cache_key
