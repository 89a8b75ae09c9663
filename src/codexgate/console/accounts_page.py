"""The accounts page: each pool account's plan, 5-hour and weekly windows, state, cooldowns; pause/resume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codexgate.console.charts import meter
from codexgate.console.html import csrf_field, esc, fmt_count, fmt_time, table

__all__ = ["accounts_body"]


def _window(data: Any, now: float) -> str:
    if not isinstance(data, Mapping):
        return "no data yet"
    used = float(data.get("used_percent") or 0.0)
    reset = data.get("reset_at")
    if isinstance(reset, int | float) and reset <= now:
        used = 0.0
    resets = f"resets {esc(fmt_time(float(reset), seconds=False))}" if isinstance(reset, int | float) else ""
    return f'{meter(used, f"{used:.0f}% used")} <span class="pct">{used:.0f}%</span><br><small>{resets}</small>'


def _state(data: Mapping[str, Any], now: float) -> str:
    state = str(data.get("state") or "active")
    parts = [f'<span class="state {esc(state)}">{esc(state)}</span>']
    cooling = data.get("cooling_until")
    if isinstance(cooling, int | float) and cooling > now:
        parts.append(f"<small>until {esc(fmt_time(float(cooling), seconds=False))}</small>")
    backoff = data.get("backoff_until")
    if isinstance(backoff, int | float) and backoff > now:
        parts.append(f"<small>backing off until {esc(fmt_time(float(backoff)))}</small>")
    if data.get("disabled_reason"):
        parts.append(f"<small>{esc(data['disabled_reason'])}</small>")
    if data.get("last_error"):
        parts.append(f'<small class="last-error">last error: {esc(data["last_error"])}</small>')
    return "<br>".join(parts)


def accounts_body(
    accounts: Sequence[Mapping[str, Any]], *, base: str, csrf_token: str, now: float, can_pause: bool
) -> str:
    rows = []
    for data in accounts:
        key = str(data.get("key") or data.get("alias") or "")
        state = str(data.get("state") or "active")
        action = ""
        if can_pause:
            verb, label = ("resume", "Resume") if state == "paused" else ("pause", "Pause")
            action = (
                f'<form method="post" action="{esc(base)}/accounts/{verb}" class="inline">{csrf_field(csrf_token)}'
                f'<input type="hidden" name="account" value="{esc(key)}"><button type="submit">{label}</button></form>'
            )
        rows.append(
            [
                f'<span class="alias">{esc(data.get("alias"))}</span><br><small>{esc(data.get("email") or "")}</small>',
                esc(data.get("plan") or "—"),
                _window(data.get("primary"), now),
                _window(data.get("secondary"), now),
                _state(data, now),
                f"{fmt_count(data.get('streams_in_flight') or 0)} open<br>"
                f"{fmt_count(data.get('requests_today') or 0)} req / "
                f"{fmt_count(data.get('tokens_today') or 0)} tok today",
                action,
            ]
        )
    return table(
        ["Account", "Plan", "5-hour window", "Weekly window", "State", "Traffic", ""],
        rows,
        table_id="accounts",
        empty="No accounts in the pool: log one in with `codexgate login`.",
    )
