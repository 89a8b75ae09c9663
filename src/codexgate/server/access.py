"""API-key access control: the rule (:class:`KeyCheck`), its middleware, and the rule for binding to a
public address.

When at least one key exists (``codexgate keys create``), every path except those in ``open_paths``
(``/health``) needs ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` (Anthropic's header, what
Claude Code and the Anthropic SDKs send): the API with and without ``/v1``, and
``/metrics``. A missing or wrong key gets a 401 (code ``invalid_api_key`` in OpenAI's envelope, or the
envelope of the endpoint's dialect); the presented value is never echoed or logged. With no key
configured any bearer value (or none) is accepted, as a local gateway should, unless ``keys_required``
is set: a server that started on a public address because keys existed must not fall open when the
last key is revoked, so it passes ``keys_required=keys_required(host, allow_no_auth)`` and then rejects
every request (but ``/health``) while no key exists.

On success the key's name goes in ``scope["state"]["key_name"]`` (``request.state.key_name`` in a
handler; ``None`` when no keys are configured) for usage rows and the access log.

The app builds **one** :class:`KeyCheck`: the layer in front asks it for the direct endpoints, and
:class:`ApiKeyMiddleware` (inside CORS, so a 401 carries CORS headers) for everything FastAPI serves,
WebSocket scopes included: a refused WebSocket is closed with 1008 before it is accepted, so a
WebSocket route is covered by being declared. CORS preflights (``OPTIONS`` with
``Access-Control-Request-Method``) are let through: browsers send them without credentials.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from codexgate.errors import APIError
from codexgate.server.endpoints import Dialect
from codexgate.server.errors import error_response
from codexgate.storage.api_keys import KeyInfo

__all__ = [
    "DEFAULT_OPEN_PATHS",
    "ApiKeyMiddleware",
    "KeyCheck",
    "KeyVerifier",
    "bearer_token",
    "check_bind_safety",
    "is_loopback_host",
    "keys_required",
    "presented_key",
    "unauthorized_error",
]

DEFAULT_OPEN_PATHS = frozenset({"/health"})


class KeyVerifier(Protocol):
    def has_keys(self) -> bool: ...

    def verify(self, presented: str) -> KeyInfo | None:
        """The key's info, None for an unknown key; may raise an :class:`APIError` (e.g. 503) to refuse."""
        ...


def bearer_token(scope: Scope) -> str | None:
    """The value of ``Authorization: Bearer <value>``, or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = bytes(value).decode("latin-1")
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def presented_key(scope: Scope) -> str | None:
    """The key the request presents: ``Authorization: Bearer <key>``, else ``x-api-key: <key>``."""
    bearer = bearer_token(scope)
    if bearer is not None:
        return bearer
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key":
            key = bytes(value).decode("latin-1").strip()
            return key or None
    return None


def _is_preflight(scope: Scope) -> bool:
    if scope.get("method") != "OPTIONS":
        return False
    return any(name == b"access-control-request-method" for name, _ in scope.get("headers", ()))


def unauthorized_error(missing: bool, *, no_keys: bool = False) -> APIError:
    if no_keys:
        message = "No API key is configured on this gateway; its operator must create one (codexgate keys create)."
    elif missing:
        message = (
            "You didn't provide an API key. Send it in the Authorization header (Authorization: Bearer <key>) "
            "or in x-api-key."
        )
    else:
        message = "Incorrect API key provided."
    return APIError(
        401, message, type="invalid_request_error", code="invalid_api_key", headers={"www-authenticate": "Bearer"}
    )


class KeyCheck:
    """The rule itself: whether a request scope may pass, and who it is (``scope["state"]``)."""

    def __init__(
        self,
        key_store: KeyVerifier,
        *,
        open_paths: frozenset[str] = DEFAULT_OPEN_PATHS,
        open_prefixes: tuple[str, ...] = (),
        keys_required: bool = False,
    ) -> None:
        self.key_store = key_store
        self.open_paths = open_paths
        #: paths under these (the dashboard, which has its own admin sign-in) never take an API key
        self.open_prefixes = open_prefixes
        self.keys_required = keys_required

    def admit(self, scope: Scope) -> APIError | None:
        """None when the request may pass (its key's name put in ``scope["state"]``), else the 401."""
        state: dict[str, Any] = scope.setdefault("state", {})
        state.setdefault("key_name", None)
        path = scope.get("path", "")
        if (
            path in self.open_paths
            or _is_preflight(scope)
            or (self.open_prefixes and path.startswith(self.open_prefixes))
        ):
            return None
        has_keys = self.key_store.has_keys()
        if not has_keys and not self.keys_required:
            return None
        presented = presented_key(scope)
        try:
            info = self.key_store.verify(presented) if presented is not None and has_keys else None
        except APIError as exc:  # a shared key store that could not load its keys yet: 503, fail closed
            return exc
        if info is not None:
            state["key_name"] = info.name
            state["key_id"] = info.id
            state["key_info"] = info  # its limits, for the budget check before anything goes upstream
            return None
        return unauthorized_error(missing=presented is None, no_keys=not has_keys)


class ApiKeyMiddleware:
    """Rejects what :class:`KeyCheck` refuses: a 401 in the envelope of the route's dialect, or a
    WebSocket closed with 1008."""

    def __init__(self, app: ASGIApp, check: KeyCheck, dialect_for: Callable[[Scope], Dialect]) -> None:
        self.app = app
        self.check = check
        self.dialect_for = dialect_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        error = self.check.admit(scope)
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await error_response(error, self.dialect_for(scope))(scope, receive, send)


# ---- bind safety ----------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for anything else."""
    cleaned = host.strip().strip("[]").lower()
    if cleaned == "localhost":
        return True
    try:
        return ipaddress.ip_address(cleaned).is_loopback
    except ValueError:
        return False


def keys_required(host: str, allow_no_auth: bool) -> bool:
    """Whether a server on ``host`` must reject everyone while no key exists (see the module doc)."""
    return not allow_no_auth and not is_loopback_host(host)


def check_bind_safety(host: str, has_keys: bool, allow_no_auth: bool) -> str | None:
    """Why the server must not start on ``host``, or None when it may.

    Binding to anything but loopback (``0.0.0.0``, ``::``, a LAN address, a host name) with no API key
    configured would open the user's subscription to the network, so it needs ``--allow-no-auth``.
    """
    if has_keys or allow_no_auth or is_loopback_host(host):
        return None
    return (
        f"refusing to listen on {host}: it is not a loopback address and no API key is configured. "
        "Create one with `codexgate keys create --name NAME`, or pass --allow-no-auth "
        "(CODEXGATE_ALLOW_NO_AUTH=true) if the network is trusted."
    )
