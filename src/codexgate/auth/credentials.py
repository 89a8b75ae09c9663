"""Credential files in the Codex CLI's ``auth.json`` format, and where to find them.

Sources, in order: codexgate's own store ``$CODEXGATE_HOME/auth.json``, else the Codex CLI's
``$CODEX_HOME/auth.json``. Refreshed tokens are written back to the file they came from (so the
Codex CLI keeps working beside codexgate), atomically with mode 0600, keeping keys we don't know.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from codexgate.auth.jwt_claims import claims_of
from codexgate.files import atomic_write_bytes


@dataclass(frozen=True)
class Credentials:
    """What a request upstream needs. ``repr`` and ``str`` never show a token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    account_id: str | None
    email: str | None
    plan_type: str | None
    expires_at: float | None
    last_refresh: str | None
    source: Path

    def __str__(self) -> str:
        return f"Credentials(account={self.account_id}, email={self.email}, source={self.source})"

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds


class CredentialFileError(Exception):
    """A credential file exists but can't be used (unreadable, not JSON, no tokens)."""


def read_document(path: Path) -> dict[str, Any] | None:
    """The parsed file, or None when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CredentialFileError(f"{path} is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialFileError(f"{path} does not hold a JSON object")
    return document


def credentials_from(document: dict[str, Any], source: Path) -> Credentials | None:
    tokens = document.get("tokens")
    if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str):
        return None
    access = tokens["access_token"]
    id_token = tokens.get("id_token") if isinstance(tokens.get("id_token"), str) else None
    claims = claims_of(access, id_token)
    account_id = tokens.get("account_id") if isinstance(tokens.get("account_id"), str) else None
    refresh = tokens.get("refresh_token") if isinstance(tokens.get("refresh_token"), str) else None
    last_refresh = document.get("last_refresh") if isinstance(document.get("last_refresh"), str) else None
    return Credentials(
        access_token=access,
        refresh_token=refresh,
        id_token=id_token,
        account_id=account_id or claims.account_id,
        email=claims.email,
        plan_type=claims.plan_type,
        expires_at=claims.expires_at,
        last_refresh=last_refresh,
        source=source,
    )


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def write_tokens(
    path: Path,
    *,
    access_token: str,
    refresh_token: str | None,
    id_token: str | None,
    account_id: str | None = None,
) -> None:
    """Store tokens in ``path`` (Codex CLI format), keeping the file's other keys; atomic, 0600.

    A symlinked ``path`` keeps its link: the file it points to gets the new tokens (replacing the
    link would leave the target holding a refresh token the issuer has already spent)."""
    try:
        document = read_document(path) or {}
    except CredentialFileError:
        document = {}
    tokens = dict(document.get("tokens") or {})
    tokens["access_token"] = access_token
    if refresh_token is not None:
        tokens["refresh_token"] = refresh_token
    if id_token is not None:
        tokens["id_token"] = id_token
    account = account_id or claims_of(access_token, id_token).account_id
    if account:
        tokens["account_id"] = account
    document.setdefault("OPENAI_API_KEY", None)
    document["tokens"] = tokens
    document["last_refresh"] = now_rfc3339()
    atomic_write_bytes(path, orjson.dumps(document, option=orjson.OPT_INDENT_2), follow_symlinks=True)


class CredentialStore:
    """Finds the credential file in use: the own store first, else the Codex CLI's.

    Without ``codex_file`` (or with the same path twice) it reads that one file: a pool account's."""

    def __init__(self, own_file: Path, codex_file: Path | None = None) -> None:
        self.own_file = own_file
        self.codex_file = codex_file if codex_file is not None else own_file
        self.paths: tuple[Path, ...] = (own_file,) if self.codex_file == own_file else (own_file, self.codex_file)

    def source(self) -> Path | None:
        """The file credentials would be read from (the first that exists)."""
        for path in self.paths:
            if path.is_file():
                return path
        return None

    def load(self) -> Credentials | None:
        for path in self.paths:
            document = read_document(path)
            if document is None:
                continue
            credentials = credentials_from(document, path)
            if credentials is not None:
                return credentials
        return None

    def searched(self) -> str:
        return " or ".join(str(path) for path in self.paths)
