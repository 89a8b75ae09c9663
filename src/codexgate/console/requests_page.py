"""The request log: recent requests with filters, a page cursor, and rows the browser polls for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from codexgate.console.html import esc, fmt_count, fmt_ms, fmt_time, table
from codexgate.console.queries import RequestFilter, RequestRow
from codexgate.console.reasons import reason

__all__ = ["HEADERS", "SINCE_CHOICES", "request_cells", "requests_body", "row_json"]

HEADERS = ("Time", "Key", "Account", "Model", "Status", "TTFT", "Duration", "Tokens in / out", "Cached", "Reason")
SINCE_CHOICES = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "all": 0.0}


def request_cells(row: RequestRow) -> list[str]:
    """The row's cells as plain text (escaped by the caller or set as text by the script)."""
    share = row.cached_share
    return [
        fmt_time(row.time),
        row.key_name or "—",
        row.account or "—",
        row.model or "—",
        str(row.status),
        fmt_ms(row.ttft_ms),
        fmt_ms(row.duration_ms),
        f"{fmt_count(row.input_tokens)} / {fmt_count(row.output_tokens)}",
        "—" if share is None else f"{share:.0%}",
        reason(row.status, row.error_code),
    ]


def row_json(row: RequestRow) -> dict[str, Any]:
    return {"id": row.id, "error": row.status >= 400, "cells": request_cells(row)}


def requests_body(
    rows: Sequence[RequestRow],
    *,
    base: str,
    request_filter: RequestFilter,
    since_name: str,
    first_page: bool,
    keys: Sequence[str],
    page_size: int,
    poll_seconds: float = 3.0,
    live_minutes: float = 15.0,
) -> str:
    def option(value: str, label: str, current: str | None) -> str:
        selected = " selected" if value == (current or "") else ""
        return f'<option value="{esc(value)}"{selected}>{esc(label)}</option>'

    key_options = option("", "any key", request_filter.key) + "".join(option(k, k, request_filter.key) for k in keys)
    status_options = "".join(
        option(v, label, request_filter.status)
        for v, label in (("", "any status"), ("ok", "successes"), ("errors", "errors"), ("429", "429"), ("401", "401"))
    )
    since_options = "".join(option(v, f"last {v}" if v != "all" else "all kept", since_name) for v in SINCE_CHOICES)
    filters = (
        f'<form method="get" action="{esc(base)}/requests" class="filters" id="filters">'
        f'<label>Key<select name="key">{key_options}</select></label>'
        f'<label>Model<input type="text" name="model" value="{esc(request_filter.model or "")}"></label>'
        f'<label>Status<select name="status">{status_options}</select></label>'
        f'<label>Since<select name="since">{since_options}</select></label>'
        '<button type="submit">Filter</button></form>'
    )
    listing = table(
        HEADERS,
        [[esc(c) for c in request_cells(row)] for row in rows],
        table_id="requests",
        empty="No requests match.",
        row_classes=["err" if row.status >= 400 else "" for row in rows],
    )
    params = {
        k: v
        for k, v in (
            ("key", request_filter.key),
            ("model", request_filter.model),
            ("status", request_filter.status),
            ("since", since_name),
        )
        if v
    }
    pager = ""
    if len(rows) >= page_size:
        last = rows[-1]
        older = urlencode({**params, "before": f"{last.time!r}:{last.id}"})
        pager = f'<nav class="pager"><a id="older" href="{esc(base)}/requests?{esc(older)}">Older →</a>'
        if not first_page:
            pager += f' <a href="{esc(base)}/requests?{esc(urlencode(params))}">Newest</a>'
        pager += "</nav>"
    live = ""
    if first_page:
        newest = rows[0].id if rows else 0
        poll = urlencode(params)
        live = (
            f'<p class="live" id="live" data-poll="{esc(base)}/requests.json?{esc(poll)}" data-after="{newest}" '
            f'data-interval-ms="{int(poll_seconds * 1000)}" data-stop-after-ms="{int(live_minutes * 60_000)}">'
            "Live: new requests appear here.</p>"
        )
    return filters + live + listing + pager
