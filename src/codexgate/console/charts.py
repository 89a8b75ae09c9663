"""Small SVG charts drawn on the server: bars for counts, lines for latencies. No script needed.

Colours and fonts come from ``static/console.css`` through class names (the CSP forbids inline
styles); each bar and point carries a ``<title>`` so hovering shows its value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from codexgate.console.html import esc

__all__ = ["bar_chart", "line_chart", "meter"]

WIDTH = 640
HEIGHT = 160
PAD_LEFT = 56
PAD_BOTTOM = 20


def _frame(title: str, top: str, first_label: str, last_label: str, inner: str) -> str:
    return (
        f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}"/>'
        f'<text class="label" x="{PAD_LEFT - 6}" y="12" text-anchor="end">{esc(top)}</text>'
        f'<text class="label" x="{PAD_LEFT - 6}" y="{HEIGHT - PAD_BOTTOM}" text-anchor="end">0</text>'
        f'<text class="label" x="{PAD_LEFT}" y="{HEIGHT - 4}">{esc(first_label)}</text>'
        f'<text class="label" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">{esc(last_label)}</text>'
        f"{inner}</svg></figure>"
    )


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    css_class: str = "bar",
) -> str:
    """Bars of ``values`` (one per label), scaled to the largest."""
    top = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - 8
    step = plot_w / max(len(values), 1)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = PAD_LEFT + i * step
        y = HEIGHT - PAD_BOTTOM - h
        bars.append(
            f'<rect class="{css_class}" x="{x + 0.5:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" height="{h:.1f}">'
            f"<title>{esc(label)}: {esc(fmt(value))}</title></rect>"
        )
    return _frame(title, fmt(top), labels[0] if labels else "", labels[-1] if labels else "", "".join(bars))


def line_chart(
    title: str,
    labels: Sequence[str],
    lines: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> str:
    """One polyline per ``(name, css class, values)``; gaps (None) break a line."""
    known = [v for _, _, values in lines for v in values if v is not None]
    top = max(known, default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - 8
    count = max((len(values) for _, _, values in lines), default=1)
    step = plot_w / max(count, 1)
    parts, legend = [], []
    for name, css_class, values in lines:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, value in enumerate(values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x = PAD_LEFT + (i + 0.5) * step
            y = HEIGHT - PAD_BOTTOM - plot_h * value / top
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle class="{css_class}" cx="{x:.1f}" cy="{y:.1f}" r="2">'
                f"<title>{esc(name)} {esc(labels[i])}: {esc(fmt(value))}</title></circle>"
            )
        if segment:
            segments.append(segment)
        parts.extend(f'<polyline class="{css_class}" points="{" ".join(s)}"/>' for s in segments)
        legend.append(f'<span class="legend {css_class}">{esc(name)}</span>')
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    return _frame(title, fmt(top), first, last, "".join(parts)).replace(
        "</figcaption>", " " + "".join(legend) + "</figcaption>", 1
    )


def meter(percent: float, label: str) -> str:
    """A horizontal 0–100 % gauge (an account window's use)."""
    clamped = max(0.0, min(100.0, percent))
    level = "high" if clamped >= 90 else "mid" if clamped >= 70 else "low"
    return (
        f'<svg class="meter" viewBox="0 0 100 10" role="img" aria-label="{esc(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="meter-track" x="0" y="0" width="100" height="10"/>'
        f'<rect class="meter-fill {level}" x="0" y="0" width="{clamped:.1f}" height="10"/>'
        f"<title>{esc(label)}</title></svg>"
    )
