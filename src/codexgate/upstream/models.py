"""The backend's model list, cached with a TTL, in OpenAI's list format with effort aliases.

``GET {upstream_url}/models?client_version=X`` answers ``{"models": [{slug, visibility,
supported_reasoning_levels: [{effort, ...}], ...}]}``. Each listed model becomes an OpenAI model
object, followed by one alias per supported reasoning level (``gpt-5-high`` ...), which the request
mapper turns back into the model plus ``reasoning.effort``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from codexgate.errors import APIError

OWNER = "openai"


def _efforts(entry: Mapping[str, Any]) -> list[str]:
    levels = entry.get("supported_reasoning_levels")
    efforts: list[str] = []
    if isinstance(levels, list):
        for level in levels:
            effort = level.get("effort") if isinstance(level, Mapping) else level
            if isinstance(effort, str) and effort and effort not in efforts:
                efforts.append(effort)
    return efforts


def model_objects(entries: list[Mapping[str, Any]], created: int) -> list[dict[str, Any]]:
    """OpenAI ``model`` objects for the backend's entries (hidden ones skipped) and their aliases."""
    models: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(model_id: str, **extra: Any) -> None:
        if model_id not in seen:
            seen.add(model_id)
            models.append({"id": model_id, "object": "model", "created": created, "owned_by": OWNER, **extra})

    def priority(entry: Mapping[str, Any]) -> int:
        value = entry.get("priority")
        return value if isinstance(value, int) else 0

    ordered = sorted(entries, key=priority)
    for entry in ordered:
        slug = entry.get("slug") or entry.get("id")
        if not isinstance(slug, str) or not slug:
            continue
        visibility = entry.get("visibility")
        if visibility not in (None, "list"):
            continue
        add(slug)
        for effort in _efforts(entry):
            add(f"{slug}-{effort}", parent=slug, reasoning_effort=effort)
    return models


class ModelCatalog:
    """Cached model list. ``fetch`` returns the backend's entries or raises :class:`APIError`."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[Mapping[str, Any]]]],
        *,
        ttl: float,
        fallback: list[str],
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._fallback = fallback
        self._cached: list[dict[str, Any]] | None = None
        #: the backend's own entries, for clients that read its format (the Codex CLI).
        self.entries: list[Mapping[str, Any]] = []
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def models(self) -> list[dict[str, Any]]:
        if self._cached is not None and time.monotonic() - self._fetched_at < self._ttl:
            return self._cached
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._fetched_at < self._ttl:
                return self._cached
            try:
                entries = await self._fetch()
            except APIError as error:
                if self._fallback:
                    created = int(time.time())
                    return [
                        {"id": model_id, "object": "model", "created": created, "owned_by": OWNER}
                        for model_id in self._fallback
                    ]
                if error.status_code in (401, 403):
                    raise
                raise APIError(
                    502,
                    f"Could not fetch the model list from the Codex backend ({error.message}). "
                    "Set the setting `models` to list models when the backend can't be asked.",
                    type="upstream_error",
                    code="models_unavailable",
                ) from None
            self._cached = model_objects(entries, int(time.time()))
            self.entries = entries
            self._fetched_at = time.monotonic()
            return self._cached

    def known(self, model_id: str) -> bool | None:
        """Whether the cached list (or the ``models`` setting) names ``model_id``; None before any list."""
        if model_id in self._fallback:
            return True
        if self._cached is None:
            return None
        return any(model["id"] == model_id for model in self._cached)

    async def get(self, model_id: str) -> dict[str, Any]:
        for model in await self.models():
            if model["id"] == model_id:
                return model
        raise APIError(
            404,
            f"The model '{model_id}' does not exist or you do not have access to it.",
            type="invalid_request_error",
            param="model",
            code="model_not_found",
        )
