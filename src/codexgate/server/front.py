"""The rules every request meets first, before any key check or endpoint runs (issue 20, item 2).

A web page open in the user's browser can reach a gateway on loopback: it can POST ``text/plain``
bodies without a preflight, and with DNS rebinding (its own host name resolving to 127.0.0.1) read the
answers too. Three checks, in :class:`~codexgate.server.asgi.GatewayASGI` so that both ways into the
server, WebSockets and every future route inherit them:

* **Host** (:meth:`FrontRules.host_refusal`): in no-key mode, or whenever ``allowed_hosts`` is set,
  only ``127.0.0.1``, ``[::1]``, ``localhost`` (any port), the bind address itself (when it is a
  specific one) and the names in ``allowed_hosts`` are accepted; anything else is a **421**
  (``misdirected_request``, code ``host_not_allowed``): the request reached a server it was not meant
  for, which is what a rebinding attack is. A request without ``Host`` (HTTP/1.0 tools) passes: no
  browser sends one. Keyed gateways without ``allowed_hosts`` (Docker, Open WebUI set-ups reached by
  service name) accept any ``Host``: the key is what protects them.
* **Origin** (:meth:`FrontRules.origin_refusal`): a request whose ``Origin`` is neither its own
  ``scheme://host`` nor one of ``cors_origins`` (``*`` allows all) is refused with **403** (code
  ``origin_not_allowed``) — the request itself, not only its preflight; a WebSocket upgrade is closed
  (1008) before it is accepted.
* **Content-Type** (:func:`content_type_refusal`): a body-carrying request whose ``Content-Type`` is
  present and not JSON (``application/json`` with any parameters, or any ``…/…+json``) is refused with
  **415** (code ``unsupported_media_type``); a missing header is accepted, as curl users expect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Final

from starlette.types import Scope

from codexgate.errors import APIError

__all__ = [
    "AuthFailureWatch",
    "FrontRules",
    "content_type_refusal",
    "header_value",
    "host_name",
]

logger = logging.getLogger("codexgate.server")

LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "::1", "localhost"})
WILDCARD_BINDS: Final = frozenset({"", "0.0.0.0", "::"})
BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})
HEADER_VALUE_LIMIT: Final = 1024  # characters of a Host or Origin value worth comparing


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), as Latin-1 text; None when absent."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def host_name(host: str) -> str:
    """``"[::1]:9191"`` -> ``"::1"``, ``"LocalHost:80"`` -> ``"localhost"``: the name without the port."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    name, colon, port = host.rpartition(":")
    if colon and name and port.isdigit():
        return name
    return host


def content_type_refusal(scope: Scope) -> APIError | None:
    """The 415 for a body that says it is not JSON; None for JSON, no header, or a bodiless method."""
    method: str = scope.get("method", "")
    if method.encode() not in BODY_METHODS:
        return None
    value = header_value(scope, b"content-type")
    if value is None or not value.strip():
        return None
    media_type = value.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (media_type.endswith("+json") and "/" in media_type):
        return None
    shown = media_type[:100]
    return APIError(
        415,
        f"Unsupported Content-Type {shown!r}: the body must be JSON (Content-Type: application/json).",
        type="invalid_request_error",
        param="content-type",
        code="unsupported_media_type",
    )


class FrontRules:
    """The Host and Origin rules of one gateway (from its settings and its key store)."""

    def __init__(self, *, allowed_hosts: Iterable[str], cors_origins: Iterable[str], bind_host: str) -> None:
        self.allowed_hosts = frozenset(host_name(host) for host in allowed_hosts if host.strip())
        accepted = set(LOOPBACK_NAMES) | self.allowed_hosts
        bind = host_name(bind_host)
        if bind not in WILDCARD_BINDS:
            accepted.add(bind)
        self.accepted_hosts = frozenset(accepted)
        self.cors_origins = frozenset(origin.strip().rstrip("/").lower() for origin in cors_origins)
        self.any_origin = "*" in self.cors_origins  # CORS's own wildcard: every origin is allowed

    def host_refusal(self, scope: Scope, *, no_keys: bool) -> APIError | None:
        """The 421 for a ``Host`` this gateway does not answer to (see the module doc)."""
        if not no_keys and not self.allowed_hosts:
            return None
        host = header_value(scope, b"host")
        if host is None or host_name(host[:HEADER_VALUE_LIMIT]) in self.accepted_hosts:
            return None
        return APIError(
            421,
            "This gateway does not answer to that Host header; it accepts 127.0.0.1, [::1], localhost "
            "and the names in the setting allowed_hosts.",
            type="misdirected_request",
            param="host",
            code="host_not_allowed",
        )

    def origin_refusal(self, scope: Scope) -> APIError | None:
        """The 403 for a cross-origin request whose origin is not in ``cors_origins``."""
        origin = header_value(scope, b"origin")
        if origin is None:
            return None
        origin = origin[:HEADER_VALUE_LIMIT].strip().rstrip("/").lower()
        if self.any_origin or origin in self.cors_origins:
            return None
        host = header_value(scope, b"host")
        if host is not None:
            scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
            if origin == f"{scheme}://{host.strip().lower()}":
                return None
        return APIError(
            403,
            "Cross-origin requests are refused unless their origin is listed in the setting cors_origins.",
            type="permission_error",
            param="origin",
            code="origin_not_allowed",
        )


class AuthFailureWatch:
    """Counts refused API keys by client address and writes at most one warning line per ``interval``
    seconds naming the addresses of a burst (``burst`` or more failures within the interval)."""

    def __init__(self, *, interval: float = 60.0, burst: int = 5, max_addresses: int = 64) -> None:
        self.interval = interval
        self.burst = burst
        self.max_addresses = max_addresses
        self._counts: dict[str, int] = {}
        self._window_started = 0.0
        self._last_warning = -interval
        #: lines written (tests read it)
        self.warnings = 0

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._window_started >= self.interval:
            self._counts.clear()
            self._window_started = now
        if address in self._counts or len(self._counts) < self.max_addresses:
            self._counts[address] = self._counts.get(address, 0) + 1
        else:
            self._counts["other addresses"] = self._counts.get("other addresses", 0) + 1
        if now - self._last_warning < self.interval:
            return
        bursting = sorted(((count, name) for name, count in self._counts.items() if count >= self.burst), reverse=True)
        if not bursting:
            return
        self._last_warning = now
        self.warnings += 1
        shown = ", ".join(f"{name} ({count})" for count, name in bursting[:5])
        logger.warning("repeated failed API key attempts in the last %g s from %s", self.interval, shown)
        self._counts.clear()
        self._window_started = now
