"""The console as the real server serves it: at /dashboard, 404 until a password is set, its own
sign-in (an API key neither opens it nor is needed for it), the API untouched by its cookie."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from codexgate.server.app import create_app
from codexgate.storage.api_keys import KeyStore
from tests.helpers import settings_for, write_auth_json


def _client(tmp_path: Path, **overrides: object) -> httpx.AsyncClient:
    write_auth_json(tmp_path / "home")
    settings = settings_for(tmp_path / "home", "http://127.0.0.1:9", **overrides)
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:9191")


async def test_dashboard_is_404_until_a_password_is_set(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for path in ("/dashboard/", "/dashboard/login", "/dashboard/keys"):
            assert (await client.get(path)).status_code == 404, path


async def test_dashboard_has_its_own_sign_in_and_api_keys_do_not_open_it(tmp_path: Path) -> None:
    key = KeyStore((tmp_path / "home") / "keys.json").create("team")
    async with _client(tmp_path, admin_password="correct horse battery") as client:
        login = await client.get("/dashboard/login")
        assert login.status_code == 200 and "password" in login.text.lower()
        # the API still wants its key; the dashboard does not take one
        assert (await client.get("/v1/models")).status_code == 401
        page = await client.get("/dashboard/keys", headers={"authorization": f"Bearer {key}"})
        assert page.status_code != 200 or "login" in str(page.url)
        assert "team" not in page.text  # nothing of the keys page without the admin session


@pytest.mark.parametrize("path", ["/dashboard/login"])
async def test_dashboard_answers_with_its_security_headers(tmp_path: Path, path: str) -> None:
    async with _client(tmp_path, admin_password="correct horse battery") as client:
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
