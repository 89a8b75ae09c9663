"""The app factory: ``create_app(settings)`` builds the ASGI app uvicorn serves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from codexgate import __version__
from codexgate.config import Settings
from codexgate.errors import APIError
from codexgate.observability.metrics import Metrics
from codexgate.pool.registry import AccountRegistry
from codexgate.pool.router import Router
from codexgate.pool.routing import RoutingPolicy, Strategy
from codexgate.server.access import ApiKeyMiddleware, KeyCheck, keys_required
from codexgate.server.asgi import GatewayASGI
from codexgate.server.endpoints import RouteTable
from codexgate.server.errors import exception_response
from codexgate.server.gateway import Gateway
from codexgate.server.openapi import add_body_schemas
from codexgate.server.routes import ROUTERS
from codexgate.storage.api_keys import KeyStore
from codexgate.storage.budgets import BUDGETS_FILE_NAME, BudgetTracker
from codexgate.storage.usage_writer import UsageWriter
from codexgate.upstream.client import TokenSource, UpstreamClient
from codexgate.upstream.instructions import resolve_instructions
from codexgate.upstream.models import watch_refresh_requests
from codexgate.upstream.pooled import AccountSource, PooledUpstream, PoolTokens, SingleSource

if TYPE_CHECKING:
    from codexgate.pool.shared_pool import SharedPool
    from codexgate.state.cluster import Cluster
    from codexgate.storage.shared_budgets import SharedBudgetTracker
    from codexgate.storage.shared_keys import SharedKeyStore

__all__ = ["DASHBOARD_PATH", "create_app"]

DASHBOARD_PATH = "/dashboard"

logger = logging.getLogger("codexgate.server")


def routing_policy(settings: Settings) -> RoutingPolicy:
    """The pool's routing policy from the settings ``routing``, ``fill_threshold``, ``account_max_streams``."""
    cap = settings.auth.account_max_streams
    return RoutingPolicy(
        strategy=Strategy(settings.auth.routing),
        fill_threshold=settings.auth.fill_threshold,
        account_max_streams=cap if cap > 0 else None,
    )


def create_app(settings: Settings, *, tokens: TokenSource | None = None) -> GatewayASGI:
    """Build the gateway. ``tokens`` replaces the account pool with one credential source (tests)."""
    cluster: Cluster | None = None  # the embedded single-process state
    if settings.state.state_url:  # several instances: Redis (imported only then)
        from codexgate.state.cluster import open_cluster

        cluster = open_cluster(settings)
    account_router = Router(routing_policy(settings))
    registry: AccountRegistry | None = None
    source: AccountSource
    token_source: TokenSource
    if tokens is not None:
        source = SingleSource(tokens)
        token_source = tokens
    else:
        registry = AccountRegistry.from_settings(settings, cluster=cluster)
        source = registry
        token_source = PoolTokens(registry, account_router)
    upstream = UpstreamClient(settings, token_source)
    pool = PooledUpstream(upstream, source, account_router)
    shared_pool: SharedPool | None = None
    if cluster is not None:  # one pool across the instances (states, sessions, content bindings)
        from codexgate.pool.shared_pool import SharedPool

        shared_pool = pool.shared = SharedPool(cluster, pool.accounts, account_router)
    metrics = Metrics()
    metrics.accounts = pool.accounts
    usage_writer = UsageWriter(
        settings.storage.database_url or settings.database_path, retention_days=settings.storage.usage_retention_days
    )
    metrics.count_dropped_usage_rows(lambda: usage_writer.dropped)
    key_store: KeyStore
    budgets: BudgetTracker
    shared: tuple[SharedKeyStore, SharedBudgetTracker] | None = None
    if cluster is not None:  # keys, revocations and budget counters shared by every instance
        key_store, budgets = shared = _shared_keys_and_budgets(settings, cluster)
    else:
        key_store = KeyStore(settings.keys_file)
        budgets = BudgetTracker(settings.home / BUDGETS_FILE_NAME)
    gateway = Gateway(settings, token_source, upstream, usage_writer=usage_writer, metrics=metrics, pool=pool)
    _install_instructions(gateway, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if cluster is not None:
            await cluster.start()
        if shared is not None and cluster is not None:
            await shared[0].start(cluster.state)
            await shared[1].start()
        if registry is not None:
            await registry.start()
        if cluster is not None and shared_pool is not None:
            from codexgate.server.anthropic_support import install_cluster_key

            await shared_pool.start()
            await install_cluster_key(cluster, settings.home)
        await usage_writer.start()
        await upstream.start()
        await asyncio.to_thread(budgets.open)
        refresh_watch = asyncio.ensure_future(watch_refresh_requests(gateway.models, settings.home))
        try:
            yield
        finally:
            refresh_watch.cancel()
            gateway.models.close()
            await upstream.aclose()
            await usage_writer.stop()
            await asyncio.to_thread(budgets.close)
            gateway.flush_rate_limits()
            if shared is not None:
                await shared[1].stop()
                await shared[0].close()
            close = getattr(token_source, "aclose", None)
            if close is not None:
                await close()
            if shared_pool is not None:
                await shared_pool.close()
            if registry is not None:
                await registry.aclose()
            if cluster is not None:
                await cluster.close()

    app = FastAPI(
        title="codexgate",
        version=__version__,
        summary="OpenAI-compatible gateway to the ChatGPT Codex backend",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.state.settings = settings
    app.state.key_store = key_store
    app.state.metrics = metrics
    app.state.budgets = budgets
    gateway.budgets = budgets
    app.state.pool = pool
    app.state.registry = registry
    app.state.cluster = cluster
    for router in ROUTERS:
        app.include_router(router)  # without a prefix: the routers' paths are the app's
    routes = RouteTable(route for router in ROUTERS for route in router.routes)

    async def answer_error(request: Request, exc: Exception) -> Response:
        return exception_response(exc, request.scope, routes.dialect_for(request.scope))

    # One function for every exception on this way in (and on the direct way, in GatewayASGI).
    for kind in (APIError, StarletteHTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, answer_error)
    # add_middleware puts the last one outermost: CORS, then the key check. Request id and head
    # limit come from GatewayASGI, in front of the whole app.
    app.mount(DASHBOARD_PATH, _console(settings, key_store, metrics, budgets, gateway, registry, shared_pool))
    key_check = KeyCheck(
        key_store,
        open_prefixes=(DASHBOARD_PATH + "/", DASHBOARD_PATH),
        keys_required=keys_required(settings.server.host, settings.server.allow_no_auth),
    )
    app.add_middleware(ApiKeyMiddleware, check=key_check, dialect_for=routes.dialect_for)
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["x-request-id"],
        )
    add_body_schemas(app)
    return GatewayASGI(
        app,
        routes=routes,
        key_check=key_check,
        max_header_size=settings.limits.max_header_size,
        cors=bool(settings.server.cors_origins),
    )


def _shared_keys_and_budgets(settings: Settings, cluster: Cluster) -> tuple[SharedKeyStore, SharedBudgetTracker]:
    """The key store and budget tracker of a shared-state instance (started in the lifespan)."""
    from codexgate.storage.shared_budgets import SharedBudgetTracker
    from codexgate.storage.shared_keys import SharedKeyStore

    key_store = SharedKeyStore.from_settings(settings)
    budgets = SharedBudgetTracker(cluster.state, budgeted_keys=key_store.mirrored)
    cluster.on_reconnect(key_store.resync)
    cluster.on_reconnect(budgets.resync)
    return key_store, budgets


def _console(
    settings: Settings,
    key_store: KeyStore,
    metrics: Metrics,
    budgets: BudgetTracker,
    gateway: Gateway,
    registry: AccountRegistry | None,
    shared_pool: SharedPool | None = None,
) -> Any:
    """The operator's console (404 everywhere until an admin password is set; its own sign-in)."""
    from codexgate.console import ConsoleConfig, create_console
    from codexgate.console.single_account import single_account_provider

    config = ConsoleConfig.from_settings(settings)
    if registry is None:  # a token source handed in (tests): the signed-in account, without a refresh
        peek = getattr(gateway.tokens, "peek", lambda: None)
        accounts = single_account_provider(peek, lambda: gateway.latest_rate_limits)
        return create_console(config, key_store, _usage_source(settings), accounts, metrics, budgets=budgets)
    pool = registry

    def accounts_provider() -> list[dict[str, Any]]:
        return [state.to_dict() for state in pool.accounts().values()]

    async def pause_account(account_key: str, paused: bool) -> None:
        """The same as ``codexgate accounts pause/resume`` (the operator's index), seen here within a second.
        An account this home does not hold (several instances: it came from the shared state) is paused or
        resumed in the shared pool state directly, so every instance sees it."""
        from codexgate.pool import admin, health

        change = admin.pause_account if paused else admin.resume_account
        try:
            await asyncio.to_thread(change, pool.paths, account_key)
        except admin.PoolAdminError as exc:
            state = pool.accounts().get(account_key)
            if shared_pool is None or state is None:  # removed meanwhile: the page shows the pool as it is
                logger.info("console: %s", exc)
            else:
                (health.pause if paused else health.resume)(state)
                shared_pool.changed(state)
                logger.info("console: account %s %s for every instance", state.alias, "paused" if paused else "resumed")
        pool.reload()

    return create_console(
        config,
        key_store,
        _usage_source(settings),
        accounts_provider,
        metrics,
        budgets=budgets,
        pause_account=pause_account,
    )


def _usage_source(settings: Settings) -> Path | str:
    """Where the console reads usage: PostgreSQL (the whole cluster) with ``database_url``, else the file."""
    return settings.storage.database_url or settings.database_path


def _install_instructions(gateway: Gateway, settings: Settings) -> None:
    def resolver(model: str) -> str:
        return resolve_instructions(settings, model)

    gateway.set_default_instructions(resolver)
