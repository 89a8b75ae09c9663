"""Throw-away credentials for the demo, and the simulator's stand-in for the OAuth token endpoint.

The tokens are shaped like the real ones (JWTs carrying the ChatGPT claims the gateway reads) but
unsigned: only the simulator accepts them. The token endpoint answers refreshes (single-use refresh
tokens, as the real issuer rotates them), so a demo that runs for hours refreshes against the
simulator and never against the real sign-in server.

Each refresh token names its account (``rt_demo_<base64url identity>_<random>``), so the issuer answers a
refresh with tokens of the same account — also for documents written by another process (a test writing
account files for gateway processes) — and counts refreshes per account (:attr:`TokenIssuer.refreshes_by_account`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_ACCOUNT_ID",
    "MAX_TOKEN_REQUEST_BYTES",
    "DemoIdentity",
    "TokenIssuer",
    "demo_auth_document",
    "identity_of_refresh_token",
    "pool_account_ids",
    "write_demo_auth",
    "write_pool_accounts",
]

DEMO_ACCOUNT_ID = "acct_demo"
DEMO_EMAIL = "demo@example.invalid"
DEMO_USER_ID = "user_demo"
REFRESH_PREFIX = "rt_demo_"
MAX_TOKEN_REQUEST_BYTES = 64 * 1024
AUTH_CLAIMS = "https://api.openai.com/auth"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'demo')}"


@dataclass(frozen=True, slots=True)
class DemoIdentity:
    """Whose tokens: the ChatGPT account, the user in it, and the user's email."""

    account_id: str = DEMO_ACCOUNT_ID
    user_id: str = DEMO_USER_ID
    email: str = DEMO_EMAIL


def _refresh_token(identity: DemoIdentity) -> str:
    named = json.dumps([identity.account_id, identity.user_id, identity.email], separators=(",", ":"))
    return f"{REFRESH_PREFIX}{_b64(named.encode())}_{secrets.token_hex(16)}"


def identity_of_refresh_token(refresh_token: str) -> DemoIdentity | None:
    """The identity a refresh token made here names, or None (another shape, or not readable)."""
    if not refresh_token.startswith(REFRESH_PREFIX):
        return None
    encoded, _, rest = refresh_token[len(REFRESH_PREFIX) :].rpartition("_")
    if not encoded or not rest:
        return None
    try:
        named = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not (isinstance(named, list) and len(named) == 3 and all(isinstance(part, str) and part for part in named)):
        return None
    return DemoIdentity(named[0], named[1], named[2])


def _token_set(now: float, expires_in: float, identity: DemoIdentity) -> dict[str, str]:
    auth = {
        "chatgpt_account_id": identity.account_id,
        "chatgpt_plan_type": "plus",
        "chatgpt_user_id": identity.user_id,
    }
    exp = int(now + expires_in)
    return {
        "access_token": _unsigned_jwt({"exp": exp, AUTH_CLAIMS: auth, "jti": secrets.token_hex(8)}),
        "id_token": _unsigned_jwt({"exp": exp, "email": identity.email, AUTH_CLAIMS: auth}),
        "refresh_token": _refresh_token(identity),
    }


def _identity(account_id: str, user_id: str | None, email: str | None) -> DemoIdentity:
    if account_id == DEMO_ACCOUNT_ID:
        return DemoIdentity(account_id, user_id or DEMO_USER_ID, email or DEMO_EMAIL)
    return DemoIdentity(account_id, user_id or f"user_{account_id}", email or f"{account_id}@example.invalid")


def demo_auth_document(
    now: float,
    *,
    expires_in: float = 3600,
    account_id: str = DEMO_ACCOUNT_ID,
    user_id: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """A Codex-CLI-format ``auth.json`` document with throw-away tokens of ``account_id`` (a negative
    ``expires_in``: an access token that has already expired). The user id and email default to ones
    derived from the account id; the refresh token names all three, so a :class:`TokenIssuer` in any
    process refreshes it into tokens of the same account."""
    tokens = _token_set(now, expires_in, _identity(account_id, user_id, email))
    return {
        "OPENAI_API_KEY": None,
        "tokens": {**tokens, "account_id": account_id},
        "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
    }


def _write_private(path: Path, document: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(document).encode())
    finally:
        os.close(fd)


def write_demo_auth(directory: Path, *, expires_in: float = 3600) -> Path:
    """Write throw-away credentials to ``directory/auth.json`` (mode 0600) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth.json"
    _write_private(path, demo_auth_document(time.time(), expires_in=expires_in))
    return path


def pool_account_ids(count: int, prefix: str = "acct_pool_") -> list[str]:
    """``count`` distinct account ids: ``acct_pool_0``, ``acct_pool_1`` …"""
    return [f"{prefix}{index}" for index in range(count)]


def write_pool_accounts(
    home: Path, count: int, *, expires_in: float = -60, prefix: str = "acct_pool_", now: float | None = None
) -> list[Path]:
    """``count`` accounts for the pool: ``home/accounts/<account id>.json`` (0600, in a 0700 folder), each
    a document of :func:`demo_auth_document` whose access token expires ``expires_in`` seconds from now
    (default: expired a minute ago, so the first request of each account refreshes it)."""
    directory = home / "accounts"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    issued_at = time.time() if now is None else now
    paths = []
    for account_id in pool_account_ids(count, prefix):
        path = directory / f"{account_id}.json"
        _write_private(path, demo_auth_document(issued_at, expires_in=expires_in, account_id=account_id))
        paths.append(path)
    return paths


class TokenIssuer:
    """``POST /oauth/token`` for ``grant_type=refresh_token``: a fresh token set, each refresh token once.

    :meth:`answer` takes the raw request body (JSON, as the gateway sends it, or form-encoded) and
    returns ``(status, body)``; the simulator's server wraps it. The new tokens belong to the account the
    refresh token names (tokens it issued, or of :func:`demo_auth_document`), else to ``account_id``.
    ``refreshes`` counts the token sets issued, ``refreshes_by_account`` the same per account id,
    ``reused_by_account`` the refused second uses of a refresh token; ``on_refresh`` (if given) is called
    with ``refreshes`` after each one."""

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
        #: seconds the simulator waits before it answers a refresh (and spends its token)
        self.delay = 0.0
        self.refreshes = 0
        self.refreshes_by_account: Counter[str] = Counter()
        self.reused_by_account: Counter[str] = Counter()
        self._spent: set[str] = set()
        self._issued: dict[str, DemoIdentity] = {}

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
        identity = self.identity_of(refresh_token)
        if refresh_token in self._spent:
            self.reused_by_account[identity.account_id] += 1
            return 401, {"error": {"code": "refresh_token_reused", "message": "refresh token already used"}}
        self._spent.add(refresh_token)
        self._issued.pop(refresh_token, None)
        self.refreshes += 1
        self.refreshes_by_account[identity.account_id] += 1
        if self.on_refresh is not None:
            self.on_refresh(self.refreshes)
        tokens = _token_set(time.time(), self.expires_in, identity)
        self._issued[tokens["refresh_token"]] = identity
        return 200, {**tokens, "expires_in": int(self.expires_in)}

    def identity_of(self, refresh_token: str) -> DemoIdentity:
        """Whose refresh token this is: one issued here, else the identity it names, else the default."""
        issued = self._issued.get(refresh_token)
        if issued is not None:
            return issued
        return identity_of_refresh_token(refresh_token) or _identity(self.account_id, None, None)

    def counts(self) -> dict[str, Any]:
        """The refresh counts as a JSON-ready document (what the simulator's control API answers)."""
        return {
            "refreshes": self.refreshes,
            "refreshes_by_account": dict(self.refreshes_by_account),
            "reused_by_account": dict(self.reused_by_account),
        }
