"""Rate-limit bookkeeping: repeated reports only move the observation time; changes are recorded."""

from __future__ import annotations

import time
from pathlib import Path

from multidict import CIMultiDict

from codexgate.auth.refresh import TokenManager
from codexgate.observability.metrics import Metrics
from codexgate.server.gateway import Gateway
from codexgate.upstream.client import UpstreamClient
from tests.helpers import settings_for


def _gateway(tmp_path: Path) -> Gateway:
    settings = settings_for(tmp_path / "home", "http://127.0.0.1:9")
    tokens = TokenManager.from_settings(settings)
    return Gateway(settings, tokens, UpstreamClient(settings, tokens), metrics=Metrics())


def _headers_seen(gateway: Gateway, headers: CIMultiDict[str]) -> None:
    """What the upstream client does with every answer's headers (its public hook)."""
    hook = gateway.upstream.on_headers
    assert hook is not None
    hook(headers)


def _headers(used: int) -> CIMultiDict[str]:
    return CIMultiDict(
        {
            "Content-Type": "text/event-stream",
            "X-Codex-Primary-Used-Percent": str(used),
            "x-codex-primary-window-minutes": "300",
            "x-codex-plan-type": "plus",
        }
    )


def _event(used: float) -> dict[str, object]:
    window = {"used_percent": used, "window_minutes": 10080, "reset_at": 1_900_000_000}
    return {"type": "codex.rate_limits", "plan_type": "plus", "rate_limits": {"secondary": window}}


def test_repeated_headers_move_only_the_time_and_changes_are_recorded(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    _headers_seen(gateway, _headers(12))
    first = dict(gateway.latest_rate_limits or {})
    assert first["primary"] == {"used_percent": 12.0, "window_minutes": 300} and first["plan_type"] == "plus"
    time.sleep(0.01)
    _headers_seen(gateway, _headers(12))
    again = gateway.latest_rate_limits or {}
    assert again["primary"] == first["primary"] and again["observed_at"] > first["observed_at"]
    _headers_seen(gateway, _headers(40))
    assert (gateway.latest_rate_limits or {})["primary"]["used_percent"] == 40.0


def test_events_and_headers_are_told_apart(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    _headers_seen(gateway, _headers(12))
    gateway.record_rate_limit_event(_event(30.0))
    gateway.record_rate_limit_event(_event(30.0))
    latest = gateway.latest_rate_limits or {}
    assert latest["primary"]["used_percent"] == 12.0 and latest["secondary"]["used_percent"] == 30.0
    gateway.record_rate_limit_event(_event(31.5))
    _headers_seen(gateway, _headers(12))  # unchanged headers keep the event's newer window
    latest = gateway.latest_rate_limits or {}
    assert latest["secondary"]["used_percent"] == 31.5 and latest["primary"]["used_percent"] == 12.0
    rendered = gateway.metrics.render()[0].decode() if gateway.metrics else ""
    assert 'codexgate_rate_limit_used_percent{window="secondary"} 31.5' in rendered
