"""``codexgate keys create|update|list|revoke``: the gateway's API keys and their budgets.

``keys create`` prints the new key alone on the last line of stdout (everything else goes to
stderr), so ``KEY=$(codexgate keys create --name laptop)`` captures just the key. It is the only
time the key is shown; ``keys list`` shows names, ids, dates, limits and use against the budgets,
never a key or a hash. ``keys update NAME`` changes a key's limits; a running gateway applies them
within a second. Budgets and their counting are described in ``storage/budgets.py``.

With ``state_url`` set (several instances sharing Redis), every command acts on the keys in the shared
state (``storage/shared_keys.py``) instead of ``keys.json``, and ``keys list`` shows the token use of the
whole cluster; the commands say so in their output.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codexgate.cli.common import err_console, fail, print_table, settings
from codexgate.cli.safe_text import plain

if TYPE_CHECKING:
    from codexgate.config import Settings
    from codexgate.storage.api_keys import KeyInfo, KeyStore
    from codexgate.storage.budgets import KeyLimits, KeyUsage

_LIMIT_HELP = "Limits (token budgets count input + output tokens, cached input included; calendar windows in UTC)"

DayOption = Annotated[int | None, typer.Option("--tokens-per-day", min=0, help="Token budget per UTC day.")]
WeekOption = Annotated[
    int | None, typer.Option("--tokens-per-week", min=0, help="Token budget per UTC week (from Monday).")
]
MonthOption = Annotated[int | None, typer.Option("--tokens-per-month", min=0, help="Token budget per UTC month.")]
RpmOption = Annotated[
    int | None, typer.Option("--requests-per-minute", "--rpm", min=0, help="Requests in any 60 s (sliding).")
]
ModelOption = Annotated[
    list[str] | None, typer.Option("--model", help="Allowed model (glob, e.g. 'gpt-5*'); repeat for more.")
]
AccountOption = Annotated[
    list[str] | None, typer.Option("--account", help="Allowed pool account (alias); repeat for more.")
]
ExpiresOption = Annotated[
    str | None, typer.Option("--expires", help="Expiry: YYYY-MM-DD (00:00 UTC) or an ISO date-time.")
]


def _store(ctx: typer.Context) -> KeyStore:
    """The keys file, or with ``state_url`` the keys every instance shares in Redis."""
    config = settings(ctx)
    if config.state.state_url:
        from codexgate.storage.shared_keys import SharedKeyStore

        return SharedKeyStore.from_settings(config)
    from codexgate.storage.api_keys import KeyStore

    return KeyStore(config.keys_file)


def _where(config: Settings) -> str:
    """Where the keys live, for messages (never the state URL: it may hold a password)."""
    if config.state.state_url:
        return f"the shared state (state_url, prefix {config.state.state_prefix!r}; every instance)"
    return f"{config.keys_file} (home {config.home})"


def _usage(config: Settings, keys: list[KeyInfo], now: float) -> dict[str, KeyUsage]:
    if config.state.state_url:
        from codexgate.storage.shared_budgets import shared_usage

        try:
            return shared_usage(config.state.state_url, config.state.state_prefix, [k.id for k in keys], now)
        except Exception as exc:  # redis errors, OSError: the keys were just read, so this is rare
            fail(f"the shared state (Redis) is unreachable ({type(exc).__name__}); try again")
    from codexgate.storage.budgets import BUDGETS_FILE_NAME, BudgetTracker

    tracker = BudgetTracker.saved(config.home / BUDGETS_FILE_NAME)
    return {k.id: tracker.usage(k.id, now) for k in keys}


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _limits(base: KeyLimits, **given: Any) -> KeyLimits:
    from codexgate.storage.budgets import KeyLimits, parse_expiry

    values: dict[str, Any] = {
        name: getattr(base, name)
        for name in (
            "tokens_per_day",
            "tokens_per_week",
            "tokens_per_month",
            "requests_per_minute",
            "allowed_models",
            "allowed_accounts",
            "expires_at",
        )
    }
    for name, value in given.items():
        if value is None:
            continue
        if name == "expires":
            try:
                values["expires_at"] = parse_expiry(value)
            except ValueError:
                fail(f"--expires {value!r} is not a date (YYYY-MM-DD) or an ISO date-time")
        elif name in ("allowed_models", "allowed_accounts"):
            values[name] = tuple(value)
        else:
            values[name] = value
    return KeyLimits(**values)


def _usage_text(info: KeyInfo, usage: KeyUsage) -> str:
    from codexgate.storage.budgets import TOKEN_WINDOWS

    parts = []
    for window in TOKEN_WINDOWS:
        budget = info.limits.token_budget(window)
        used = usage.tokens[window]
        if budget is not None:
            parts.append(f"{window} {used:,}/{budget:,}")
        elif used:
            parts.append(f"{window} {used:,}")
    return ", ".join(parts) or "-"


def _rules_text(limits: KeyLimits) -> str:
    parts = []
    if limits.requests_per_minute is not None:
        parts.append(f"{limits.requests_per_minute} rpm")
    if limits.allowed_models:
        parts.append("models " + " ".join(limits.allowed_models))
    if limits.allowed_accounts:
        parts.append("accounts " + " ".join(limits.allowed_accounts))
    if limits.expires_at is not None:
        parts.append("expires " + _when(limits.expires_at))
    return "; ".join(parts) or "-"


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(
        help="Manage the API keys clients must present (with state_url: the keys every instance shares in Redis).",
        no_args_is_help=True,
    )
    app.add_typer(keys_app, name="keys")

    @keys_app.command("create")
    def create(
        ctx: typer.Context,
        name: Annotated[str, typer.Option("--name", help="A name for the key (shown in usage and stats).")],
        tokens_per_day: DayOption = None,
        tokens_per_week: WeekOption = None,
        tokens_per_month: MonthOption = None,
        requests_per_minute: RpmOption = None,
        model: ModelOption = None,
        account: AccountOption = None,
        expires: ExpiresOption = None,
    ) -> None:
        """Create a key and print it once, alone on the last line of stdout."""
        from codexgate.storage.api_keys import KeyStoreError
        from codexgate.storage.budgets import NO_LIMITS

        limits = _limits(
            NO_LIMITS,
            tokens_per_day=tokens_per_day,
            tokens_per_week=tokens_per_week,
            tokens_per_month=tokens_per_month,
            requests_per_minute=requests_per_minute,
            allowed_models=model,
            allowed_accounts=account,
            expires=expires,
        )
        config = settings(ctx)
        store = _store(ctx)
        try:
            key = store.create(name, limits)
        except KeyStoreError as exc:
            fail(str(exc))
        err_console.print(
            f"Created API key {name.strip()!r} in {_where(config)}. It is shown only now: "
            "store it somewhere safe. A running gateway using these keys accepts it within a second.",
            markup=False,
            soft_wrap=True,
        )
        typer.echo(key)

    @keys_app.command("update")
    def update(
        ctx: typer.Context,
        name_or_id: Annotated[str, typer.Argument(metavar="NAME", help="The key's name or id.")],
        tokens_per_day: DayOption = None,
        tokens_per_week: WeekOption = None,
        tokens_per_month: MonthOption = None,
        requests_per_minute: RpmOption = None,
        model: ModelOption = None,
        account: AccountOption = None,
        expires: ExpiresOption = None,
        clear: Annotated[
            bool, typer.Option("--clear", help="Remove every limit first, then apply the options.")
        ] = False,
    ) -> None:
        """Change a key's limits (options not given keep theirs); a running gateway applies them within a second."""
        from codexgate.storage.api_keys import KeyStoreError
        from codexgate.storage.budgets import NO_LIMITS, TOKEN_WINDOWS

        store = _store(ctx)
        try:
            current = store.list()
        except KeyStoreError as exc:
            fail(str(exc))
        info = next((k for k in current if name_or_id in (k.id, k.name)), None)
        if info is None:
            fail(f"no key named or with id {name_or_id!r}")
        limits = _limits(
            NO_LIMITS if clear else info.limits,
            tokens_per_day=tokens_per_day,
            tokens_per_week=tokens_per_week,
            tokens_per_month=tokens_per_month,
            requests_per_minute=requests_per_minute,
            allowed_models=model,
            allowed_accounts=account,
            expires=expires,
        )
        try:
            updated = store.update(info.id, limits)
        except KeyStoreError as exc:
            fail(str(exc))
        budgets = ", ".join(
            f"{window} {budget:,}"
            for window in TOKEN_WINDOWS
            if (budget := updated.limits.token_budget(window)) is not None
        )
        err_console.print(
            f"Updated API key {updated.name!r}: token budgets {budgets or '-'}; {_rules_text(updated.limits)}.",
            markup=False,
            soft_wrap=True,
        )

    @keys_app.command("list")
    def list_keys(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the keys: name, id, creation time, limits and use against budgets (never the key or its hash)."""
        import orjson

        from codexgate.storage.api_keys import KeyStoreError
        from codexgate.storage.budgets import NO_LIMITS

        loaded = settings(ctx)
        try:
            keys = _store(ctx).list()
        except KeyStoreError as exc:
            fail(str(exc))
        usage = _usage(loaded, keys, time.time())
        if as_json:
            # "limits" and "tokens_used" only for keys that have limits or use (a plain key keeps its old shape)
            document = []
            for k in keys:
                entry: dict[str, Any] = {"id": k.id, "name": k.name, "created_at": _when(k.created_at)}
                if k.limits is not NO_LIMITS:
                    entry["limits"] = k.limits.to_dict()
                if k.limits is not NO_LIMITS or any(usage[k.id].tokens.values()):
                    entry["tokens_used"] = usage[k.id].tokens
                document.append(entry)
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        if not keys:
            err_console.print(
                f"No API keys in {_where(loaded)}: the gateway accepts any bearer value (loopback only by default).",
                markup=False,
                soft_wrap=True,
            )
            return
        from rich.table import Table  # not for --json

        table = Table(title="codexgate API keys", caption=_LIMIT_HELP)
        for column in ("name", "id", "created", "tokens used / budget", "rules"):
            table.add_column(column)
        for info in keys:
            table.add_row(
                plain(info.name),
                plain(info.id),
                _when(info.created_at),
                _usage_text(info, usage[info.id]),
                plain(_rules_text(info.limits)),
            )
        print_table(table)

    @keys_app.command("revoke")
    def revoke(
        ctx: typer.Context,
        name_or_id: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The key's name or id.")],
    ) -> None:
        """Revoke a key; a running gateway rejects it within a second."""
        from codexgate.storage.api_keys import KeyStoreError

        store = _store(ctx)
        try:
            removed = store.revoke(name_or_id)
        except KeyStoreError as exc:
            fail(str(exc))
        if not removed:
            fail(f"no key named or with id {name_or_id!r}")
        err_console.print(f"Revoked API key {name_or_id!r} in {_where(settings(ctx))}.", markup=False, soft_wrap=True)
        try:
            none_left = not store.list()
        except KeyStoreError:
            none_left = False  # unknown: say nothing
        if none_left:
            err_console.print(
                "No API keys are left: a gateway on a loopback address (or started with --allow-no-auth) now "
                "accepts any client; one on a public address rejects every request until a key is created.",
                markup=False,
                soft_wrap=True,
            )
