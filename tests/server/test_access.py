"""The key rule over time (keys created and revoked while the gateway runs), on a public address, for
WebSockets, and the bind-safety rule. The endpoint-by-endpoint matrix is in test_endpoint_matrix.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, WebSocket

from codexgate.server.access import check_bind_safety, is_loopback_host, keys_required
from codexgate.server.asgi import GatewayASGI
from codexgate.server.routes import ROUTERS
from codexgate.storage.api_keys import KeyStore
from tests.server.conftest import client_for, in_process_gateway


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Until ``await check()`` is true; the key store re-reads its file at most every so often."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"not true within {within} s"
        await asyncio.sleep(0.05)


async def test_keys_created_and_revoked_while_running(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path / "home") as (app, _keys):
        store = KeyStore(app.state.settings.keys_file)  # another process, as `codexgate keys` would be
        async with client_for(app) as client:

            async def status(authorization: str | None = None) -> int:
                headers = {"Authorization": authorization} if authorization else {}
                return (await client.get("/metrics", headers=headers)).status_code

            assert await status() == 200  # no key: open (a loopback gateway)
            key = store.create("laptop")
            store.create("other")

            async def closed() -> bool:
                return await status() == 401

            await _eventually(closed)
            assert await status(f"Bearer {key}") == 200
            assert store.revoke("laptop")

            async def revoked() -> bool:
                return await status(f"Bearer {key}") == 401

            await _eventually(revoked)
            assert store.revoke("other")

            async def reopened() -> bool:
                return await status() == 200

            await _eventually(reopened)  # the last key gone: a loopback gateway is open again


async def test_a_public_gateway_stays_closed_when_the_last_key_is_revoked(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path / "home", keys=("only",), host="0.0.0.0") as (app, keys):
        store = KeyStore(app.state.settings.keys_file)
        async with client_for(app) as client:
            auth = {"Authorization": f"Bearer {keys['only']}"}
            assert (await client.get("/metrics", headers=auth)).status_code == 200
            store.revoke("only")

            async def refused() -> bool:
                return (await client.get("/metrics", headers=auth)).status_code == 401

            await _eventually(refused)
            for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
                response = await client.request(method, path, json={})
                assert response.status_code == 401
                assert "keys create" in response.json()["error"]["message"]
            assert (await client.get("/health")).status_code == 200


async def test_a_websocket_route_is_covered_by_the_same_key_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets = APIRouter()

    @sockets.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(websocket.scope["state"]["key_name"]))
        await websocket.close()

    monkeypatch.setattr("codexgate.server.app.ROUTERS", (*ROUTERS, sockets))
    async with in_process_gateway(tmp_path / "home", keys=("cli",)) as (app, keys):
        assert await _websocket(app, None) == [{"type": "websocket.close", "code": 1008}]
        assert await _websocket(app, "Bearer wrong") == [{"type": "websocket.close", "code": 1008}]
        sent = await _websocket(app, f"Bearer {keys['cli']}")
        assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
        assert sent[1]["text"] == "cli"


async def _websocket(app: GatewayASGI, authorization: str | None) -> list[MutableMapping[str, Any]]:
    """What the app sends on a WebSocket handshake for ``/v1/realtime``."""
    sent: list[MutableMapping[str, Any]] = []
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", authorization.encode())] if authorization else []
    scope: dict[str, Any] = {"type": "websocket", "path": "/v1/realtime", "raw_path": b"/v1/realtime"}
    scope |= {"headers": headers, "query_string": b"", "root_path": "", "scheme": "ws", "subprotocols": []}
    scope |= {"asgi": {"version": "3.0"}, "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "state": {}}
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    ("host", "has_keys", "allow_no_auth", "refused"),
    [
        ("127.0.0.1", False, False, False),
        ("127.0.0.2", False, False, False),
        ("localhost", False, False, False),
        ("::1", False, False, False),
        ("[::1]", False, False, False),
        ("0.0.0.0", False, False, True),
        ("::", False, False, True),
        ("192.168.1.20", False, False, True),
        ("gateway.lan", False, False, True),
        ("0.0.0.0", True, False, False),
        ("0.0.0.0", False, True, False),
    ],
)
def test_bind_safety(host: str, has_keys: bool, allow_no_auth: bool, refused: bool) -> None:
    message = check_bind_safety(host, has_keys, allow_no_auth)
    assert (message is not None) == refused
    if message:
        assert host in message and "--allow-no-auth" in message and "keys create" in message
    assert is_loopback_host(host) == (host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert keys_required(host, allow_no_auth) == (not allow_no_auth and not is_loopback_host(host))
