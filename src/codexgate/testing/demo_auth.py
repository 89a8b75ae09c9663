"""Throw-away credentials for the demo, and the simulator's stand-in for the OAuth token endpoint.

The tokens are shaped like the real ones (JWTs carrying the ChatGPT claims the gateway reads) but
unsigned: only the simulator accepts them. The token endpoint answers refreshes (single-use refresh
tokens, as the real issuer rotates them), so a demo that runs for hours refreshes against the
simulator and never against the real sign-in server.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEMO_ACCOUNT_ID", "MAX_TOKEN_REQUEST_BYTES", "TokenIssuer", "demo_auth_document", "write_demo_auth"]

DEMO_ACCOUNT_ID = "acct_demo"
DEMO_EMAIL = "demo@example.invalid"
MAX_TOKEN_REQUEST_BYTES = 64 * 1024
AUTH_CLAIMS = "https://api.openai.com/auth"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'demo')}"


def _token_set(now: float, expires_in: float, account_id: str) -> dict[str, str]:
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus", "chatgpt_user_id": "user_demo"}
    exp = int(now + expires_in)
    return {
        "access_token": _unsigned_jwt({"exp": exp, AUTH_CLAIMS: auth, "jti": secrets.token_hex(8)}),
        "id_token": _unsigned_jwt({"exp": exp, "email": DEMO_EMAIL, AUTH_CLAIMS: auth}),
        "refresh_token": "rt_demo_" + secrets.token_hex(16),
    }


def demo_auth_document(now: float, *, expires_in: float = 3600, account_id: str = DEMO_ACCOUNT_ID) -> dict[str, Any]:
    """A Codex-CLI-format ``auth.json`` document with throw-away tokens."""
    tokens = _token_set(now, expires_in, account_id)
    return {
        "OPENAI_API_KEY": None,
        "tokens": {**tokens, "account_id": account_id},
        "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
    }


def write_demo_auth(directory: Path, *, expires_in: float = 3600) -> Path:
    """Write throw-away credentials to ``directory/auth.json`` (mode 0600) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth.json"
    data = json.dumps(demo_auth_document(time.time(), expires_in=expires_in)).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


class TokenIssuer:
    """``POST /oauth/token`` for ``grant_type=refresh_token``: a fresh token set, each refresh token once.

    :meth:`answer` takes the raw request body (JSON, as the gateway sends it, or form-encoded) and
    returns ``(status, body)``; the simulator's server wraps it. ``refreshes`` counts the token sets
    issued, and ``on_refresh`` (if given) is called with that count after each one."""

    def __init__(
        self,
        *,
        expires_in: float = 3600,
        account_id: str = DEMO_ACCOUNT_ID,
        on_refresh: Callable[[int], None] | None = None,
    ) -> None:
        self.expires_in = expires_in
        self.account_id = account_id
        self.on_refresh = on_refresh
        self.refreshes = 0
        self._spent: set[str] = set()

    def answer(self, raw: bytes, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        if len(raw) > MAX_TOKEN_REQUEST_BYTES:
            return 413, {"error": "invalid_request"}
        body: Any
        try:
            if "form" in content_type.lower() and not raw.lstrip().startswith(b"{"):
                body = dict(urllib.parse.parse_qsl(raw.decode()))
            else:
                body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return 400, {"error": "invalid_request"}
        refresh_token = body.get("refresh_token")
        if body.get("grant_type") != "refresh_token" or not isinstance(refresh_token, str) or not refresh_token:
            return 400, {"error": "unsupported_grant_type"}
        if refresh_token in self._spent:
            return 401, {"error": {"code": "refresh_token_reused", "message": "refresh token already used"}}
        self._spent.add(refresh_token)
        self.refreshes += 1
        if self.on_refresh is not None:
            self.on_refresh(self.refreshes)
        return 200, {**_token_set(time.time(), self.expires_in, self.account_id), "expires_in": int(self.expires_in)}
