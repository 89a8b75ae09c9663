"""The console's pages and their form posts: overview, accounts, keys, the request log and its JSON feed.

Database reads run in worker threads (``asyncio.to_thread``) so the event loop that serves the API
never waits for them.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib import resources
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from codexgate.console import queries
from codexgate.console.access import ConsoleAccess
from codexgate.console.accounts_page import accounts_body
from codexgate.console.auth import Session
from codexgate.console.html import esc
from codexgate.console.keys_page import LimitsFormError, keys_body, limits_from_form
from codexgate.console.overview_page import RANGES, overview_body
from codexgate.console.requests_page import SINCE_CHOICES, requests_body, row_json
from codexgate.storage.api_keys import KeyStoreError
from codexgate.storage.budgets import KeyLimits, KeyUsage

__all__ = ["ConsoleHandlers"]

LIVE_BATCH: Final = 50
KEY_USAGE_DAYS: Final = 30
STATIC_FILES: Final = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


class ConsoleHandlers(ConsoleAccess):
    """The page handlers (``(request, session)`` for pages behind the login, ``(request)`` for posts)."""

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
            poll_seconds=self.config.poll_interval_seconds,
            live_minutes=self.config.live_minutes,
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
