"""Every endpoint through both ways into the server, against the real ``create_app``.

With CORS configured, a request without ``Origin`` to an answer endpoint takes the direct way and one
with ``Origin`` goes through FastAPI; other endpoints always go through FastAPI. For each endpoint, each
key situation (no key configured; keys configured and the key missing, wrong or right) and both
ways, the status, the error envelope and the headers (but CORS's own) must be the same.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from codexgate.server.asgi import GatewayASGI
from codexgate.server.gateway import gateway_of
from codexgate.server.routes import chat, responses
from tests.server.conftest import ORIGIN, client_for, in_process_gateway

CHAT = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5", "input": "hi"}
CORS_HEADERS = frozenset(
    {"access-control-allow-origin", "access-control-expose-headers", "access-control-allow-credentials", "vary"}
)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: dict[str, Any] | None = None
    #: the status with the right key (or none needed); None: whatever it is, both ways alike
    status: int | None = None
    code: str | None = None
    needs_key: bool = True

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


CASES = [
    Case("POST", "/v1/chat/completions", CHAT, 502, "upstream_unreachable"),
    Case("POST", "/chat/completions", CHAT, 502, "upstream_unreachable"),
    Case("POST", "/v1/chat/completions", {**CHAT, "stream": True}, 502, "upstream_unreachable"),
    Case("POST", "/v1/responses", RESPONSES, 502, "upstream_unreachable"),
    Case("POST", "/responses", {**RESPONSES, "stream": True}, 502, "upstream_unreachable"),
    Case("POST", "/v1/chat/completions", {"model": "gpt-5", "messages": []}, 400, None),
    Case("POST", "/v1/responses", {"input": "no model"}, 400, None),
    Case("GET", "/v1/models", None, 502, "models_unavailable"),
    Case("GET", "/models", None, 502, "models_unavailable"),
    Case("GET", "/v1/models/gpt-5", None, None),
    Case("GET", "/models/gpt-5", None, None),
    Case("GET", "/health", None, 200, needs_key=False),
    Case("GET", "/metrics", None, 200),
    Case("GET", "/nope", None, 404, "unknown_url"),
    Case("POST", "/v1/nope", CHAT, 404, "unknown_url"),
    Case("GET", "/v1/chat/completions", None, 405, "method_not_allowed"),
    Case("DELETE", "/responses", None, 405, "method_not_allowed"),
]


@pytest.fixture
async def open_gateway(tmp_path: Path) -> AsyncIterator[GatewayASGI]:
    async with in_process_gateway(tmp_path / "open", cors_origins=[ORIGIN]) as (app, _keys):
        yield app


@pytest.fixture
async def keyed_gateway(tmp_path: Path) -> AsyncIterator[tuple[GatewayASGI, str]]:
    async with in_process_gateway(tmp_path / "keyed", keys=("laptop",), cors_origins=[ORIGIN]) as (app, keys):
        yield app, keys["laptop"]


async def _send(app: GatewayASGI, case: Case, authorization: str | None, origin: bool) -> httpx.Response:
    headers = {"Origin": ORIGIN} if origin else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with client_for(app) as client:
        return await client.request(case.method, case.path, json=case.body, headers=headers)


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers (CORS's own and the request id left out) and body, with the request id masked."""
    ids = response.headers.get_list("x-request-id")
    assert len(ids) == 1 and re.fullmatch(r"req_[0-9a-f]{24}", ids[0]), ids
    assert response.headers.get_list("request-id") == ids  # Anthropic's name for it, on every answer
    headers = {
        k: v for k, v in response.headers.items() if k not in CORS_HEADERS and k not in ("x-request-id", "request-id")
    }
    content_type = response.headers.get("content-type", "")
    body: Any = response.text.replace(ids[0], "req_ID")
    if content_type.startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"]["message"] = body["error"]["message"].replace(ids[0], "req_ID")
    return response.status_code, headers, body


def _assert_envelope(response: httpx.Response, code: str | None) -> None:
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error


async def _both_ways(app: GatewayASGI, case: Case, authorization: str | None) -> httpx.Response:
    plain = await _send(app, case, authorization, origin=False)
    browser = await _send(app, case, authorization, origin=True)
    assert browser.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in plain.headers
    status, headers, body = _comparable(plain)
    browser_headers = _comparable(browser)[1]
    if case.path.endswith("/metrics") and status == 200:  # counters move between the two requests
        body = browser_body = None
        headers.pop("content-length", None)
        browser_headers.pop("content-length", None)
    else:
        browser_body = _comparable(browser)[2]
    assert (status, headers, body) == (browser.status_code, browser_headers, browser_body), str(case)
    return plain


async def test_the_answer_endpoints_are_served_directly_and_the_rest_through_fastapi(
    open_gateway: GatewayASGI, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(open_gateway.direct) == {
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/responses",
        "/responses",
        "/v1/messages",
        "/messages",
        "/v1/messages/count_tokens",
        "/messages/count_tokens",
    }
    ways: list[str] = []

    def spy(request: Request) -> Any:
        # Starlette's router puts the endpoint it routed to in the scope; the direct way does not route
        ways.append("fastapi" if "endpoint" in request.scope else "direct")
        return gateway_of(request)

    monkeypatch.setattr(chat, "gateway_of", spy)
    monkeypatch.setattr(responses, "gateway_of", spy)
    for case in CASES[:5]:
        await _send(open_gateway, case, None, origin=False)
    assert ways == ["direct"] * 5
    for case in CASES[:5]:
        await _send(open_gateway, case, None, origin=True)
    assert ways == ["direct"] * 5 + ["fastapi"] * 5


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_without_keys_both_ways_answer_alike(open_gateway: GatewayASGI, case: Case) -> None:
    for authorization in (None, "Bearer anything"):
        response = await _both_ways(open_gateway, case, authorization)
        if case.status is not None:
            assert response.status_code == case.status, (str(case), response.text)
        if response.status_code >= 400:
            _assert_envelope(response, case.code)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_with_keys_both_ways_answer_alike(keyed_gateway: tuple[GatewayASGI, str], case: Case) -> None:
    app, key = keyed_gateway
    for situation, authorization in (
        ("key missing", None),
        ("key wrong", "Bearer cg-not-a-real-key"),
        ("key without the Bearer scheme", key),
        ("key right", f"Bearer {key}"),
        ("key right, lower-case scheme", f"bearer {key}"),
    ):
        response = await _both_ways(app, case, authorization)
        refused = case.needs_key and not situation.startswith("key right")
        if refused:
            assert response.status_code == 401, (str(case), situation)
            _assert_envelope(response, "invalid_api_key")
            assert response.headers["www-authenticate"] == "Bearer"
            assert "cg-not-a-real-key" not in response.text and key not in response.text
        else:
            if case.status is not None:
                assert response.status_code == case.status, (str(case), situation, response.text)
            assert response.status_code != 401
            if response.status_code >= 400:
                _assert_envelope(response, case.code)


async def test_a_preflight_passes_without_a_key(keyed_gateway: tuple[GatewayASGI, str]) -> None:
    app, _key = keyed_gateway
    async with client_for(app) as client:
        preflight = await client.options(
            "/v1/chat/completions",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN


async def test_the_key_name_reaches_the_call(
    keyed_gateway: tuple[GatewayASGI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, key = keyed_gateway
    rows: list[Any] = []
    monkeypatch.setattr(app.state.gateway.usage_writer, "submit", rows.append)
    for origin in (False, True):
        response = await _send(app, CASES[0], f"Bearer {key}", origin=origin)
        assert response.status_code == 502
    assert [row.key_name for row in rows] == ["laptop", "laptop"]
    assert [row.error_code for row in rows] == ["upstream_unreachable"] * 2


@pytest.mark.parametrize(
    ("module", "function", "case"), [(chat, "map_chat_request", CASES[0]), (responses, "prepare_body", CASES[3])]
)
async def test_an_http_exception_keeps_its_status_on_both_ways(
    open_gateway: GatewayASGI, monkeypatch: pytest.MonkeyPatch, module: Any, function: str, case: Case
) -> None:
    def teapot(*_args: object) -> object:
        raise HTTPException(418, "short and stout", headers={"x-why": "tea"})

    monkeypatch.setattr(module, function, teapot)
    response = await _both_ways(open_gateway, case, None)
    assert response.status_code == 418 and response.headers["x-why"] == "tea"
    assert response.json() == {
        "error": {"message": "short and stout", "type": "invalid_request_error", "param": None, "code": None}
    }
    assert open_gateway.state.gateway.limiter.active == 0


async def test_an_unexpected_error_is_the_same_500_on_both_ways(
    open_gateway: GatewayASGI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> object:
        raise RuntimeError("secret-token-value-should-not-leak")

    monkeypatch.setattr(chat, "map_chat_request", broken)
    plain = await _send(open_gateway, CASES[0], None, origin=False)
    browser = await _send(open_gateway, CASES[0], None, origin=True)
    for response in (plain, browser):
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "internal_error"
        assert response.headers["x-request-id"] in error["message"]
        assert "secret-token-value" not in response.text and "Traceback" not in response.text
    assert _comparable(plain)[2] == _comparable(browser)[2]
    logged = [r for r in caplog.records if r.getMessage().startswith("unhandled RuntimeError")]
    assert len(logged) == 2  # once per request, on either way
    assert {plain.headers["x-request-id"], browser.headers["x-request-id"]} == {
        r.getMessage().rsplit("request ", 1)[1].rstrip(")") for r in logged
    }
