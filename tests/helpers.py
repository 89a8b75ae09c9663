"""Test helpers shared across the suite: JWTs, auth.json files, a gateway served in a thread."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from codexgate.config import Settings, load_settings
from codexgate.storage.usage_db import UsageRecord, connect, fetch_records
from codexgate.storage.usage_writer import UsageWriter
from codexgate.testing.ports import free_port

__all__ = [
    "ServedApp",
    "free_port",
    "make_jwt",
    "serve_in_thread",
    "settings_for",
    "usage_rows",
    "wait_until",
    "write_auth_json",
]


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it is truthy; False if ``timeout`` seconds pass first (keep it generous:
    it bounds only how long a failing test waits, never how fast a passing one must be)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
    return True


def usage_rows(writer: UsageWriter, database: Path, count: int, timeout: float = 10.0) -> list[UsageRecord]:
    """The usage rows once at least ``count`` are written (a request's row may be submitted just after
    its answer went out); fewer after ``timeout`` seconds means the caller's assertion fails."""
    rows: list[UsageRecord] = []

    def enough() -> bool:
        nonlocal rows
        assert writer.flush(timeout)
        connection = connect(database)
        try:
            rows = fetch_records(connection)
        finally:
            connection.close()
        return len(rows) >= count

    wait_until(enough, timeout=timeout, interval=0.05)
    return rows


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'sig')}"


def write_auth_json(
    directory: Path,
    *,
    access_token: str | None = None,
    refresh_token: str = "rt_test_refresh_0",
    account_id: str = "acct_test_123",
    email: str = "dev@example.com",
    expires_in: float = 3600,
) -> dict[str, Any]:
    """Write a Codex-CLI-format auth.json with tokens that expire in ``expires_in`` seconds."""
    auth_claims = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus", "chatgpt_user_id": "user_1"}
    exp = int(time.time() + expires_in)
    access = access_token or make_jwt({"exp": exp, "https://api.openai.com/auth": auth_claims, "n": time.time()})
    id_token = make_jwt({"exp": exp, "email": email, "https://api.openai.com/auth": auth_claims})
    document = {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": id_token,
            "access_token": access,
            "refresh_token": refresh_token,
            "account_id": account_id,
        },
        "last_refresh": "2026-11-24T00:00:00Z",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth.json"
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return document


def settings_for(home: Path, upstream_url: str, **overrides: Any) -> Settings:
    flags: dict[str, Any] = {
        "home": str(home),
        "codex_home": str(home / "codex"),
        "upstream_url": upstream_url,
        # no test may reach the internet: refreshes go to a closed loopback port unless a test says otherwise
        "auth_issuer": "http://127.0.0.1:9",
        "port": 0,
        "upstream_retries": 2,
        "retry_budget": 3.0,
        **overrides,
    }
    return load_settings(flags=flags, env={}).settings


@dataclass
class ServedApp:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1") -> Iterator[ServedApp]:
    """Serve an ASGI app with uvicorn on an ephemeral loopback port, in a background thread."""
    config = uvicorn.Config(
        app, host=host, port=0, loop="asyncio", http="httptools", lifespan="on", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield ServedApp(base_url=f"http://{host}:{port}", server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
