"""The console over HTTP, in process: the gate, login, sessions, CSRF, headers, pages and the JSON feed."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from codexgate.console import ConsoleConfig, create_console
from codexgate.console.auth import hash_password, write_admin_file
from codexgate.storage.api_keys import KeyStore
from codexgate.storage.usage_writer import UsageRecord

from .conftest import PASSWORD, ConsoleSetup, write_usage

BASE = "http://testserver"


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def login(http: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/dashboard/login", data={"password": password})


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, "page has no CSRF token"
    return match.group(1)


async def test_console_is_404_until_a_password_is_set_then_follows_the_admin_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    console = create_console(ConsoleConfig(home=home), KeyStore(home / "keys.json"), home / "usage.db", None)
    app = Starlette(routes=[Mount("/dashboard", app=console)])
    async with client(app) as http:
        for path in ("/dashboard/", "/dashboard/login", "/dashboard/static/console.js"):
            assert (await http.get(path)).status_code == 404
        write_admin_file(home / "admin.json", hash_password("another password"))
        console.console.password._next_check = 0.0  # skip the once-a-second file check
        assert (await http.get("/dashboard/login")).status_code == 200
        assert (await login(http, "another password")).status_code == 303


async def test_login_sets_a_strict_httponly_cookie_and_pages_need_it(setup: ConsoleSetup) -> None:
    async with client(setup.app) as http:
        response = await http.get("/dashboard/keys")
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
        assert (await login(http, "wrong")).status_code == 401
        response = await login(http)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        page = await http.get("/dashboard/")
        assert page.status_code == 200 and "Overview" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and "style=" not in page.text


async def test_cookie_is_secure_over_tls(setup: ConsoleSetup) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=setup.app), base_url="https://testserver") as http:
        response = await login(http)
        assert "Secure" in response.headers["set-cookie"]


async def test_api_keys_do_not_open_the_console(setup: ConsoleSetup) -> None:
    key = setup.keys.create("laptop")
    async with client(setup.app) as http:
        response = await http.get("/dashboard/keys", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 303


async def test_changes_need_the_sessions_csrf_token(setup: ConsoleSetup, caplog: pytest.LogCaptureFixture) -> None:
    async with client(setup.app) as http:
        await login(http)
        page = await http.get("/dashboard/keys")
        token = csrf_of(page.text)
        caplog.set_level(logging.INFO, logger="codexgate.audit")
        refused = await http.post("/dashboard/keys", data={"name": "sneaky"})
        assert refused.status_code == 403
        refused = await http.post("/dashboard/keys", data={"name": "sneaky", "csrf_token": "x" * 43})
        assert refused.status_code == 403
        cross = await http.post(
            "/dashboard/keys", data={"name": "sneaky", "csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        assert setup.keys.list() == []
        created = await http.post("/dashboard/keys", data={"name": "ci", "csrf_token": token, "tokens_per_day": "1000"})
        assert created.status_code == 200
        [info] = setup.keys.list()
        assert info.name == "ci" and info.limits.tokens_per_day == 1000
        secret = re.search(r'id="new-key-value">([^<]+)<', created.text)
        assert secret and setup.keys.verify(secret.group(1)) == info
        # the header form of the token works too
        revoked = await http.post(f"/dashboard/keys/{info.id}/revoke", headers={"X-CSRF-Token": token})
        assert revoked.status_code == 303 and setup.keys.list() == []
    messages = [r.getMessage() for r in caplog.records if r.name == "codexgate.audit"]
    assert any("CSRF" in m for m in messages)
    assert any("key created 'ci'" in m for m in messages)
    assert any("key revoked" in m for m in messages)
    assert all(secret.group(1) not in m for m in messages)


async def test_five_wrong_passwords_lock_the_address_out(setup: ConsoleSetup) -> None:
    async with client(setup.app) as http:
        for _ in range(4):
            assert (await login(http, "nope")).status_code == 401
        fifth = await login(http, "nope")
        assert fifth.status_code == 401 and "wait" in fifth.text
        sixth = await login(http)  # even the right password waits
        assert sixth.status_code == 429 and int(sixth.headers["retry-after"]) >= 29
        assert "Too many wrong passwords" in sixth.text


async def test_logout_ends_the_session(setup: ConsoleSetup) -> None:
    async with client(setup.app) as http:
        await login(http)
        token = csrf_of((await http.get("/dashboard/")).text)
        response = await http.post("/dashboard/logout", data={"csrf_token": token})
        assert response.status_code == 303
        assert (await http.get("/dashboard/")).status_code == 303


async def test_limits_form_updates_a_key_and_rejects_bad_values(setup: ConsoleSetup) -> None:
    setup.keys.create("team")
    [info] = setup.keys.list()
    async with client(setup.app) as http:
        await login(http)
        token = csrf_of((await http.get(f"/dashboard/keys/{info.id}")).text)
        bad = await http.post(f"/dashboard/keys/{info.id}/limits", data={"csrf_token": token, "tokens_per_day": "lots"})
        assert bad.status_code == 400 and "whole number" in bad.text
        form = {
            "csrf_token": token,
            "tokens_per_month": "5,000,000",
            "requests_per_minute": "30",
            "allowed_models": "gpt-5*, o4-mini",
            "expires_at": "2027-01-01",
        }
        assert (await http.post(f"/dashboard/keys/{info.id}/limits", data=form)).status_code == 303
    limits = setup.keys.get("team").limits  # type: ignore[union-attr]
    assert limits.tokens_per_month == 5_000_000 and limits.requests_per_minute == 30
    assert limits.allowed_models == ("gpt-5*", "o4-mini")
    assert limits.expires_at == 1798761600.0


async def test_accounts_page_and_pause(setup: ConsoleSetup) -> None:
    async with client(setup.app) as http:
        await login(http)
        page = await http.get("/dashboard/accounts")
        assert "alice" in page.text and "42%" in page.text and "91%" in page.text and "cooling" in page.text
        token = csrf_of(page.text)
        key = setup.pool.accounts[0].key
        response = await http.post("/dashboard/accounts/pause", data={"csrf_token": token, "account": key})
        assert response.status_code == 303
        assert setup.pool.calls == [(key, True)]


async def test_overview_and_request_log_read_the_usage_db(setup: ConsoleSetup) -> None:
    now = time.time()
    records = [
        UsageRecord(
            endpoint="/v1/chat/completions",
            status=200,
            time=now - 60 * i,
            key_name="ci",
            model_requested="gpt-5",
            input_tokens=100,
            cached_tokens=50,
            output_tokens=10,
            ttft_ms=300.0 + i,
            duration_ms=900.0,
        )
        for i in range(60)
    ]
    records.append(
        UsageRecord(
            endpoint="/v1/chat/completions",
            status=429,
            time=now - 5,
            key_name="ci",
            model_requested="gpt-5",
            error_code="budget_exceeded",
        )
    )
    write_usage(setup.db, records)
    async with client(setup.app) as http:
        await login(http)
        overview = await http.get("/dashboard/?range=1h")
        assert overview.status_code == 200 and "<svg" in overview.text and "61" in overview.text
        log = await http.get("/dashboard/requests")
        assert "The key is over its budget" in log.text and 'class="err"' in log.text and "50%" in log.text
        assert 'id="older"' in log.text
        errors = await http.get("/dashboard/requests?status=errors")
        assert errors.text.count("<tr") == 2  # header + the one 429
        older = re.search(r'id="older" href="([^"]+)"', log.text)
        assert older
        page_two = await http.get(older.group(1).replace("&amp;", "&"))
        assert page_two.text.count("<tr") == 1 + 11
        feed = await http.get("/dashboard/requests.json?after=0&status=errors")
        [row] = feed.json()["rows"]
        assert row["error"] and row["cells"][4] == "429" and row["cells"][-1] == "The key is over its budget"
        newest = max(r["id"] for r in (await http.get("/dashboard/requests.json?after=0")).json()["rows"])
        assert (await http.get(f"/dashboard/requests.json?after={newest}")).json()["rows"] == []
    async with client(setup.app) as anonymous:
        assert (await anonymous.get("/dashboard/requests.json")).status_code == 401
