"""The console's access layer: configuration, sessions and CSRF on each change, login and logout.

Sessions and the login throttle are in memory (``console/auth.py``); every state-changing post goes
through :meth:`ConsoleAccess.change`, which wants a live session, a same-origin request and the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``). Each admin action is one
line on the ``codexgate.audit`` logger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from codexgate.console.auth import AdminPassword, LoginThrottle, Session, SessionStore, verify_password
from codexgate.console.html import esc, layout
from codexgate.console.queries import UsageSource
from codexgate.storage.api_keys import KeyStore
from codexgate.storage.budgets import BudgetTracker

__all__ = ["AccountsProvider", "ConsoleAccess", "ConsoleConfig", "PauseAccount"]

logger = logging.getLogger("codexgate.console")
audit = logging.getLogger("codexgate.audit")

AccountsProvider = Callable[[], list[dict[str, Any]]]
#: ``pause_account(account_key, paused)``; may return an awaitable
PauseAccount = Callable[[str, bool], Awaitable[None] | None]

COOKIE_NAME: Final = "codexgate_console"
MAX_FORM_BYTES: Final = 64 * 1024


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


class ConsoleAccess:
    """What every handler shares: the collaborators, the session lookup, the CSRF check, login and logout."""

    def __init__(
        self,
        config: ConsoleConfig,
        key_store: KeyStore,
        usage_db_path: UsageSource,
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
