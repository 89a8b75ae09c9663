"""A fake OAuth issuer over real HTTP (aiohttp), for refresh tests: single-use rotating refresh tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers import make_jwt


@dataclass
class FakeIssuer:
    base_url: str = ""
    valid_refresh_tokens: set[str] = field(default_factory=set)
    used_refresh_tokens: set[str] = field(default_factory=set)
    refresh_calls: int = 0
    refresh_delay: float = 0.0
    issued: list[dict[str, str]] = field(default_factory=list)
    account_id: str = "acct_test_123"
    on_mint: list[Any] = field(default_factory=list)  # callables given each new token set

    def mint(self, expires_in: float = 3600) -> dict[str, str]:
        auth = {"chatgpt_account_id": self.account_id, "chatgpt_plan_type": "plus"}
        n = len(self.issued)
        tokens = {
            "access_token": make_jwt(
                {"exp": int(time.time() + expires_in), "https://api.openai.com/auth": auth, "n": n}
            ),
            "id_token": make_jwt({"email": "dev@example.com", "https://api.openai.com/auth": auth}),
            "refresh_token": f"rt_rotated_{n}_{time.monotonic_ns()}",
        }
        self.valid_refresh_tokens.add(tokens["refresh_token"])
        self.issued.append(tokens)
        for callback in self.on_mint:
            callback(tokens)
        return tokens

    # ---- authorization code + PKCE -------------------------------------------------------------
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (challenge, redirect_uri)
    device_pending: int = 2
    device_polls: int = 0
    exchanges: int = 0

    async def authorize(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return web.Response(status=400, text="PKCE required")
        code = f"code_{len(self.codes)}_{time.monotonic_ns()}"
        self.codes[code] = (query["code_challenge"], query["redirect_uri"])
        location = f"{query['redirect_uri']}?{urllib.parse.urlencode({'code': code, 'state': query['state']})}"
        raise web.HTTPFound(location)

    def _verify_pkce(self, code: str, verifier: str, redirect_uri: str) -> bool:
        challenge, expected_redirect = self.codes.pop(code, ("", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return bool(challenge) and digest == challenge and redirect_uri == expected_redirect

    async def device_usercode(self, request: web.Request) -> web.Response:
        body: Any = await request.json()
        if not body.get("client_id"):
            return web.json_response({"error": "client_id required"}, status=400)
        return web.json_response({"device_auth_id": "dev_1", "user_code": "ABCD-1234", "interval": "0"})

    async def device_token(self, request: web.Request) -> web.Response:
        body: Any = await request.json()
        self.device_polls += 1
        if body.get("device_auth_id") != "dev_1" or body.get("user_code") != "ABCD-1234":
            return web.json_response({"error": "bad device code"}, status=400)
        if self.device_polls <= self.device_pending:
            return web.json_response({"error": "authorization_pending"}, status=403)
        verifier = "device-verifier-" + "x" * 43
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        code = f"devcode_{time.monotonic_ns()}"
        self.codes[code] = (challenge, f"{self.base_url}/deviceauth/callback")
        return web.json_response({"authorization_code": code, "code_verifier": verifier})

    async def token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            if form.get("grant_type") != "authorization_code":
                return web.json_response({"error": "unsupported_grant_type"}, status=400)
            self.exchanges += 1
            if not self._verify_pkce(
                str(form.get("code")), str(form.get("code_verifier")), str(form.get("redirect_uri"))
            ):
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self.mint())
        body: Any = await request.json()
        if body.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        self.refresh_calls += 1
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        token = body.get("refresh_token")
        if token in self.used_refresh_tokens:
            return web.json_response(
                {"error": {"message": "Your refresh token has already been used", "code": "refresh_token_reused"}},
                status=401,
            )
        if token not in self.valid_refresh_tokens:
            return web.json_response({"error": {"code": "refresh_token_invalidated"}}, status=401)
        self.valid_refresh_tokens.discard(token)
        self.used_refresh_tokens.add(token)
        return web.json_response(self.mint())


@contextmanager
def fake_issuer_thread() -> Iterator[FakeIssuer]:
    issuer = FakeIssuer()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop_holder: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        loop_holder.append(asyncio.get_running_loop())
        app = web.Application()
        app.router.add_post("/oauth/token", issuer.token)
        app.router.add_get("/oauth/authorize", issuer.authorize)
        app.router.add_post("/api/accounts/deviceauth/usercode", issuer.device_usercode)
        app.router.add_post("/api/accounts/deviceauth/token", issuer.device_token)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        issuer.base_url = f"http://127.0.0.1:{port}"
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield issuer
    finally:
        assert stop is not None
        loop_holder[0].call_soon_threadsafe(stop.set)
        thread.join(10)
