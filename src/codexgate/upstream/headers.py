"""The headers (and ``client_metadata``) the Codex backend gets, as the pinned Codex CLI sends them.

protocol.md §4/§6, Codex CLI 0.169.0: ``authorization``, ``chatgpt-account-id``, ``session-id``,
``thread-id``, ``x-client-request-id``, ``originator`` (``codex_exec``), ``user-agent``
(``codex_exec/0.169.0 (<os> <release>; <arch>) …``), ``accept: text/event-stream``; no ``OpenAI-Beta``
and no ``version`` on HTTP. The body's ``client_metadata`` carries a stable installation id (kept in
``$CODEXGATE_HOME/installation_id``, a 0600 file created once) and the session/thread/turn ids.

A Codex client's own headers that the backend reads per turn (:data:`CARRIED_CLIENT_HEADERS`) are
carried over after a check (bounded length, no control characters): :func:`carried_client_headers`.
"""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codexgate import __version__
from codexgate.errors import invalid_request
from codexgate.protocol.lite_shape import LITE_HEADER

__all__ = [
    "CARRIED_CLIENT_HEADERS",
    "INSTALLATION_ID_FILE",
    "MAX_CARRIED_HEADER_LENGTH",
    "carried_client_headers",
    "client_metadata",
    "installation_id",
    "upstream_headers",
    "user_agent",
]

#: client headers passed on to the backend when present (the Lite header only with the value ``true``)
CARRIED_CLIENT_HEADERS: tuple[str, ...] = (
    "x-codex-beta-features",
    "session-id",
    "thread-id",
    "x-codex-turn-metadata",
    "x-codex-window-id",
    "x-codex-turn-state",
    "x-client-request-id",
    LITE_HEADER,
)
MAX_CARRIED_HEADER_LENGTH = 4096
INSTALLATION_ID_FILE = "installation_id"


def user_agent(originator: str, client_version: str) -> str:
    system = platform.system() or "Linux"
    release = platform.release() or "unknown"
    machine = platform.machine() or "unknown"
    return f"{originator}/{client_version} ({system} {release}; {machine}) codexgate/{__version__}"


def _read_installation_id(path: Path) -> str | None:
    try:
        return str(uuid.UUID(path.read_text(encoding="utf-8").strip()))
    except (OSError, ValueError):
        return None


def installation_id(home: Path) -> str:
    """The stable installation id in ``home/installation_id``; created once (mode 0600) when missing
    (a file that holds no id is replaced)."""
    path = home / INSTALLATION_ID_FILE
    existing = _read_installation_id(path)
    if existing is not None:
        return existing
    value = str(uuid.uuid4())
    home.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(value + "\n")
    if path.exists():  # a broken file
        os.replace(temporary, path)
        return value
    try:
        os.link(temporary, path)  # never replaces an id another process wrote first
    except FileExistsError:
        return _read_installation_id(path) or value
    finally:
        os.unlink(temporary)
    return value


def _checked(name: str, value: str) -> str:
    if len(value) > MAX_CARRIED_HEADER_LENGTH or not value.isprintable():
        raise invalid_request(
            f"The header {name} must be at most {MAX_CARRIED_HEADER_LENGTH} printable characters.", param=name
        )
    return value


def carried_client_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's :data:`CARRIED_CLIENT_HEADERS` (``session_id`` read as ``session-id``); 400 when malformed."""
    carried: dict[str, str] = {}
    for name in CARRIED_CLIENT_HEADERS:
        value = headers.get(name)
        if value is None and name == "session-id":
            value = headers.get("session_id")
        if value is None:
            continue
        if name == LITE_HEADER:
            if value.strip().lower() == "true":
                carried[name] = "true"
            continue
        carried[name] = _checked(name, value)
    return carried


def client_metadata(
    *, installation: str, session_id: str, thread_id: str, turn_id: str, extra: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The body's ``client_metadata`` as the CLI fills it (``extra``: window id, turn metadata)."""
    metadata: dict[str, Any] = {
        "x-codex-installation-id": installation,
        "session_id": session_id,
        "thread_id": thread_id,
        "turn_id": turn_id,
    }
    for name in ("x-codex-window-id", "x-codex-turn-metadata"):
        if extra and name in extra:
            metadata[name] = extra[name]
    return metadata


def upstream_headers(
    *,
    access_token: str,
    account_id: str | None,
    session_id: str,
    originator: str,
    client_version: str,
    request_id: str,
    client_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The request headers; ``client_headers`` (from :func:`carried_client_headers`) win over ours."""
    headers = {
        "authorization": f"Bearer {access_token}",
        "content-type": "application/json",
        "accept": "text/event-stream",
        "originator": originator,
        "user-agent": user_agent(originator, client_version),
        "session-id": session_id,
        "thread-id": session_id,
        "x-client-request-id": request_id,
    }
    if client_headers:
        headers.update(client_headers)
    if account_id:
        headers["chatgpt-account-id"] = account_id
    return headers
