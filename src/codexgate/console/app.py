"""The console's ASGI app: login, the four pages, their form posts and the request log's JSON feed.

Mount it where the dashboard lives (``Mount("/dashboard", app=create_console(...))``); links, form
actions and the session cookie's path follow the mount point (``root_path``). Every response carries
a Content-Security-Policy (``default-src 'self'``, ``frame-ancestors 'none'``), ``no-store`` and
``nosniff``; until an admin password is set, every path answers 404.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from codexgate.console.access import AccountsProvider, ConsoleConfig, PauseAccount
from codexgate.console.auth import Session
from codexgate.console.handlers import ConsoleHandlers
from codexgate.console.queries import UsageSource
from codexgate.storage.api_keys import KeyStore
from codexgate.storage.budgets import BudgetTracker

__all__ = ["AccountsProvider", "ConsoleApp", "ConsoleConfig", "PauseAccount", "create_console"]

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send "Origin: null" on form posts
    "Cache-Control": "no-store",
}


def _guarded(
    console: ConsoleHandlers, handler: Callable[[Request, Session], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        session = console.session(request)
        if session is None:
            if request.url.path.endswith(".json"):
                return JSONResponse({"error": "log in first"}, status_code=401)
            return RedirectResponse(f"{console.base(request)}/login", status_code=303)
        return await handler(request, session)

    return endpoint


class ConsoleApp:
    """The console's ASGI app: 404 for everything until a password is set; security headers on every response."""

    def __init__(self, app: Starlette, console: ConsoleHandlers) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.console.password.current(self.console.clock()) is None:
            await Response("Not Found", status_code=404, media_type="text/plain")(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_console(
    config: ConsoleConfig,
    key_store: KeyStore,
    usage_db_path: UsageSource,
    accounts_provider: AccountsProvider | None,
    metrics: Any = None,
    *,
    budgets: BudgetTracker | None = None,
    pause_account: PauseAccount | None = None,
    clock: Callable[[], float] = time.time,
) -> ConsoleApp:
    """The console as an ASGI app, to mount at ``/dashboard``."""
    console = ConsoleHandlers(
        config, key_store, usage_db_path, accounts_provider, metrics, budgets, pause_account, clock
    )
    routes = [
        Route("/", _guarded(console, console.overview)),
        Route("/login", console.login_page, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/accounts", _guarded(console, console.accounts)),
        Route("/accounts/pause", console.pause, methods=["POST"]),
        Route("/accounts/resume", console.pause, methods=["POST"]),
        Route("/keys", _guarded(console, console.keys), methods=["GET"]),
        Route("/keys", console.key_create, methods=["POST"]),
        Route("/keys/{key_id}", _guarded(console, console.key_edit), methods=["GET"]),
        Route("/keys/{key_id}/limits", console.key_limits, methods=["POST"]),
        Route("/keys/{key_id}/revoke", console.key_revoke, methods=["POST"]),
        Route("/requests", _guarded(console, console.requests)),
        Route("/requests.json", _guarded(console, console.requests_json)),
        Route("/static/{name}", console.static),
    ]
    return ConsoleApp(Starlette(routes=routes), console)
