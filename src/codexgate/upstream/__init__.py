"""The Codex backend: the client (:mod:`.client`), its errors, headers, request shaping, the model
catalog and the read timeout. The server reaches the backend only through here (it never imports
aiohttp). Import from the modules; nothing is re-exported here."""

__all__ = [
    "capture",
    "client",
    "errors",
    "headers",
    "instructions",
    "models",
    "read_watch",
    "session",
    "shaping",
]
