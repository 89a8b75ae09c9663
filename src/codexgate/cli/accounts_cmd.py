"""``codexgate accounts list|remove|pause|resume|rename|import``: the account pool (``pool/admin.py``).

Every change is a file a running server picks up within a second, without a restart. No token is
ever printed; ``list --json`` prints each account's saved state (``AccountState.to_dict`` form).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codexgate.cli.common import console, err_console, fail, settings
from codexgate.cli.safe_text import plain

if TYPE_CHECKING:
    from rich.table import Table

    from codexgate.config import Settings
    from codexgate.pool.account_files import PoolPaths

__all__ = ["pool_paths", "register"]

_NAME_HELP = "The account's alias (or its email when only one account has it)."


def pool_paths(ctx: typer.Context) -> PoolPaths:
    from codexgate.pool.account_files import PoolPaths

    config = settings(ctx)
    return PoolPaths(config.home, config.codex_auth_file)


def _say(text: str) -> None:
    err_console.print(plain(text, limit=4000, keep_newlines=True), soft_wrap=True)


def share_with_cluster(config: Settings, path: Path) -> str | None:
    """With ``state_url``: store the account's credentials in the shared state at once (so every instance
    serves it, even when this home is a one-off container's); what to tell the user, None without it."""
    if not config.state.state_url:
        return None
    import asyncio

    from codexgate.pool.cluster_admin import ClusterAdminError, share_credentials

    try:
        stored = asyncio.run(share_credentials(config, path))
    except ClusterAdminError as exc:
        fail(str(exc))
    if stored:
        return "Stored in the shared state (state_url): every instance serves this account from now on."
    return "The shared state already holds newer credentials of this account; they are kept."


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "unknown"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _window(window: Any, now: float) -> str:
    if not isinstance(window, dict):
        return "-"
    used = window.get("used_percent")
    reset = window.get("reset_at")
    if isinstance(reset, int | float) and reset <= now:
        return f"0% (reset {_when(reset)})"  # a stale window counts as 0 %
    used_text = f"{used:g}%" if isinstance(used, int | float) else "?"
    return f"{used_text} (resets {_when(reset)})"


def _table(views: list[dict[str, Any]], now: float) -> Table:
    from rich.table import Table

    table = Table(title="codexgate accounts")
    for column in ("name", "alias", "plan", "state", "primary", "secondary", "requests today", "tokens today"):
        table.add_column(column, no_wrap=True, overflow="fold")
    table.add_column("last error", overflow="fold")
    for view in views:
        table.add_row(
            plain(view.get("email")),
            plain(view.get("alias")),
            plain(view.get("plan")),
            plain(view.get("state_text")),
            plain(_window(view.get("primary"), now)),
            plain(_window(view.get("secondary"), now)),
            plain(view.get("requests_today")),
            plain(view.get("tokens_today")),
            plain(view.get("last_error")),
        )
    return table


def _remove_shared(config: Settings, paths: PoolPaths, name: str) -> None:
    """``accounts remove`` with ``state_url``: this home's files of the account (if any), and the account in
    the shared state, so that every instance drops it."""
    import asyncio

    from codexgate.pool.account_files import index_lock
    from codexgate.pool.admin import PoolAdminError, find_account, remove_account
    from codexgate.pool.cluster_admin import ClusterAdminError, find_shared_account, unshare_account

    try:
        with index_lock(paths):
            key: str | None = find_account(paths, name)[0]
    except PoolAdminError:
        key = None  # not in this home: look for it in the shared state
    try:
        if key is not None:
            alias, removed, codex = asyncio.run(remove_account(paths, name))
            _say(f"Removed account {alias!r} from this home ({', '.join(str(path) for path in removed)}).")
            if codex is not None:
                _say(f"The Codex CLI's login of the same account ({codex.path}) stays here: run `codex logout`.")
        else:
            key = asyncio.run(find_shared_account(config, name))
            if key is None:
                fail(f"no account named {name!r} in this home or in the shared state")
        assert key is not None
        gone = asyncio.run(unshare_account(config, key))
    except (PoolAdminError, ClusterAdminError) as exc:
        fail(str(exc))
    if gone:
        _say("Removed it from the shared state (state_url): every instance drops it within seconds.")
    else:
        _say("The shared state did not hold it.")


def _pause_shared(config: Settings, paths: PoolPaths, name: str, *, paused: bool) -> None:
    """``accounts pause/resume`` with ``state_url``: this home's index (if it holds the account) and the shared
    pool state, so every instance applies it within a second, whichever home it runs on."""
    import asyncio

    from codexgate.pool.account_files import index_lock
    from codexgate.pool.admin import PoolAdminError, find_account, pause_account, resume_account
    from codexgate.pool.cluster_admin import ClusterAdminError, find_shared_account, pause_shared_account

    key: str | None
    try:
        with index_lock(paths):
            key = find_account(paths, name)[0]
        (pause_account if paused else resume_account)(paths, name)
    except PoolAdminError:
        key = None  # not in this home: look for it in the shared state
    try:
        if key is None:
            key = asyncio.run(find_shared_account(config, name))
            if key is None:
                fail(f"no account named {name!r} in this home or in the shared state")
        assert key is not None
        asyncio.run(pause_shared_account(config, key, paused))
    except ClusterAdminError as exc:
        fail(str(exc))
    _say(f"{'Paused' if paused else 'Resumed'} account {name!r} for every instance (shared state, within a second).")


def register(app: typer.Typer) -> None:
    accounts_app = typer.Typer(help="The ChatGPT accounts of the pool.", no_args_is_help=True)
    app.add_typer(accounts_app, name="accounts")

    @accounts_app.command("list")
    def list_accounts(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Each account: name, alias, plan, state, latest windows, requests and tokens today, last error."""
        import orjson

        from codexgate.pool.admin import account_views

        now = time.time()
        views = account_views(pool_paths(ctx), now, dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d"))
        if as_json:
            typer.echo(orjson.dumps(views, option=orjson.OPT_INDENT_2).decode())
            return
        if not views:
            err_console.print(
                "No accounts. Add one with `codexgate login` or `codexgate accounts import PATH`.", soft_wrap=True
            )
            return
        from rich.console import Console
        from rich.measure import Measurement

        table = _table(views, now)
        # No cell is cut: a table wider than the terminal is printed at its full width (the terminal wraps).
        needed = Measurement.get(console, console.options.update_width(100_000), table).maximum
        Console(highlight=False, emoji=False, width=max(console.width, needed)).print(table)

    @accounts_app.command("remove")
    def remove(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help=_NAME_HELP)]) -> None:
        """Delete codexgate's own credentials of an account (the Codex CLI's file is never touched)."""
        import asyncio

        from codexgate.pool.admin import PoolAdminError, remove_account

        config = settings(ctx)
        paths = pool_paths(ctx)
        if config.state.state_url:
            _remove_shared(config, paths, name)
            return
        try:
            alias, removed, codex = asyncio.run(remove_account(paths, name))
        except PoolAdminError as exc:
            fail(str(exc))
        _say(f"Removed account {alias!r} ({', '.join(str(path) for path in removed)}).")
        if codex is not None:
            _say(
                f"The Codex CLI's login of the same account ({codex.path}) stays in the pool; "
                f"pause it with `codexgate accounts pause {alias}` or run `codex logout`."
            )

    @accounts_app.command("pause")
    def pause(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help=_NAME_HELP)]) -> None:
        """Take an account out of routing until `accounts resume` (its cooldown, if any, is kept)."""
        from codexgate.pool.admin import PoolAdminError, pause_account

        config = settings(ctx)
        if config.state.state_url:
            _pause_shared(config, pool_paths(ctx), name, paused=True)
            return
        try:
            entry = pause_account(pool_paths(ctx), name)
        except PoolAdminError as exc:
            fail(str(exc))
        _say(f"Paused account {entry.alias!r}; a running server stops routing to it within a second.")

    @accounts_app.command("resume")
    def resume(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help=_NAME_HELP)]) -> None:
        """Put a paused (or disabled) account back in service; a running cooldown still applies."""
        from codexgate.pool.admin import PoolAdminError, resume_account

        config = settings(ctx)
        if config.state.state_url:
            _pause_shared(config, pool_paths(ctx), name, paused=False)
            return
        try:
            entry = resume_account(pool_paths(ctx), name)
        except PoolAdminError as exc:
            fail(str(exc))
        _say(f"Resumed account {entry.alias!r}.")

    @accounts_app.command("rename")
    def rename(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(metavar="NAME", help=_NAME_HELP)],
        alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The new alias (shown in logs and metrics).")],
    ) -> None:
        """Give an account a new alias."""
        from codexgate.pool.admin import PoolAdminError, rename_account

        try:
            old, new = rename_account(pool_paths(ctx), name, alias)
        except PoolAdminError as exc:
            fail(str(exc))
        _say(f"Renamed account {old!r} to {new!r}.")

    @accounts_app.command("import")
    def import_(
        ctx: typer.Context,
        path: Annotated[Path, typer.Argument(metavar="PATH", help="A Codex CLI auth.json (e.g. another ~/.codex).")],
    ) -> None:
        """Add the account held in a Codex CLI auth.json (the file itself is left alone)."""
        import asyncio

        from codexgate.pool.admin import PoolAdminError, import_auth_file

        try:
            stored = asyncio.run(import_auth_file(pool_paths(ctx), path.expanduser()))
        except PoolAdminError as exc:
            fail(str(exc))
        verb = "Added" if stored.created else "Updated"
        email = stored.credentials.email or "unknown email"
        _say(f"{verb} account {stored.alias!r} ({email}), stored in {stored.path}.")
        shared = share_with_cluster(settings(ctx), stored.path)
        if shared is not None:
            _say(shared)
        _say(
            f"Warning: refresh tokens are single-use. Stop using the login in {path} (on that machine, run "
            "`codex logout` or sign in there again), or the two copies will lock each other out."
        )
