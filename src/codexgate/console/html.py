"""HTML building blocks for the console: the page layout, escaping, number and time formats.

Pages are plain strings built here with :func:`html.escape` on every value that did not come from
this package. No inline script or style: the layout links ``static/console.css`` and
``static/console.js``, which the Content-Security-Policy (``default-src 'self'``) allows.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

__all__ = ["ACTIVE", "csrf_field", "esc", "fmt_count", "fmt_ms", "fmt_time", "layout", "table"]

ACTIVE = ' class="active"'
NAV = (("", "Overview"), ("/accounts", "Accounts"), ("/keys", "Keys"), ("/requests", "Requests"))


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_time(timestamp: float | None, *, seconds: bool = True) -> str:
    if timestamp is None:
        return "—"
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return datetime.fromtimestamp(timestamp, UTC).strftime(pattern) + " UTC"


def fmt_count(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def csrf_field(csrf_token: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{esc(csrf_token)}">'


def table(
    headers: Iterable[str],
    rows: Iterable[Iterable[str]],
    *,
    table_id: str = "",
    empty: str = "Nothing yet.",
    row_classes: Sequence[str] = (),
) -> str:
    """A table whose cells are already-escaped HTML (``row_classes``: a class per row, "" for none)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        (f'<tr class="{esc(row_classes[i])}">' if i < len(row_classes) and row_classes[i] else "<tr>")
        + "".join(f"<td>{cell}</td>" for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    ident = f' id="{esc(table_id)}"' if table_id else ""
    if not body:
        return (
            f'<p class="empty">{esc(empty)}</p>'
            f"<table{ident} hidden><thead><tr>{head}</tr></thead><tbody></tbody></table>"
        )
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def layout(title: str, body: str, *, base: str, csrf_token: str | None, active: str = "") -> str:
    """A whole page: head, navigation (when logged in), ``body`` (already-escaped HTML)."""
    nav = ""
    if csrf_token is not None:
        links = "".join(
            f'<a href="{esc(base + path) or "/"}"{ACTIVE if path == active else ""}>{esc(label)}</a>'
            for path, label in NAV
        )
        logout = (
            f'<form method="post" action="{esc(base)}/logout" class="logout">{csrf_field(csrf_token)}'
            '<button type="submit">Log out</button></form>'
        )
        nav = f'<header><span class="brand">codexgate</span><nav>{links}</nav>{logout}</header>'
    csrf_meta = f'<meta name="csrf-token" content="{esc(csrf_token)}">' if csrf_token else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{csrf_meta}<title>{esc(title)} · codexgate</title>"
        f'<link rel="stylesheet" href="{esc(base)}/static/console.css">'
        f'<script src="{esc(base)}/static/console.js" defer></script>'
        f'</head><body data-base="{esc(base)}">{nav}<main><h1>{esc(title)}</h1>{body}</main></body></html>'
    )
