"""The one place that knows the backend's model catalog: its rules, its `/v1/models` list, its refresh.

``GET {upstream_url}/models?client_version=X`` answers ``{"models": [entry, ...]}``. :class:`ModelCatalog`
keeps a :class:`~codexgate.protocol.catalog_rules.ModelRules` built from those entries, or
``ModelRules.fallback()`` while the catalog cannot be had. The chat mapper, the Messages route and the
Responses passthrough all read it through :meth:`ModelCatalog.current_rules` (``Gateway.model_rules``).

It is refreshed when its TTL has passed (on the next request that reads it), on demand
(:meth:`ModelCatalog.refresh`: ``codexgate models refresh`` writes a nonce to
``$CODEXGATE_HOME/models.refresh``; the server's :func:`watch_refresh_requests` sees it within a
quarter second, refreshes and answers in ``models.refresh.done``), and after a backend answer that
names an unknown or gated model (:meth:`ModelCatalog.invalidate`). A failed fetch keeps the last good
rules (or the fallback) and is not retried for :data:`FAILED_FETCH_BACKOFF` seconds, so an unreachable
backend does not add a catalog call to every request.

``/v1/models`` lists each listed model followed by one alias per reasoning level it lists
(``ModelRules.aliases()``); the mapper turns an alias back into the model plus ``reasoning.effort``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from codexgate.errors import APIError
from codexgate.protocol.catalog_rules import ModelRules

__all__ = [
    "FAILED_FETCH_BACKOFF",
    "OWNER",
    "REFRESH_DONE_FILE",
    "REFRESH_REQUEST_FILE",
    "ModelCatalog",
    "model_objects",
    "refresh_and_report",
    "unknown_model_error",
    "watch_refresh_requests",
]

logger = logging.getLogger("codexgate.upstream")

OWNER = "openai"
#: seconds a failed catalog fetch is not retried by requests (an explicit refresh always tries)
FAILED_FETCH_BACKOFF = 30.0
#: how long a request waits for a catalog fetch before it goes on with the rules there are (the fetch
#: goes on in the background): a slow or silent ``/models`` never holds requests for ``read_timeout``.
CATALOG_WAIT = 2.0
#: how many known names a ``model_not_found`` answer lists
KNOWN_NAMES_SHOWN = 8


def model_objects(rules: ModelRules | list[Mapping[str, Any]], created: int) -> list[dict[str, Any]]:
    """OpenAI ``model`` objects for the catalog's listed models and their effort aliases (rules, or raw entries)."""
    if not isinstance(rules, ModelRules):
        rules = ModelRules.from_catalog_json(rules)
    models: list[dict[str, Any]] = []
    for alias in rules.aliases():
        model: dict[str, Any] = {"id": alias.id, "object": "model", "created": created, "owned_by": OWNER}
        if alias.effort is not None:
            model["parent"] = alias.slug
            model["reasoning_effort"] = alias.effort
        models.append(model)
    return models


def unknown_model_error(model: str, rules: ModelRules) -> APIError:
    """404 ``model_not_found`` naming a few models the catalog lists."""
    known = [entry.slug for entry in sorted(rules.entries, key=lambda e: e.priority) if entry.listed]
    shown = ", ".join(known[:KNOWN_NAMES_SHOWN]) + (", …" if len(known) > KNOWN_NAMES_SHOWN else "")
    return APIError(
        404,
        f"The model '{model}' does not exist or you do not have access to it. Known models: {shown or 'none'}. "
        "GET /v1/models lists them with their effort aliases.",
        type="invalid_request_error",
        param="model",
        code="model_not_found",
    )


class ModelCatalog:
    """The cached catalog. ``fetch`` returns the backend's entries or raises :class:`APIError`."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[Mapping[str, Any]]]],
        *,
        ttl: float,
        fallback: list[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._fallback = fallback
        self._clock = clock
        #: what requests read: the catalog's rules, or the fallback table's until a catalog was had
        self.rules: ModelRules = ModelRules.fallback()
        #: the backend's own entries, for clients that read its format (the Codex CLI).
        self.entries: list[Mapping[str, Any]] = []
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._last_error: APIError | None = None
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Future[None] | None = None
        self._refresh_started = 0.0
        #: how many catalogs were fetched successfully (tests and the admin endpoint read it)
        self.generation = 0

    @property
    def available(self) -> bool:
        """Whether the rules come from a catalog (else the fallback table applies)."""
        return self.rules.from_catalog

    def _fresh(self) -> bool:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._ttl:
            return True
        return self._failed_at is not None and now - self._failed_at < min(FAILED_FETCH_BACKOFF, self._ttl or 1.0)

    def invalidate(self) -> None:
        """Make the next read fetch the catalog again (a backend answer named an unknown or gated model)."""
        self._fetched_at = None
        self._failed_at = None

    async def current_rules(self) -> ModelRules:
        """The rules, refreshed first when stale; never raises (a failed fetch keeps what there was).

        A request waits at most :data:`CATALOG_WAIT` for the fetch (and not at all once a fetch has run
        that long); then it goes on with the rules there are while the fetch finishes in the background."""
        if self._fresh():
            return self.rules
        task = self._refreshing
        if task is None or task.done():
            self._refresh_started = time.monotonic()
            task = self._refreshing = asyncio.ensure_future(self._load_if_stale())
        remaining = CATALOG_WAIT - (time.monotonic() - self._refresh_started)
        if remaining > 0:
            try:
                await asyncio.wait_for(asyncio.shield(task), remaining)
            except TimeoutError:
                logger.info("model catalog fetch is slow; going on with %s meanwhile", self._using())
        return self.rules

    async def _load_if_stale(self) -> None:
        async with self._lock:
            if not self._fresh():
                try:
                    await self._load()
                except Exception as exc:  # a background fetch must not die unheard
                    self._failed_at = self._clock()
                    logger.warning("model catalog fetch failed (%s); using %s", type(exc).__name__, self._using())

    def close(self) -> None:
        """Stop a fetch still running in the background (the server is stopping)."""
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()

    async def refresh(self) -> ModelRules:
        """Fetch the catalog now; raises the fetch's :class:`APIError` when it cannot be had."""
        async with self._lock:
            await self._load()
            if self._last_error is not None:
                raise self._last_error
        return self.rules

    async def _load(self) -> None:
        try:
            entries = await self._fetch()
        except APIError as error:
            self._failed_at = self._clock()
            self._last_error = error
            logger.info("model catalog unavailable (%s); using %s", error.code or error.status_code, self._using())
            return
        rules = ModelRules.from_catalog_json(entries)
        self._fetched_at = self._clock()
        self._failed_at = None
        self._last_error = None
        self.entries = list(entries)
        self.generation += 1
        if rules.from_catalog:
            self.rules = rules

    def _using(self) -> str:
        return "the last catalog" if self.rules.from_catalog else "the fallback rules"

    async def models(self) -> list[dict[str, Any]]:
        """The ``/v1/models`` list; raises when neither the catalog nor the setting ``models`` gives one."""
        rules = await self.current_rules()
        created = int(time.time())
        if rules.from_catalog:
            return model_objects(rules, created)
        if self._fallback:
            return [
                {"id": model_id, "object": "model", "created": created, "owned_by": OWNER}
                for model_id in self._fallback
            ]
        error = self._last_error
        if error is not None and error.status_code in (401, 403):
            raise error
        reason = error.message if error is not None else "it lists no models"
        raise APIError(
            502,
            f"Could not fetch the model list from the Codex backend ({reason}). "
            "Set the setting `models` to list models when the backend can't be asked.",
            type="upstream_error",
            code="models_unavailable",
        )

    def known(self, model_id: str) -> bool | None:
        """Whether the cached list (or the ``models`` setting) names ``model_id``; None before any list."""
        if model_id in self._fallback:
            return True
        if not self.rules.from_catalog:
            return None
        return self.rules.entry(model_id) is not None

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


# ---- on-demand refresh (``codexgate models refresh``) --------------------------------------------
#: the file the CLI writes to ask the running server for a refresh (in ``$CODEXGATE_HOME``)
REFRESH_REQUEST_FILE = "models.refresh"
#: the file the server writes back: ``{"nonce", "ok", "models", "aliases", "error"}``
REFRESH_DONE_FILE = "models.refresh.done"
REFRESH_POLL_INTERVAL = 0.25


def _read_nonce(path: Path) -> str | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    nonce = data.get("nonce") if isinstance(data, dict) else None
    return nonce if isinstance(nonce, str) else None


def _write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps(document))
    os.replace(temporary, path)


async def refresh_and_report(catalog: ModelCatalog, done_path: Path, nonce: str) -> dict[str, Any]:
    """Refresh ``catalog`` now and write the outcome (with ``nonce``) to ``done_path``."""
    report: dict[str, Any] = {"nonce": nonce, "ok": True, "models": 0, "aliases": 0, "error": None}
    try:
        rules = await catalog.refresh()
        report["models"] = len(rules.entries)
        report["aliases"] = len(rules.aliases())
    except APIError as error:
        report.update(ok=False, error=error.message)
    await asyncio.get_running_loop().run_in_executor(None, _write_atomically, done_path, report)
    return report


async def watch_refresh_requests(catalog: ModelCatalog, home: Path, *, interval: float = REFRESH_POLL_INTERVAL) -> None:
    """Run until cancelled: each new nonce in ``home/models.refresh`` refreshes the catalog (within
    ``interval`` s) and is answered in ``home/models.refresh.done``."""
    request_path = home / REFRESH_REQUEST_FILE
    done_path = home / REFRESH_DONE_FILE
    seen = _read_nonce(request_path)  # a request left from before this server started is not ours
    while True:
        await asyncio.sleep(interval)
        nonce = _read_nonce(request_path)
        if nonce is not None and nonce != seen:
            seen = nonce
            logger.info("model catalog refresh requested")
            await refresh_and_report(catalog, done_path, nonce)
