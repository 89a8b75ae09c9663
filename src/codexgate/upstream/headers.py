"""The headers the Codex backend expects, as the Codex CLI sends them (protocol.md §4)."""

from __future__ import annotations

import platform

from codexgate import __version__


def user_agent(originator: str, client_version: str) -> str:
    system = platform.system() or "Linux"
    release = platform.release() or "unknown"
    machine = platform.machine() or "unknown"
    return f"{originator}/{client_version} ({system} {release}; {machine}) codexgate/{__version__}"


def upstream_headers(
    *,
    access_token: str,
    account_id: str | None,
    session_id: str,
    originator: str,
    client_version: str,
    request_id: str,
) -> dict[str, str]:
    headers = {
        "authorization": f"Bearer {access_token}",
        "content-type": "application/json",
        "accept": "text/event-stream",
        "openai-beta": "responses=experimental",
        "originator": originator,
        "version": client_version,
        "user-agent": user_agent(originator, client_version),
        # The current CLI spells it session-id, older ones session_id; both are harmless.
        "session-id": session_id,
        "session_id": session_id,
        "x-client-request-id": request_id,
    }
    if account_id:
        headers["chatgpt-account-id"] = account_id
    return headers
