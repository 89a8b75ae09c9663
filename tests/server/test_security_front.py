"""Issue 20 item 2 (a web page in the user's browser) and issue 18 "every request leaves a trace":
the front rules (Content-Type, Host, Origin, WebSocket upgrades) and the access line, metrics count
and usage row of requests refused before they reach the backend. In-process, through the real app."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from codexgate.server.asgi import GatewayASGI
from codexgate.server.front import AuthFailureWatch, host_name
from codexgate.storage.usage_writer import UsageRecord
from tests.server.conftest import client_for, in_process_gateway

CHAT = "/v1/chat/completions"
#: valid JSON the schema refuses: a 400 proves the request got past the front rules
SCHEMA_REFUSED = b'{"model": "", "messages": []}'
VALID = b'{"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}'


def _rows(app: GatewayASGI, monkeypatch: pytest.MonkeyPatch) -> list[UsageRecord]:
    rows: list[UsageRecord] = []
    writer = app.state.gateway.usage_writer

    def submit(record: UsageRecord) -> bool:
        rows.append(record)
        return True

    monkeypatch.setattr(writer, "submit", submit)
    return rows


def _counts(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


# ---- Content-Type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("text/json", 415),
        ("application/json", 400),
        ("Application/JSON; charset=utf-8", 400),
        ("application/vnd.api+json", 400),
        (None, 400),
    ],
)
async def test_a_body_that_says_it_is_not_json_is_refused(
    tmp_path: Path, content_type: str | None, status: int
) -> None:
    async with in_process_gateway(tmp_path / "home") as (app, _), client_for(app) as client:
        headers = {"content-type": content_type} if content_type else {}
        for path in (CHAT, "/v1/responses", "/responses"):
            response = await client.post(path, content=SCHEMA_REFUSED, headers=headers)
            assert response.status_code == status, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == ("unsupported_media_type" if status == 415 else "invalid_value")
            assert response.headers["x-request-id"].startswith("req_")


# ---- Host ------------------------------------------------------------------------------------


def test_host_names_lose_their_port() -> None:
    assert host_name("[::1]:9191") == "::1"
    assert host_name("LocalHost:80") == "localhost"
    assert host_name("127.0.0.1") == "127.0.0.1"
    assert host_name("evil.example:9191") == "evil.example"


@pytest.mark.parametrize(
    ("host", "accepted"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:9191", True),
        ("localhost:1234", True),
        ("LOCALHOST", True),
        ("[::1]:9191", True),
        ("attacker.example", False),
        ("attacker.example:9191", False),
        ("127.0.0.1.attacker.example", False),
        ("localhost.", False),
    ],
)
async def test_without_keys_only_loopback_host_names_are_answered(tmp_path: Path, host: str, accepted: bool) -> None:
    async with in_process_gateway(tmp_path / "home") as (app, _), client_for(app) as client:
        chat = await client.post(CHAT, content=VALID, headers={"host": host})
        models = await client.get("/v1/models", headers={"host": host})
        if accepted:
            assert chat.status_code == 502 and chat.json()["error"]["code"] == "upstream_unreachable"
            assert models.status_code != 421
        else:  # DNS rebinding: the page's own name resolved to 127.0.0.1
            for response in (chat, models):
                assert response.status_code == 421, response.text
                assert response.json()["error"]["code"] == "host_not_allowed"


async def test_keyed_gateways_accept_any_host_unless_allowed_hosts_is_set(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path / "a", keys=("ci",)) as (app, keys), client_for(app) as client:
        auth = {"authorization": f"Bearer {keys['ci']}"}
        for host in ("codexgate:9191", "gateway.internal"):  # Docker service names, Open WebUI set-ups
            response = await client.post(CHAT, content=SCHEMA_REFUSED, headers={"host": host, **auth})
            assert response.status_code == 400, response.text
    overrides: dict[str, Any] = {"allowed_hosts": ["gateway.internal"]}
    async with (
        in_process_gateway(tmp_path / "b", keys=("ci",), **overrides) as (app, keys),
        client_for(app) as client,
    ):
        auth = {"authorization": f"Bearer {keys['ci']}"}
        good = await client.post(CHAT, content=SCHEMA_REFUSED, headers={"host": "Gateway.Internal:9191", **auth})
        assert good.status_code == 400
        assert (
            await client.post(CHAT, content=SCHEMA_REFUSED, headers={"host": "localhost", **auth})
        ).status_code == 400
        bad = await client.post(CHAT, content=SCHEMA_REFUSED, headers={"host": "codexgate", **auth})
        assert bad.status_code == 421 and bad.json()["error"]["code"] == "host_not_allowed"


# ---- Origin ----------------------------------------------------------------------------------


async def test_a_cross_origin_request_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process_gateway(tmp_path / "home") as (app, _), client_for(app) as client:
        opened: list[Any] = []

        async def never(*args: Any, **kwargs: Any) -> Any:
            opened.append(args)
            raise AssertionError("the upstream must not be called")

        monkeypatch.setattr(app.state.gateway.upstream, "open_stream", never)
        for origin in ("http://attacker.example", "null", "http://127.0.0.1:8080", "https://127.0.0.1"):
            for method, path in (("POST", CHAT), ("POST", "/v1/responses"), ("GET", "/v1/models")):
                response = await client.request(method, path, content=VALID, headers={"origin": origin})
                assert response.status_code == 403, (origin, path, response.text)
                assert response.json()["error"]["code"] == "origin_not_allowed"
                assert "access-control-allow-origin" not in response.headers
        assert opened == []
        # its own origin (a page the gateway served itself) is same-origin
        same = await client.post(CHAT, content=SCHEMA_REFUSED, headers={"origin": "http://127.0.0.1"})
        assert same.status_code == 400


async def test_origins_in_cors_origins_pass_and_others_do_not(tmp_path: Path) -> None:
    ui = "http://ui.example"
    overrides: dict[str, Any] = {"cors_origins": [ui]}
    async with in_process_gateway(tmp_path / "home", **overrides) as (app, _), client_for(app) as client:
        allowed = await client.post(CHAT, content=SCHEMA_REFUSED, headers={"origin": ui})
        assert allowed.status_code == 400 and allowed.headers["access-control-allow-origin"] == ui
        preflight = await client.options(CHAT, headers={"origin": ui, "access-control-request-method": "POST"})
        assert preflight.status_code == 200
        for request in (
            client.post(CHAT, content=VALID, headers={"origin": "http://ui.example.attacker.example"}),
            client.options(CHAT, headers={"origin": "http://other.example", "access-control-request-method": "POST"}),
        ):
            response = await request
            assert response.status_code == 403 and response.json()["error"]["code"] == "origin_not_allowed"


async def _websocket_upgrade(app: GatewayASGI, headers: list[tuple[bytes, bytes]]) -> tuple[list[Any], list[Any]]:
    """Drive ``app`` with a WebSocket scope; what it sent, and what reached the app behind the front."""
    sent: list[Any] = []
    reached: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "websocket.close", "code": 1000})

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    original = app.app
    app.app = inner  # type: ignore[assignment]
    try:
        scope = {"type": "websocket", "path": "/v1/responses", "scheme": "ws", "headers": headers, "state": {}}
        await app(scope, receive, send)
    finally:
        app.app = original
    return sent, reached


async def test_websocket_upgrades_meet_the_origin_and_host_rules(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path / "home") as (app, _):
        for headers in (
            [(b"host", b"127.0.0.1:9191"), (b"origin", b"http://attacker.example")],
            [(b"host", b"attacker.example:9191")],
        ):
            sent, reached = await _websocket_upgrade(app, headers)
            assert sent == [{"type": "websocket.close", "code": 1008}] and reached == []
        sent, reached = await _websocket_upgrade(
            app, [(b"host", b"127.0.0.1:9191"), (b"origin", b"http://127.0.0.1:9191")]
        )
        assert reached == ["/v1/responses"]


# ---- every request leaves a trace ------------------------------------------------------------


async def test_every_refused_request_leaves_one_access_line_and_one_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    overrides: dict[str, Any] = {"max_body_size": 1024, "max_header_size": 4096}
    async with (
        in_process_gateway(tmp_path / "home", keys=("ci",), **overrides) as (app, keys),
        client_for(app) as client,
    ):
        rows = _rows(app, monkeypatch)
        auth = {"authorization": f"Bearer {keys['ci']}"}
        cases: list[tuple[str, str, dict[str, str], bytes, int]] = [
            ("POST", CHAT, auth, b"{not json", 400),
            ("POST", CHAT, {"authorization": "Bearer cg-wrong"}, VALID, 401),
            ("POST", CHAT, {}, VALID, 401),
            ("GET", "/v1/nothing-here", auth, b"", 404),
            ("GET", CHAT, auth, b"", 405),
            ("POST", "/v1/responses", auth, b"x" * 2048, 413),
            ("POST", CHAT, {"content-type": "text/plain", **auth}, VALID, 415),
            ("POST", CHAT, {"x-big": "y" * 5000, **auth}, VALID, 431),
        ]
        caplog.set_level(logging.INFO, logger="codexgate.access")
        for method, path, headers, body, status in cases:
            caplog.clear()
            response = await client.request(method, path, headers=headers, content=body or None)
            assert response.status_code == status, (path, response.text)
            lines = [record for record in caplog.records if record.name == "codexgate.access"]
            assert len(lines) == 1, (status, [r.getMessage() for r in lines])
            access = lines[0].__dict__["access"]
            assert access["status"] == status and access["request_id"] == response.headers["x-request-id"]
            assert access["error_code"] == response.json()["error"]["code"]

        metrics_text = (await client.get("/metrics", headers=auth)).text
        requests = _counts(metrics_text, "codexgate_requests_total")
        by_status: dict[str, float] = {}
        for labels, value in requests.items():
            status_label = dict(labels)["status"]
            by_status[status_label] = by_status.get(status_label, 0) + value
        for status in (400, 404, 405, 413, 415, 431):
            assert by_status[str(status)] == 1, (status, by_status)
        assert by_status["401"] == 2
        endpoints = {dict(labels)["endpoint"] for labels in requests}
        assert endpoints <= {"chat.completions", "responses", "unknown", "/v1/chat/completions", "/metrics"}
        errors = _counts(metrics_text, "codexgate_request_errors_total")
        assert errors[(("code", "invalid_api_key"), ("endpoint", "chat.completions"), ("status", "401"))] == 2
        assert _counts(metrics_text, "codexgate_auth_failures_total")[()] == 2
        # usage rows: the admitted requests to answer endpoints only (400 and 413; not 401, 415 or 431)
        assert sorted((row.endpoint, row.status, row.error_code) for row in rows) == [
            ("chat.completions", 400, "invalid_json"),
            ("responses", 413, "request_too_large"),
        ]
        assert all(row.key_name == "ci" for row in rows)


async def test_a_burst_of_wrong_keys_is_named_in_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with in_process_gateway(tmp_path / "home", keys=("ci",)) as (app, _), client_for(app) as client:
        caplog.set_level(logging.WARNING, logger="codexgate.server")
        for _ in range(30):
            response = await client.post(CHAT, content=VALID, headers={"authorization": "Bearer cg-guess"})
            assert response.status_code == 401
        warnings = [r.getMessage() for r in caplog.records if "failed API key attempts" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "127.0.0.1" in warnings[0] and "cg-guess" not in caplog.text


def test_the_auth_failure_watch_warns_at_most_once_per_interval() -> None:
    watch = AuthFailureWatch(interval=60.0, burst=5)
    for second in range(4):
        watch.failed("10.0.0.9", now=float(second))
    assert watch.warnings == 0  # below the burst
    watch.failed("10.0.0.9", now=4.0)
    assert watch.warnings == 1
    for index in range(200):
        watch.failed(f"10.0.1.{index}", now=5.0 + index / 100)
    assert watch.warnings == 1  # one line per interval, however many addresses
    for _ in range(5):
        watch.failed("10.0.0.9", now=70.0)
    assert watch.warnings == 2


async def test_a_wildcard_in_cors_origins_allows_every_origin(tmp_path: Path) -> None:
    overrides: dict[str, Any] = {"cors_origins": ["*"]}
    async with in_process_gateway(tmp_path / "home", **overrides) as (app, _), client_for(app) as client:
        response = await client.post(CHAT, content=SCHEMA_REFUSED, headers={"origin": "http://any.example"})
        assert response.status_code == 400
