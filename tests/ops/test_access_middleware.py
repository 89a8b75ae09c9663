"""ApiKeyMiddleware over real HTTP (uvicorn on an ephemeral port), with the openai SDK and httpx."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from codexgate.server.access import ApiKeyMiddleware, check_bind_safety, is_loopback_host, keys_required
from codexgate.server.request_id import RequestIdMiddleware
from codexgate.storage.api_keys import KeyStore
from tests.helpers import serve_in_thread

ORIGIN = "http://ui.example"


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def models(request: Request) -> JSONResponse:
    return JSONResponse(
        {"object": "list", "data": [{"id": "gpt-5", "object": "model", "created": 0, "owned_by": "openai"}]}
    )


async def who(request: Request) -> JSONResponse:
    return JSONResponse({"key_name": request.state.key_name})


async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse("codexgate_active_streams 0\n")


def build_app(store: KeyStore, *, required: bool = False) -> Starlette:
    # Outermost first: request id, then CORS, then the key check (the order the server must use).
    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/models", models),
            Route("/v1/whoami", who, methods=["GET", "POST"]),
            Route("/whoami", who),
            Route("/metrics", metrics),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"]),
            Middleware(ApiKeyMiddleware, key_store=store, keys_required=required),
        ],
    )


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "home" / "keys.json")


@pytest.fixture
def base_url(store: KeyStore) -> Iterator[str]:
    # The server holds its own KeyStore, as a running gateway would; the tests write through another.
    with serve_in_thread(build_app(KeyStore(store.path))) as served:
        yield served.base_url


def _eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    started = time.monotonic()
    while not check():
        elapsed = time.monotonic() - started
        assert elapsed < within, f"not true within {within} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_without_keys_any_bearer_or_none_is_accepted(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as http:
        assert http.get("/v1/models").status_code == 200
        assert http.get("/models", headers={"Authorization": "Bearer whatever"}).status_code == 200
        assert http.get("/v1/whoami").json() == {"key_name": None}
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-anything", max_retries=0)
    assert [m.id for m in client.models.list()] == ["gpt-5"]


def test_key_lifecycle_accepted_rejected_revoked(base_url: str, store: KeyStore) -> None:
    key = store.create("laptop")
    store.create("other")  # revoking "laptop" still leaves a key, so the gateway stays closed
    good = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)
    bad = openai.OpenAI(base_url=base_url + "/v1", api_key="cg-not-a-real-key", max_retries=0)

    def rejects_wrong_key() -> bool:
        try:
            bad.models.list()
        except openai.AuthenticationError as exc:
            assert exc.status_code == 401 and exc.code == "invalid_api_key"
            return True
        return False

    _eventually(rejects_wrong_key)
    assert [m.id for m in good.models.list()] == ["gpt-5"]

    with httpx.Client(base_url=base_url) as http:
        assert http.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"}).json() == {"key_name": "laptop"}
        assert http.get("/whoami", headers={"Authorization": f"bearer {key}"}).status_code == 200
        missing = http.get("/models")
        assert missing.status_code == 401
        assert missing.json() == {
            "error": {
                "message": missing.json()["error"]["message"],
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        assert missing.headers.get_list("x-request-id") and len(missing.headers.get_list("x-request-id")) == 1
        wrong = http.post("/v1/whoami", headers={"Authorization": "Bearer cg-wrong"}, json={"model": "x"})
        assert wrong.status_code == 401 and "cg-wrong" not in wrong.text
        assert http.get("/v1/models", headers={"Authorization": key}).status_code == 401  # no Bearer scheme

    store.revoke("laptop")

    def rejects_revoked_key() -> bool:
        try:
            good.models.list()
        except openai.AuthenticationError:
            return True
        return False

    _eventually(rejects_revoked_key)


def test_health_is_open_and_metrics_is_protected(base_url: str, store: KeyStore) -> None:
    key = store.create("ops")
    with httpx.Client(base_url=base_url) as http:
        _eventually(lambda: http.get("/metrics").status_code == 401)
        assert http.get("/health").status_code == 200
        assert http.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_cors_preflight_passes_and_a_401_carries_cors_headers(base_url: str, store: KeyStore) -> None:
    store.create("ui")
    with httpx.Client(base_url=base_url) as http:
        _eventually(lambda: http.get("/v1/models").status_code == 401)
        preflight = http.options(
            "/v1/chat/completions",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        rejected = http.get("/v1/models", headers={"Origin": ORIGIN})
        assert rejected.status_code == 401
        assert rejected.headers["access-control-allow-origin"] == ORIGIN


def test_revoking_the_last_key_reopens_a_loopback_gateway(base_url: str, store: KeyStore) -> None:
    key = store.create("only")
    with httpx.Client(base_url=base_url) as http:
        _eventually(lambda: http.get("/v1/models").status_code == 401)
        store.revoke("only")
        _eventually(lambda: http.get("/v1/models").status_code == 200)
        assert http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_a_public_gateway_stays_closed_when_the_last_key_is_revoked(store: KeyStore) -> None:
    key = store.create("only")
    required = keys_required("0.0.0.0", allow_no_auth=False)
    assert required and not keys_required("127.0.0.1", False) and not keys_required("0.0.0.0", True)
    app = build_app(KeyStore(store.path), required=required)
    with serve_in_thread(app) as served, httpx.Client(base_url=served.base_url) as http:
        assert http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        store.revoke("only")
        _eventually(lambda: http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401)
        refused = http.get("/v1/models")
        assert refused.status_code == 401 and "keys create" in refused.json()["error"]["message"]
        assert http.get("/health").status_code == 200


async def test_lifespan_and_non_http_scopes_pass_through(store: KeyStore) -> None:
    seen: list[str] = []

    async def inner(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))

    store.create("k")
    middleware = ApiKeyMiddleware(inner, key_store=store)  # type: ignore[arg-type]
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


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
