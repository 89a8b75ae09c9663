"""The latest rate-limit windows seen upstream, shared between the server and the CLI.

The server records what the Codex backend reports (``x-codex-*`` response headers, or a
``codex.rate_limits`` stream event) and persists it to ``$CODEXGATE_HOME/rate_limits.json`` so that
``codexgate status`` and ``codexgate stats`` (other processes) can show it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from codexgate.files import atomic_write_bytes

#: ``{"primary": {used_percent, window_minutes, reset_at, reset_after_seconds}, "secondary": {...},
#: "plan_type": str, "observed_at": unix time}`` — every key optional.
RateLimitSnapshot = dict[str, Any]


_WINDOW_FIELDS: dict[str, type] = {
    "used-percent": float,
    "window-minutes": int,
    "reset-at": int,
    "reset-after-seconds": int,
}


def _number(kind: type, raw: Any) -> float | int | None:
    try:
        return int(float(raw)) if kind is int else float(raw)
    except (TypeError, ValueError):
        return None


def from_headers(headers: Mapping[str, str]) -> RateLimitSnapshot | None:
    """Read ``x-codex-{primary,secondary}-*`` and ``x-codex-plan-type``; None if absent."""
    lowered = {key.lower(): value for key, value in headers.items() if key.lower().startswith("x-codex-")}
    if not lowered:
        return None
    snapshot: RateLimitSnapshot = {}
    for window in ("primary", "secondary"):
        values: dict[str, Any] = {}
        for suffix, kind in _WINDOW_FIELDS.items():
            raw = lowered.get(f"x-codex-{window}-{suffix}")
            number = _number(kind, raw) if raw is not None else None
            if number is not None:
                values[suffix.replace("-", "_")] = number
        if values:
            snapshot[window] = values
    if "x-codex-plan-type" in lowered:
        snapshot["plan_type"] = lowered["x-codex-plan-type"]
    if not snapshot:
        return None
    snapshot["observed_at"] = time.time()
    return snapshot


def from_event(event: Mapping[str, Any]) -> RateLimitSnapshot | None:
    """Read a ``codex.rate_limits`` event: ``{rate_limits: {primary, secondary}, plan_type}``."""
    limits = event.get("rate_limits")
    if not isinstance(limits, Mapping):
        return None
    snapshot: RateLimitSnapshot = {}
    for window in ("primary", "secondary"):
        raw = limits.get(window)
        if isinstance(raw, Mapping):
            values: dict[str, Any] = {}
            for key in ("used_percent", "window_minutes", "reset_at", "reset_after_seconds"):
                kind = float if key == "used_percent" else int
                number = _number(kind, raw.get(key)) if raw.get(key) is not None else None
                if number is not None:
                    values[key] = number
            snapshot[window] = values
    plan = event.get("plan_type") or limits.get("plan_type")
    if isinstance(plan, str):
        snapshot["plan_type"] = plan
    if not snapshot:
        return None
    snapshot["observed_at"] = time.time()
    return snapshot


def save(path: Path, snapshot: RateLimitSnapshot) -> None:
    atomic_write_bytes(path, orjson.dumps(snapshot))


def load(path: Path) -> RateLimitSnapshot | None:
    """The last snapshot saved, or None when there is none (or the file is unreadable)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
