"""Serving the app with uvicorn: logging, the bind-safety rule, the listening socket, one start-up line.

The socket is bound here, not by uvicorn (which calls ``sys.exit`` when a bind fails): a port in use
becomes :class:`PortInUse`, and ``--port 0`` gives the real port for the start-up line and for
``$CODEXGATE_HOME/server.json`` (the bound URL, read by the container's health check; removed at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from codexgate.config import Settings
from codexgate.files import atomic_write_text
from codexgate.observability.logging import configure_logging
from codexgate.server.access import check_bind_safety, keys_required
from codexgate.server.app import create_app
from codexgate.server.connection_guard import (
    ConnectionLimits,
    default_max_connections,
    guarded_protocol,
    raise_fd_limit,
)
from codexgate.storage.api_keys import KeyStore

logger = logging.getLogger("codexgate")

SERVER_FILE_NAME = "server.json"
LISTEN_BACKLOG = 4096


class BindRefused(Exception):
    """Binding publicly without an API key, and without ``--allow-no-auth``."""


class PortInUse(OSError):
    """Another process listens on the port. ``str()`` is the one line the CLI prints."""

    def __init__(self, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} is in use — another codexgate? use --port")
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


def bind_listener(host: str, port: int, backlog: int = LISTEN_BACKLOG) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free one). Raises :class:`PortInUse`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port) from None
        raise
    return sock


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` (IPv6 hosts in brackets)."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}"


def server_file(settings: Settings) -> Path:
    """Where a running server writes its bound URL: ``$CODEXGATE_HOME/server.json``."""
    return settings.home / SERVER_FILE_NAME


def write_server_file(settings: Settings, url: str) -> Path | None:
    """Write ``server.json`` (0600): the bound URL, for the health check and other local tools."""
    path = server_file(settings)
    document = json.dumps({"url": url, "base_url": url + "/v1", "pid": os.getpid()})
    try:
        atomic_write_text(path, document + "\n")
    except OSError as exc:
        logger.warning("could not write %s: %s", path, exc.strerror or exc)
        return None
    return path


def remove_server_file(path: Path) -> None:
    """Remove ``server.json`` if this process wrote it (a newer server's file is left alone)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


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
    """uvicorn, plus: on SIGTERM/SIGINT open streams get the grace period, then an error chunk;
    ``on_started`` is called once the server accepts connections (its signal handlers are in place)."""

    on_started: Callable[[], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

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


def startup_line(settings: Settings, url: str, credential_source: object | None, has_keys: bool) -> str:
    """``codexgate listening on http://…/v1 — credentials from …; API keys required`` (or not)."""
    where = (
        f"credentials from {credential_source}" if credential_source else "no credentials yet (run `codexgate login`)"
    )
    if has_keys or keys_required(settings.server.host, settings.server.allow_no_auth):
        keys = "API keys required"
    else:
        keys = "no API key required (none configured)"
    return f"codexgate listening on {url}/v1 — {where}; {keys}"


def configured_keys(settings: Settings) -> bool:
    """Whether API keys exist: in ``keys.json``, or with ``state_url`` in the shared state (True when it
    cannot be read: the server then refuses keyed requests until it can, so nothing falls open)."""
    if not settings.state.state_url:
        return KeyStore(settings.keys_file).has_keys()
    from codexgate.storage.api_keys import KeyStoreError
    from codexgate.storage.shared_keys import SharedKeyStore

    store = SharedKeyStore.from_settings(settings)
    try:
        store.load()  # imports keys.json on a first start, like the server would
    except KeyStoreError:
        return True
    finally:
        store.close_client()
    return store.has_keys()


def run_server(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. ``on_ready`` gets the ``/v1`` base URL once the port is bound.

    Raises :class:`BindRefused`, :class:`PortInUse` or ``OSError`` (another bind failure)."""
    configure_logging(settings.server.log_level, settings.server.log_format)
    has_keys = configured_keys(settings)
    refusal = check_bind_safety(settings.server.host, has_keys, settings.server.allow_no_auth)
    if refusal:
        raise BindRefused(refusal)
    raise_fd_limit()  # before the limits are made: the default connection cap follows the fd limit
    listener = bind_listener(settings.server.host, settings.server.port)
    written: list[Path] = []
    try:
        url = base_url(settings.server.host, int(listener.getsockname()[1]))
        config = uvicorn_config(settings)
        gateway = config.app.state.gateway  # type: ignore[union-attr]

        def started() -> None:
            source = getattr(gateway.tokens, "credential_source", lambda: None)()
            print(startup_line(settings, url, source, has_keys), flush=True)
            path = write_server_file(settings, url)
            if path is not None:
                written.append(path)
            if on_ready is not None:
                on_ready(url + "/v1")

        server = GatewayServer(config)
        server.on_started = started
        # Everything built so far (modules, the app, settings) lives as long as the process: move it
        # out of the collector's sight, so the full collections that request garbage triggers stay small.
        # No full collection first: the imports leave little cyclic garbage (~3,000 objects, well under
        # 1 MB, with the collector off while they ran: see codexgate.cli.main), and collecting ~130,000
        # objects would delay the first answer by ~50 ms. The CLI's ``serve`` keeps the collector off
        # until here: on again now, with thresholds for request garbage.
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        gc.enable()
        server.run(sockets=[listener])
    finally:
        for path in written:
            remove_server_file(path)
        listener.close()
