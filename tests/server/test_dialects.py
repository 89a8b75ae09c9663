"""An endpoint joins both ways in by being declared once, and its errors speak its dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import JSONResponse, Response

from codexgate.errors import APIError
from codexgate.server.asgi import GatewayASGI
from codexgate.server.endpoints import RouteTable, endpoint, spec_of
from codexgate.server.errors import anthropic_type, envelope
from codexgate.server.routes import ROUTERS
from codexgate.server.routes import messages as messages_routes
from tests.server.conftest import ORIGIN, client_for, in_process_gateway

messages = APIRouter()
SEEN: list[str] = []


@messages.post("/v1/messages")
@endpoint(dialect="anthropic", direct=True)
async def create_message(request: Request) -> Response:
    SEEN.append("fastapi" if "endpoint" in request.scope else "direct")
    body = await request.json()
    if body.get("fail") == "rate":
        raise APIError(
            429, "slow down", type="rate_limit_error", code="rate_limit_exceeded", headers={"retry-after": "3"}
        )
    if body.get("fail") == "crash":
        raise RuntimeError("boom")
    return JSONResponse({"type": "message", "content": []})


@pytest.fixture
async def anthropic_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[GatewayASGI, str]]:
    # this file's stand-in for the Messages routes takes the real ones' place
    others = tuple(router for router in ROUTERS if router is not messages_routes.router)
    monkeypatch.setattr("codexgate.server.app.ROUTERS", (*others, messages))
    SEEN.clear()
    async with in_process_gateway(tmp_path / "home", keys=("cli",), cors_origins=[ORIGIN]) as (app, keys):
        yield app, keys["cli"]


def _anthropic(body: Any, error_type: str) -> None:
    assert body == {"type": "error", "error": {"type": error_type, "message": body["error"]["message"]}}
    assert body["error"]["message"]


async def test_a_declared_endpoint_is_served_directly_and_through_fastapi(
    anthropic_gateway: tuple[GatewayASGI, str],
) -> None:
    app, key = anthropic_gateway
    assert set(app.direct) == {
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/responses",
        "/responses",
        "/v1/messages",
    }
    auth = {"Authorization": f"Bearer {key}"}
    async with client_for(app) as client:
        plain = await client.post("/v1/messages", json={}, headers=auth)
        browser = await client.post("/v1/messages", json={}, headers={**auth, "Origin": ORIGIN})
    assert plain.status_code == browser.status_code == 200
    assert plain.json() == browser.json() == {"type": "message", "content": []}
    assert SEEN == ["direct", "fastapi"]


@pytest.mark.parametrize("origin", [False, True])
async def test_errors_of_an_anthropic_endpoint_use_its_envelope(
    anthropic_gateway: tuple[GatewayASGI, str], origin: bool
) -> None:
    app, key = anthropic_gateway
    extra = {"Origin": ORIGIN} if origin else {}
    auth = {"Authorization": f"Bearer {key}", **extra}
    async with client_for(app) as client:
        missing = await client.post("/v1/messages", json={}, headers=extra)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        _anthropic(missing.json(), "authentication_error")
        limited = await client.post("/v1/messages", json={"fail": "rate"}, headers=auth)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        _anthropic(limited.json(), "rate_limit_error")
        crashed = await client.post("/v1/messages", json={"fail": "crash"}, headers=auth)
        assert crashed.status_code == 500
        _anthropic(crashed.json(), "api_error")
        assert crashed.headers["x-request-id"] in crashed.json()["error"]["message"]
        wrong_method = await client.get("/v1/messages", headers=auth)
        assert wrong_method.status_code == 405
        _anthropic(wrong_method.json(), "invalid_request_error")
        # the OpenAI endpoints beside it keep their own envelope
        openai_style = await client.get("/v1/chat/completions", headers=auth)
        assert openai_style.status_code == 405 and openai_style.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (431, "invalid_request_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_types_by_status(status: int, expected: str) -> None:
    assert anthropic_type(status) == expected
    error = APIError(status, "m", type="whatever", code="c", extra={"plan_type": "plus"})
    assert envelope(error, "anthropic") == {"type": "error", "error": {"type": expected, "message": "m"}}
    assert envelope(error, "openai") == {
        "error": {"message": "m", "type": "whatever", "param": None, "code": "c", "plan_type": "plus"}
    }


def test_the_marker_and_the_table_refuse_what_the_fast_path_cannot_serve() -> None:
    with pytest.raises(ValueError, match="dialect"):
        endpoint(dialect="klingon")  # type: ignore[arg-type]

    async def plain(request: Request) -> Response:
        return Response()

    assert spec_of(plain).dialect == "openai" and not spec_of(plain).direct
    for path, methods, function in (
        ("/v1/things/{thing_id}", ["POST"], plain),
        ("/v1/things", ["GET"], plain),
    ):
        app = FastAPI()
        app.add_api_route(path, endpoint(direct=True)(function), methods=methods)
        with pytest.raises(ValueError, match="fixed path and POST only"):
            RouteTable(app.router.routes)

    async def with_a_body(request: Request, body: dict[str, Any]) -> Response:
        return Response()

    app = FastAPI()
    app.add_api_route("/v1/things", endpoint(direct=True)(with_a_body), methods=["POST"])
    with pytest.raises(ValueError, match="takes the request only"):
        RouteTable(app.router.routes)
