"""Serving the app with uvicorn: logging, the bind-safety rule, and one start-up line."""

from __future__ import annotations

import asyncio
import gc
import logging
from types import FrameType

import uvicorn

from codexgate.config import Settings
from codexgate.observability.logging import configure_logging
from codexgate.server.access import check_bind_safety
from codexgate.server.app import create_app
from codexgate.server.connection_guard import (
    ConnectionLimits,
    default_max_connections,
    guarded_protocol,
    raise_fd_limit,
)
from codexgate.storage.api_keys import KeyStore

logger = logging.getLogger("codexgate")


class BindRefused(Exception):
    """Binding publicly without an API key, and without ``--allow-no-auth``."""


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The connection guard's limits from the settings (``max_connections`` 0: sized from the fd limit)."""
    configured = settings.limits
    cap = configured.max_connections or default_max_connections()
    return ConnectionLimits(
        max_header_size=configured.max_header_size,
        head_timeout=configured.head_timeout,
        body_min_rate=configured.body_min_rate,
        body_grace=configured.body_grace,
        max_connections=cap,
    )


def uvicorn_config(settings: Settings, limits: ConnectionLimits | None = None) -> uvicorn.Config:
    """``limits`` default to ``max_header_size`` from the settings and the module's other defaults."""
    app = create_app(settings)
    if limits is None:
        limits = connection_limits(settings)
    return uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http=guarded_protocol(limits),
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,  # nothing reads the client address: one ASGI layer less per request
        server_header=False,
        timeout_graceful_shutdown=round(settings.server.shutdown_grace) + 3,
        h11_max_incomplete_event_size=settings.limits.max_header_size,
        backlog=4096,
        timeout_keep_alive=30,
    )


class GatewayServer(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT open streams get the grace period, then an error chunk."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after shutdown (exit status -15); a clean stop exits 0.
        self._captured_signals.clear()
        gateway = self.config.app.state.gateway  # type: ignore[union-attr]
        grace = gateway.settings.server.shutdown_grace
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon_threadsafe(gateway.begin_shutdown, grace)


def run_server(settings: Settings) -> None:
    configure_logging(settings.server.log_level, settings.server.log_format)
    refusal = check_bind_safety(
        settings.server.host, KeyStore(settings.keys_file).has_keys(), settings.server.allow_no_auth
    )
    if refusal:
        raise BindRefused(refusal)
    raise_fd_limit()  # before the limits are made: the default connection cap follows the fd limit
    config = uvicorn_config(settings)
    gateway = config.app.state.gateway  # type: ignore[union-attr]
    source = getattr(gateway.tokens, "credential_source", lambda: None)()
    where = f"credentials from {source}" if source else "no credentials yet (run `codexgate login`)"
    print(
        f"codexgate listening on http://{settings.server.host}:{settings.server.port} — {where}",
        flush=True,
    )
    # Everything built so far (modules, the app, settings) lives as long as the process: move it out
    # of the collector's sight, so the full collections that request garbage triggers stay small.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    GatewayServer(config).run()
