"""``codexgate login`` / ``logout`` / ``status``: the ChatGPT sign-in. No token is ever printed."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codexgate.cli.common import console, err_console, fail, print_table, settings
from codexgate.cli.safe_text import plain

if TYPE_CHECKING:
    from codexgate.auth.credentials import Credentials, CredentialStore
    from codexgate.auth.oauth_client import TokenSet
    from codexgate.pool.account_files import PoolPaths
    from codexgate.pool.admin import StoredAccount


def _has_browser() -> bool:
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def serving_problem(credentials: Credentials | None, views: list[dict[str, Any]], now: float) -> str | None:
    """Why these credentials cannot serve a request, or None when they can (an expired access token
    with a refresh token can: the next request renews it)."""
    if credentials is None:
        return "not signed in"
    expired = credentials.expires_at is not None and credentials.expires_at <= now
    if expired and not credentials.refresh_token:
        return "the access token has expired and there is no refresh token to renew it"
    for view in views:
        if view.get("chatgpt_account_id") == credentials.account_id and view.get("status") == "needs_login":
            reason = view.get("last_error") or "a refresh could not fix it"
            return f"ChatGPT rejected the sign-in of {view.get('alias')!r} ({reason})"
    return None


def _pool_views(config: Any) -> list[dict[str, Any]]:
    from codexgate.pool.account_files import PoolPaths
    from codexgate.pool.admin import PoolAdminError, account_views

    if not config.home.exists():
        return []
    now = time.time()
    today = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
    try:
        return account_views(PoolPaths(config.home, config.codex_auth_file), now, today)
    except (PoolAdminError, OSError, ValueError):
        return []


def status_document(
    credentials: Credentials | None,
    store: CredentialStore,
    limits: dict[str, Any] | None,
    problem: str | None = None,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).timestamp()
    document: dict[str, Any] = {
        "signed_in": credentials is not None,
        "can_serve": problem is None and credentials is not None,
        "problem": problem,
        "searched": [str(store.own_file), str(store.codex_file)],
    }
    if credentials is not None:
        expired = credentials.expires_at is not None and credentials.expires_at < now
        document.update(
            {
                "email": credentials.email,
                "plan": credentials.plan_type,
                "account_id": credentials.account_id,
                "source": str(credentials.source),
                "access_token_expires_at": _when(credentials.expires_at),
                "expired": expired,
                "refresh_will_renew": expired and bool(credentials.refresh_token),
                "last_refresh": credentials.last_refresh,
            }
        )
    document["rate_limits"] = limits
    return document


def pool_status(paths: PoolPaths, now: float) -> list[dict[str, Any]]:
    """Each pool account's alias, state, windows and today's figures, and whether it can serve now
    (from the server's last saved states and the operator's latest word; no token, no email)."""
    from codexgate.pool.accounts import AccountState
    from codexgate.pool.admin import PoolAdminError, account_views

    if not (paths.accounts_dir.exists() or paths.legacy_file.exists() or paths.codex_file.exists()):
        return []
    today = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
    try:
        views = account_views(paths, now, today)
    except (PoolAdminError, OSError):
        return []
    accounts: list[dict[str, Any]] = []
    for view in views:
        try:
            state = AccountState.from_dict(view)
        except (KeyError, TypeError, ValueError):
            continue
        accounts.append(
            {
                "alias": view.get("alias"),
                "state": view.get("state"),
                "state_text": view.get("state_text"),
                "can_serve": state.usable(now),
                "primary": view.get("primary"),
                "secondary": view.get("secondary"),
                "requests_today": view.get("requests_today"),
                "tokens_today": view.get("tokens_today"),
                "last_error": view.get("last_error"),
            }
        )
    return accounts


def _window_text(window: Any) -> str:
    if not isinstance(window, dict):
        return "-"
    used = window.get("used_percent")
    used_text = f"{used:g}%" if isinstance(used, int | float) else "?"
    reset = window.get("reset_at")
    return f"{used_text} (resets {_when(reset) if isinstance(reset, int | float) else 'unknown'})"


def print_pool(accounts: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="accounts")
    for column in ("alias", "state", "primary", "secondary", "requests today", "tokens today"):
        table.add_column(column, no_wrap=True, overflow="fold")
    for account in accounts:
        table.add_row(
            plain(account.get("alias")),
            plain(account.get("state_text")),
            plain(_window_text(account.get("primary"))),
            plain(_window_text(account.get("secondary"))),
            plain(account.get("requests_today")),
            plain(account.get("tokens_today")),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("login")
    def login(
        ctx: typer.Context,
        paste: Annotated[bool, typer.Option("--paste", help="Remote machine: paste the redirected URL.")] = False,
        device: Annotated[bool, typer.Option("--device", help="Sign in with a device code.")] = False,
        no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL, don't open a browser.")] = False,
    ) -> None:
        """Sign in with your ChatGPT account (the Codex CLI's OAuth login)."""
        import asyncio
        import webbrowser

        from codexgate.auth.login import browser_login, device_login, paste_login
        from codexgate.auth.oauth_client import AuthError
        from codexgate.pool.account_files import PoolPaths
        from codexgate.pool.admin import PoolAdminError, store_credentials

        config = settings(ctx)
        show: Callable[[str], None] = lambda text: err_console.print(text, markup=False, soft_wrap=True)  # noqa: E731
        paths = PoolPaths(config.home, config.codex_auth_file)
        stored: list[StoredAccount] = []

        async def store(tokens: TokenSet) -> Credentials:  # into the pool: a new account, or an update
            result = await store_credentials(
                paths, access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
            )
            stored.append(result)
            return result.credentials

        common = {
            "issuer": config.auth.auth_issuer,
            "client_id": config.auth.client_id,
            "own_file": config.auth_file,
            "store": store,
        }
        try:
            if device:
                credentials = asyncio.run(device_login(show=show, **common))  # type: ignore[arg-type]
            elif paste:
                credentials = asyncio.run(
                    paste_login(port=config.auth.login_port, show=show, read_line=input, **common)  # type: ignore[arg-type]
                )
            else:
                opener = None if no_browser or not _has_browser() else webbrowser.open
                credentials = asyncio.run(
                    browser_login(port=config.auth.login_port, show=show, open_browser=opener, **common)  # type: ignore[arg-type]
                )
        except AuthError as exc:
            fail(exc.message)
        except PoolAdminError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(
                f"could not listen on 127.0.0.1:{config.auth.login_port} for the sign-in callback: "
                f"{exc.strerror or exc}"
            )
        what = ""
        if stored:
            what = f"{'added' if stored[0].created else 'updated'} account {stored[0].alias!r}; "
        console.print(
            plain(
                f"Signed in as {credentials.email or 'unknown'} ({credentials.plan_type or 'unknown plan'}); "
                f"{what}saved to {credentials.source}",
                limit=2000,
            )
        )
        if config.state.state_url:  # several instances: the account goes to the shared state at once
            from codexgate.cli.accounts_cmd import share_with_cluster

            shared = share_with_cluster(config, credentials.source)
            if shared is not None:
                console.print(shared, markup=False)

    @app.command("logout")
    def logout(
        ctx: typer.Context,
        name: Annotated[
            str | None, typer.Argument(metavar="[NAME]", help="The account's alias (needed with several accounts).")
        ] = None,
    ) -> None:
        """Remove codexgate's own credentials of an account (the Codex CLI's file is left alone)."""
        import asyncio

        from codexgate.pool.account_files import FileKind, PoolPaths, scan
        from codexgate.pool.admin import PoolAdminError, remove_account

        config = settings(ctx)
        paths = PoolPaths(config.home, config.codex_auth_file)
        if name is None:
            chosen, shadowed = scan(paths)
            own = {found.key for found in [*chosen.values(), *shadowed] if found.kind is FileKind.OWN}
            if not own:
                console.print(f"Not signed in with codexgate (no {config.auth_file}).")
                return
            if len(own) > 1:
                fail("codexgate holds several accounts: name the one to log out (see `codexgate accounts list`)")
            name = next(iter(own))
        try:
            alias, removed, codex = asyncio.run(remove_account(paths, name))
        except PoolAdminError as exc:
            fail(str(exc))
        console.print(plain(f"Logged out {alias!r}: removed {', '.join(str(path) for path in removed)}.", limit=2000))
        if codex is not None or config.codex_auth_file.exists():
            console.print(
                plain(
                    f"The Codex CLI's credentials in {config.codex_auth_file} are still used; "
                    "run `codex logout` to remove them.",
                    limit=2000,
                )
            )

    @app.command("status")
    def status(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Account, plan, token expiry, last refresh and the latest rate-limit windows seen.

        Exits 1 when no credentials can serve (not signed in, or the sign-in was rejected and a refresh
        cannot fix it); an expired access token that a refresh will renew is fine."""
        import orjson

        from codexgate.auth.credentials import CredentialFileError, CredentialStore
        from codexgate.storage import rate_limits

        config = settings(ctx)
        store = CredentialStore(config.auth_file, config.codex_auth_file)
        try:
            credentials = store.load()
        except CredentialFileError as exc:
            fail(str(exc))
        problem = serving_problem(credentials, _pool_views(config) if credentials else [], time.time())
        document = status_document(credentials, store, rate_limits.load(config.rate_limits_file), problem)
        from codexgate.pool.account_files import PoolPaths

        accounts = pool_status(PoolPaths(config.home, config.codex_auth_file), time.time())
        document["accounts"] = accounts
        # exit 1 only when no account can serve (none signed in, or every one cooling, paused, disabled …;
        # with one account: its sign-in rejected and a refresh cannot fix it)
        if len(accounts) > 1:
            can_serve = any(account["can_serve"] for account in accounts)
        else:
            can_serve = problem is None and all(account["can_serve"] for account in accounts)
        document["can_serve"] = can_serve
        if as_json:
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            raise typer.Exit(0 if can_serve else 1)
        if credentials is None and accounts:
            console.print(plain(f"Signed in with {len(accounts)} pool account(s)."))
        elif credentials is None:
            console.print(
                f"Not signed in (looked in {store.searched()}). Run `codexgate login`.", markup=False, soft_wrap=True
            )
        else:
            from rich.table import Table

            table = Table(show_header=False, title="codexgate status")
            for key in ("email", "plan", "account_id", "source", "access_token_expires_at", "last_refresh"):
                value = str(document.get(key))
                if key == "access_token_expires_at" and document["refresh_will_renew"]:
                    value += " (expired; the next request refreshes it)"
                table.add_row(key.replace("_", " "), plain(value, limit=1000))
            print_table(table)
        limits = document["rate_limits"]
        if limits:
            for window in ("primary", "secondary"):
                values = limits.get(window) or {}
                if values:
                    console.print(
                        plain(
                            f"{window}: {values.get('used_percent', '?')}% used of a "
                            f"{values.get('window_minutes', '?')}-minute window,"
                            f" resets {_when(values.get('reset_at')) or 'unknown'}",
                            limit=1000,
                        )
                    )
        else:
            console.print("No rate-limit windows seen yet.", soft_wrap=True)
        if len(accounts) > 1 or (accounts and not can_serve):
            print_pool(accounts)
        if not can_serve:
            if problem is not None and credentials is not None:
                err_console.print(plain(f"error: {problem}. Run `codexgate login`.", limit=2000), soft_wrap=True)
            else:
                console.print("No account can serve requests now.", soft_wrap=True)
            raise typer.Exit(1)
