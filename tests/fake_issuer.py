"""A fake OAuth issuer over real HTTP (aiohttp), for refresh tests: single-use rotating refresh tokens."""

from __future__ import annotations

import asyncio
import threading
import time
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

    async def token(self, request: web.Request) -> web.Response:
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
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
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
