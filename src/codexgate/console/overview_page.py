"""The overview page: requests, tokens, errors and time to first token over a chosen range, as charts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from codexgate.console.charts import bar_chart, line_chart
from codexgate.console.html import ACTIVE, esc, fmt_count, fmt_ms
from codexgate.console.queries import Series

__all__ = ["RANGES", "overview_body"]

#: range name -> (seconds per bucket, bucket count)
RANGES: Final[dict[str, tuple[float, int]]] = {
    "1h": (60.0, 60),
    "24h": (1800.0, 48),
    "7d": (7200.0, 84),
    "30d": (43200.0, 60),
}


def _label(timestamp: float, step: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%H:%M" if step < 3600 else "%m-%d %H:%M")


def overview_body(series: Series, *, base: str, range_name: str, active_streams: float | None) -> str:
    buckets = series.buckets
    labels = [_label(b.start, series.step) for b in buckets]
    requests = sum(b.requests for b in buckets)
    errors = sum(b.errors for b in buckets)
    tokens = sum(b.tokens for b in buckets)
    p95s = [b.ttft_p95 for b in buckets if b.ttft_p95 is not None]
    tiles = [
        ("Requests", fmt_count(requests)),
        ("Errors", f"{fmt_count(errors)} ({errors / requests:.1%})" if requests else "0"),
        ("Tokens", fmt_count(tokens)),
        ("Worst TTFT p95", fmt_ms(max(p95s)) if p95s else "—"),
    ]
    if active_streams is not None:
        tiles.append(("Open streams now", fmt_count(active_streams)))
    tile_html = "".join(
        f'<div class="tile"><span class="tile-label">{esc(name)}</span>'
        f'<span class="tile-value">{esc(value)}</span></div>'
        for name, value in tiles
    )
    picker = " ".join(
        f'<a href="{esc(base)}/?range={name}"{ACTIVE if name == range_name else ""}>{name}</a>' for name in RANGES
    )
    charts = (
        bar_chart("Requests", labels, [b.requests for b in buckets])
        + bar_chart("Tokens (input + output)", labels, [b.tokens for b in buckets], css_class="bar tokens")
        + bar_chart("Errors", labels, [b.errors for b in buckets], css_class="bar errors")
        + line_chart(
            "Time to first token",
            labels,
            [("p50", "line p50", [b.ttft_p50 for b in buckets]), ("p95", "line p95", [b.ttft_p95 for b in buckets])],
            fmt=fmt_ms,
        )
    )
    return (
        f'<p class="range">Range (UTC): {picker}</p>'
        f'<div class="tiles">{tile_html}</div><div class="charts">{charts}</div>'
    )
