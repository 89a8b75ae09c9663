"""``codexgate stats``: usage by day, model and key, and the latest rate-limit windows.

Reads the usage database (``storage/usage_db.py``) and the rate-limit state the server saves
(``storage/rate_limits.py``). With no database or no rows yet it prints zeroed figures and exits 0;
with ``--json`` stdout holds only the JSON document.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codexgate.cli.auth_cmd import pool_status, print_pool
from codexgate.cli.common import console, fail, print_table, settings
from codexgate.cli.safe_text import plain

if TYPE_CHECKING:
    from rich.table import Table

    from codexgate.storage import rate_limits
    from codexgate.storage.usage_db import UsageGroup, UsageSummary, UsageTotals

_RELATIVE = re.compile(r"^(\d+)([hdw])$")
_UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}
_GROUP_LABELS = {"by_day": "day", "by_model": "model", "by_key": "key", "by_account": "account"}


def parse_since(value: str, *, now: float | None = None) -> float:
    """``7d``/``24h``/``2w`` (ago), ``YYYY-MM-DD`` (UTC midnight) or ``all`` -> a unix time."""
    now = time.time() if now is None else now
    cleaned = value.strip().lower()
    if cleaned == "all":
        return 0.0
    match = _RELATIVE.match(cleaned)
    if match:
        return now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        day = datetime.strptime(cleaned, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter("use a span like 7d, 24h, 2w, a date YYYY-MM-DD, or all") from None
    return day.timestamp()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def rate_limit_view(snapshot: rate_limits.RateLimitSnapshot | None) -> dict[str, Any] | None:
    """The saved snapshot with each window's reset as an absolute time."""
    if not snapshot:
        return None
    observed = snapshot.get("observed_at")
    view: dict[str, Any] = {"plan_type": snapshot.get("plan_type"), "observed_at": None, "windows": {}}
    if isinstance(observed, int | float):
        view["observed_at"] = _iso(float(observed))
    for window in ("primary", "secondary"):
        values = snapshot.get(window)
        if not isinstance(values, dict):
            continue
        resets_at = values.get("reset_at")
        after = values.get("reset_after_seconds")
        if (
            not isinstance(resets_at, int | float)
            and isinstance(after, int | float)
            and isinstance(observed, int | float)
        ):
            resets_at = observed + after
        view["windows"][window] = {
            "used_percent": values.get("used_percent"),
            "window_minutes": values.get("window_minutes"),
            "resets_at": _iso(float(resets_at)) if isinstance(resets_at, int | float) else None,
        }
    return view


def stats_document(summary: UsageSummary, database: str, limits: dict[str, Any] | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "since": _iso(summary.since),
        "database": database,
        "totals": summary.totals.to_dict(),
    }
    for attribute, label in _GROUP_LABELS.items():
        groups: list[UsageGroup] = getattr(summary, attribute)
        document[attribute] = [group.to_dict(label) for group in groups]
    document["rate_limits"] = limits
    return document


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _usage_table(title: str, label: str, rows: list[tuple[str, UsageTotals]]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    # Names come from clients: literal text, escaped, cut only past CELL_LIMIT.
    names = [plain(name) for name, _ in rows]
    # Names stay whole (the figures shrink first) so a model or key is never cut to "gpt-5-c…".
    table.add_column(label, no_wrap=True, min_width=max([len(label), *(len(name) for name in names)]))
    for column in ("requests", "errors", "input", "cached", "output", "reasoning", "TTFT ms", "ms"):
        table.add_column(column, justify="right")
    for name, (_, totals) in zip(names, rows, strict=True):
        table.add_row(
            name,
            f"{totals.requests:,}",
            f"{totals.errors:,}",
            f"{totals.input_tokens:,}",
            f"{totals.cached_tokens:,}",
            f"{totals.output_tokens:,}",
            f"{totals.reasoning_tokens:,}",
            _ms(totals.avg_ttft_ms),
            _ms(totals.avg_duration_ms),
        )
    return table


def _print_tables(summary: UsageSummary, limits: dict[str, Any] | None) -> None:
    from rich.table import Table

    console.print(plain(f"Usage since {_iso(summary.since)} (days in UTC)"))
    print_table(_usage_table("Total", "", [("all", summary.totals)]))
    print_table(_usage_table("By day", "day", [(g.group, g.totals) for g in summary.by_day]))
    print_table(_usage_table("By model", "model", [(g.group or "(none)", g.totals) for g in summary.by_model]))
    print_table(_usage_table("By key", "key", [(g.group or "(no key)", g.totals) for g in summary.by_key]))
    if any(g.group for g in summary.by_account):
        rows = [(g.group or "(before the pool)", g.totals) for g in summary.by_account]
        print_table(_usage_table("By account", "account", rows))
    table = Table(title="Rate limits (latest seen)")
    for column in ("window", "used %", "window (min)", "resets at"):
        table.add_column(column)
    windows: dict[str, dict[str, Any]] = limits["windows"] if limits else {}
    for window in ("primary", "secondary"):
        values = windows.get(window, {})
        used = values.get("used_percent")
        table.add_row(
            window,
            f"{used:.1f}" if isinstance(used, int | float) else plain(used),
            plain(values.get("window_minutes") or "-"),
            plain(values.get("resets_at") or "-"),
        )
    print_table(table)
    if limits and limits.get("observed_at"):
        plan = limits.get("plan_type") or "-"
        console.print(plain(f"Rate limits observed at {limits['observed_at']} (plan: {plan})"))


def register(app: typer.Typer) -> None:
    @app.command("stats")
    def stats(
        ctx: typer.Context,
        since: Annotated[str, typer.Option("--since", help="7d, 24h, 2w, YYYY-MM-DD (UTC) or all.")] = "7d",
        as_json: Annotated[bool, typer.Option("--json", help="Print only a JSON document.")] = False,
    ) -> None:
        """Usage by day, model and key, and the latest rate-limit windows."""
        import orjson

        from codexgate.storage import rate_limits
        from codexgate.storage.usage_db import UsageDBError, summarize

        start = parse_since(since)
        current = settings(ctx)
        database_url = current.storage.database_url
        database: str = str(current.database_path)
        if database_url:
            from codexgate.storage.usage_pg import redact_url

            database = redact_url(database_url)
        try:
            summary = summarize(database_url or current.database_path, start)
        except UsageDBError as exc:
            fail(str(exc))
        limits = rate_limit_view(rate_limits.load(current.rate_limits_file))
        from codexgate.pool.account_files import PoolPaths

        accounts = pool_status(PoolPaths(current.home, current.codex_auth_file), time.time())
        if as_json:
            document = stats_document(summary, database, limits)
            document["accounts"] = accounts
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        _print_tables(summary, limits)
        if accounts:
            print_pool(accounts)
