"""In-process gateways for the envelope, key and CORS tests: the real ``create_app``, driven through
``httpx.ASGITransport`` (no sockets), with its lifespan run around the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from codexgate.server.app import create_app
from codexgate.server.asgi import GatewayASGI
from codexgate.storage.api_keys import KeyStore
from tests.helpers import settings_for, write_auth_json

ORIGIN = "http://ui.example"
#: nothing listens there: a request that reaches the upstream fails at once as upstream_unreachable
CLOSED_UPSTREAM = "http://127.0.0.1:9/codex"


@asynccontextmanager
async def in_process_gateway(
    home: Path, *, keys: tuple[str, ...] = (), signed_in: bool = True, **overrides: Any
) -> AsyncIterator[tuple[GatewayASGI, dict[str, str]]]:
    """A gateway app with its lifespan running, and the keys created for it (name -> key)."""
    if signed_in:
        write_auth_json(home)
    settings = settings_for(home, CLOSED_UPSTREAM, **{"upstream_retries": 0, **overrides})
    store = KeyStore(settings.keys_file)
    created = {name: store.create(name) for name in keys}
    app = create_app(settings)
    async with app.app.router.lifespan_context(app.app):
        yield app, created


def client_for(app: GatewayASGI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
