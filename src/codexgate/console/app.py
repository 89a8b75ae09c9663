"""The console's ASGI app: login, the four pages, their form posts and the request log's JSON feed.

Mount it where the dashboard lives (``Mount("/dashboard", app=create_console(...))``); links, form
actions and the session cookie's path follow the mount point (``root_path``). Every response carries
a Content-Security-Policy (``default-src 'self'``, ``frame-ancestors 'none'``), ``no-store`` and
``nosniff``; until an admin password is set, every path answers 404.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from codexgate.console import queries
from codexgate.console.accounts_page import accounts_body
from codexgate.console.auth import AdminPassword, LoginThrottle, Session, SessionStore, verify_password
from codexgate.console.html import esc, layout
from codexgate.console.keys_page import LimitsFormError, keys_body, limits_from_form
from codexgate.console.overview_page import RANGES, overview_body
from codexgate.console.requests_page import SINCE_CHOICES, requests_body, row_json
from codexgate.storage.api_keys import KeyStore, KeyStoreError
from codexgate.storage.budgets import BudgetTracker, KeyLimits, KeyUsage

__all__ = ["AccountsProvider", "ConsoleApp", "ConsoleConfig", "PauseAccount", "create_console"]

logger = logging.getLogger("codexgate.console")
audit = logging.getLogger("codexgate.audit")

AccountsProvider = Callable[[], list[dict[str, Any]]]
#: ``pause_account(account_key, paused)``; may return an awaitable
PauseAccount = Callable[[str, bool], Awaitable[None] | None]

COOKIE_NAME: Final = "codexgate_console"
MAX_FORM_BYTES: Final = 64 * 1024
LIVE_BATCH: Final = 50
KEY_USAGE_DAYS: Final = 30
STATIC_FILES: Final = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
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


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """What the console needs from the settings (build it with :meth:`from_settings`)."""

    home: Path
    admin_password: str | None = None
    admin_password_hash: str | None = None
    retention_days: int = 90
    session_idle_seconds: float = 3600.0
    session_max_age: float = 12 * 3600.0
    poll_interval_seconds: float = 3.0
    live_minutes: float = 15.0

    @property
    def admin_file(self) -> Path:
        return self.home / "admin.json"

    @classmethod
    def from_settings(cls, settings: Any) -> ConsoleConfig:
        """From a :class:`codexgate.config.Settings`; ``admin_password``/``admin_password_hash`` when it has them."""

        def setting(name: str) -> Any:
            for section in type(settings).model_fields:
                value = getattr(getattr(settings, section), name, None)
                if value is not None:
                    return value.get_secret_value() if hasattr(value, "get_secret_value") else value
            return None

        return cls(
            home=settings.home,
            admin_password=setting("admin_password"),
            admin_password_hash=setting("admin_password_hash"),
            retention_days=int(setting("usage_retention_days") or 0),
        )


class _Console:
    def __init__(
        self,
        config: ConsoleConfig,
        key_store: KeyStore,
        usage_db_path: Path,
        accounts_provider: AccountsProvider | None,
        metrics: Any,
        budgets: BudgetTracker | None,
        pause_account: PauseAccount | None,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.key_store = key_store
        self.db = usage_db_path
        self.accounts_provider = accounts_provider
        self.metrics = metrics
        self.budgets = budgets
        self.pause_account = pause_account
        self.clock = clock
        self.password = AdminPassword(
            config.admin_file, password=config.admin_password, password_hash=config.admin_password_hash
        )
        self.sessions = SessionStore(idle_seconds=config.session_idle_seconds, max_age=config.session_max_age)
        self.throttle = LoginThrottle()

    # ---- plumbing --------------------------------------------------------------------------

    @staticmethod
    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @staticmethod
    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE_NAME), self.clock())

    def page(
        self,
        request: Request,
        title: str,
        body: str,
        session: Session | None,
        *,
        status: int = 200,
        active: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        markup = layout(
            title, body, base=self.base(request), csrf_token=session.csrf_token if session else None, active=active
        )
        return HTMLResponse(markup, status_code=status, headers=dict(headers or {}))

    async def form(self, request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return {}
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

    def same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"

    def audit(self, request: Request, action: str, detail: str = "") -> None:
        audit.info("admin %s%s from %s", action, f" {detail}" if detail else "", self.address(request))

    async def change(self, request: Request) -> tuple[Session, dict[str, str]] | Response:
        """The session and form of a state-changing post, or the refusal (no session, bad origin, bad CSRF)."""
        session = self.session(request)
        if session is None:
            return self.page(request, "Logged out", "<p>Your session ended. Log in again.</p>", None, status=403)
        form = await self.form(request)
        presented = request.headers.get("x-csrf-token") or form.get("csrf_token")
        if not self.same_origin(request) or not session.csrf_matches(presented):
            self.audit(request, "refused", f"{request.url.path} (CSRF check failed)")
            body = (
                "<p>This change was refused: the form is stale or did not come from this console. Reload and retry.</p>"
            )
            return self.page(request, "Refused", body, session, status=403)
        return session, form

    # ---- login -----------------------------------------------------------------------------

    def login_form(
        self, request: Request, *, error: str | None = None, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HTMLResponse:
        message = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
        body = (
            f'{message}<form method="post" action="{esc(self.base(request))}/login" class="login" id="login">'
            '<label>Admin password<input type="password" name="password" autocomplete="current-password" '
            'required autofocus></label><button type="submit">Log in</button></form>'
        )
        return self.page(request, "Log in", body, None, status=status, headers=headers)

    async def login_page(self, request: Request) -> Response:
        if self.session(request) is not None:
            return RedirectResponse(f"{self.base(request)}/", status_code=303)
        return self.login_form(request)

    async def login(self, request: Request) -> Response:
        address, now = self.address(request), self.clock()
        if not self.same_origin(request):
            return self.login_form(request, error="Log in from the console's own page.", status=403)
        wait = self.throttle.wait_seconds(address, now)
        if wait > 0:
            self.audit(request, "login throttled")
            return self.login_form(
                request,
                error=f"Too many wrong passwords. Try again in {int(wait) + 1} s.",
                status=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        form = await self.form(request)
        encoded = self.password.current(now)
        ok = encoded is not None and await asyncio.to_thread(verify_password, form.get("password", ""), encoded)
        if not ok:
            lockout = self.throttle.failed(address, now)
            self.audit(request, "login failed")
            error = "Wrong password."
            if lockout:
                error += f" Too many wrong passwords: wait {int(lockout)} s before the next try."
            return self.login_form(request, error=error, status=401)
        self.throttle.succeeded(address)
        session = self.sessions.create(now)
        self.audit(request, "login")
        response = RedirectResponse(f"{self.base(request)}/", status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            session.token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=self.base(request) or "/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        checked = await self.change(request)
        if isinstance(checked, Response):
            return checked
        self.sessions.drop(checked[0].token)
        self.audit(request, "logout")
        response = RedirectResponse(f"{self.base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path=self.base(request) or "/", httponly=True, samesite="strict")
        return response

    # ---- pages -----------------------------------------------------------------------------

    async def overview(self, request: Request, session: Session) -> Response:
        range_name = request.query_params.get("range", "24h")
        step, count = RANGES.get(range_name) or RANGES["24h"]
        range_name = range_name if range_name in RANGES else "24h"
        now = self.clock()
        since = (now // step + 1) * step - step * count
        series = await asyncio.to_thread(queries.series, self.db, since, step, count)
        active = None
        if self.metrics is not None and hasattr(self.metrics, "registry"):
            active = self.metrics.registry.get_sample_value("codexgate_active_streams")
        body = overview_body(series, base=self.base(request), range_name=range_name, active_streams=active)
        return self.page(request, "Overview", body, session, active="")

    async def accounts(self, request: Request, session: Session) -> Response:
        accounts = self.accounts_provider() if self.accounts_provider else []
        body = accounts_body(
            accounts,
            base=self.base(request),
            csrf_token=session.csrf_token,
            now=self.clock(),
            can_pause=self.pause_account is not None,
        )
        return self.page(request, "Accounts", body, session, active="/accounts")

    async def pause(self, request: Request) -> Response:
        checked = await self.change(request)
        if isinstance(checked, Response):
            return checked
        if self.pause_account is None:
            return Response(status_code=404)
        paused = request.url.path.endswith("/pause")
        account = checked[1].get("account", "")
        result = self.pause_account(account, paused)
        if inspect.isawaitable(result):
            await result
        self.audit(request, "account paused" if paused else "account resumed", account)
        return RedirectResponse(f"{self.base(request)}/accounts", status_code=303)

    async def keys_page(self, request: Request, session: Session, **extra: Any) -> Response:
        now = self.clock()
        try:
            keys = await asyncio.to_thread(self.key_store.list)
        except KeyStoreError as exc:
            return self.page(request, "Keys", f'<p class="error">{esc(exc)}</p>', session, status=500)
        totals = await asyncio.to_thread(queries.key_usage, self.db, now - KEY_USAGE_DAYS * 86400)
        usage: dict[str, KeyUsage] = {}
        if self.budgets is not None:
            usage = {info.id: self.budgets.usage(info.id, now) for info in keys}
        status = int(extra.pop("status", 200))
        body = keys_body(
            keys, base=self.base(request), csrf_token=session.csrf_token, now=now, usage=usage, totals=totals, **extra
        )
        return self.page(request, "Keys", body, session, active="/keys", status=status)

    async def keys(self, request: Request, session: Session) -> Response:
        return await self.keys_page(request, session)

    async def key_edit(self, request: Request, session: Session) -> Response:
        info = self.key_store.get(request.path_params["key_id"])
        if info is None:
            return self.page(request, "Keys", "<p>No such key.</p>", session, status=404)
        return await self.keys_page(request, session, editing=info)

    async def key_create(self, request: Request) -> Response:
        checked = await self.change(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        name = form.get("name", "")
        try:
            limits = limits_from_form(form)
            secret = await asyncio.to_thread(self.key_store.create, name, limits)
        except (LimitsFormError, KeyStoreError) as exc:
            return await self.keys_page(request, session, error=str(exc), status=400)
        self.audit(request, "key created", repr(name.strip()))
        return await self.keys_page(request, session, created=(name.strip(), secret))

    async def key_limits(self, request: Request) -> Response:
        checked = await self.change(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        key_id = request.path_params["key_id"]
        limits: KeyLimits | None = None
        try:
            limits = limits_from_form(form)
            info = await asyncio.to_thread(self.key_store.update, key_id, limits)
        except (LimitsFormError, KeyStoreError) as exc:
            editing = self.key_store.get(key_id)
            return await self.keys_page(
                request, session, error=str(exc), status=400, editing=editing, form_values=limits
            )
        self.audit(request, "key limits changed", f"{info.name!r} {info.limits.to_dict()}")
        return RedirectResponse(f"{self.base(request)}/keys", status_code=303)

    async def key_revoke(self, request: Request) -> Response:
        checked = await self.change(request)
        if isinstance(checked, Response):
            return checked
        key_id = request.path_params["key_id"]
        removed = await asyncio.to_thread(self.key_store.revoke, key_id)
        if removed:
            if self.budgets is not None:
                self.budgets.forget(key_id)
            self.audit(request, "key revoked", key_id)
        return RedirectResponse(f"{self.base(request)}/keys", status_code=303)

    def request_filter(self, request: Request) -> tuple[queries.RequestFilter, str]:
        params = request.query_params
        since_name = params.get("since", "24h")
        span = SINCE_CHOICES.get(since_name, SINCE_CHOICES["24h"])
        since = self.clock() - span if span else 0.0
        if self.config.retention_days > 0:
            since = max(since, self.clock() - self.config.retention_days * 86400)
        status = params.get("status") or None
        request_filter = queries.RequestFilter(
            key=params.get("key") or None, model=params.get("model") or None, status=status, since=since
        )
        return request_filter, since_name if since_name in SINCE_CHOICES else "24h"

    async def requests(self, request: Request, session: Session) -> Response:
        request_filter, since_name = self.request_filter(request)
        before: tuple[float, int] | None = None
        cursor = request.query_params.get("before", "")
        if cursor:
            with_time, _, with_id = cursor.partition(":")
            try:
                before = (float(with_time), int(with_id))
            except ValueError:
                before = None
        rows = await asyncio.to_thread(queries.recent_requests, self.db, request_filter, before=before)
        keys = sorted(info.name for info in await asyncio.to_thread(self.key_store.list))
        body = requests_body(
            rows,
            base=self.base(request),
            request_filter=request_filter,
            since_name=since_name,
            first_page=before is None,
            keys=keys,
            page_size=queries.PAGE_SIZE,
        )
        return self.page(request, "Requests", body, session, active="/requests")

    async def requests_json(self, request: Request, session: Session) -> Response:
        request_filter, _ = self.request_filter(request)
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        rows = await asyncio.to_thread(
            queries.recent_requests, self.db, request_filter, after_id=after, limit=LIVE_BATCH
        )
        return JSONResponse({"rows": [row_json(r) for r in rows]})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            return Response(status_code=404)
        content = resources.files("codexgate.console").joinpath("static", name).read_bytes()
        return Response(content, media_type=media_type)


def _guarded(
    console: _Console, handler: Callable[[Request, Session], Awaitable[Response]]
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

    def __init__(self, app: Starlette, console: _Console) -> None:
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
    usage_db_path: Path,
    accounts_provider: AccountsProvider | None,
    metrics: Any = None,
    *,
    budgets: BudgetTracker | None = None,
    pause_account: PauseAccount | None = None,
    clock: Callable[[], float] = time.time,
) -> ConsoleApp:
    """The console as an ASGI app, to mount at ``/dashboard``."""
    console = _Console(config, key_store, usage_db_path, accounts_provider, metrics, budgets, pause_account, clock)
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
