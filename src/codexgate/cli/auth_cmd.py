"""``codexgate login`` / ``logout`` / ``status``: the ChatGPT sign-in. No token is ever printed."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import webbrowser
from collections.abc import Callable
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from codexgate.auth.credentials import CredentialFileError, Credentials, CredentialStore
from codexgate.auth.login import browser_login, device_login, paste_login
from codexgate.auth.oauth_client import AuthError
from codexgate.cli.common import console, err_console, fail, settings
from codexgate.cli.safe_text import plain
from codexgate.storage import rate_limits


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


def status_document(
    credentials: Credentials | None, store: CredentialStore, limits: dict[str, Any] | None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "signed_in": credentials is not None,
        "searched": [str(store.own_file), str(store.codex_file)],
    }
    if credentials is not None:
        document.update(
            {
                "email": credentials.email,
                "plan": credentials.plan_type,
                "account_id": credentials.account_id,
                "source": str(credentials.source),
                "access_token_expires_at": _when(credentials.expires_at),
                "expired": credentials.expires_at is not None
                and credentials.expires_at < dt.datetime.now(dt.UTC).timestamp(),
                "last_refresh": credentials.last_refresh,
            }
        )
    document["rate_limits"] = limits
    return document


def register(app: typer.Typer) -> None:
    @app.command("login")
    def login(
        ctx: typer.Context,
        paste: Annotated[bool, typer.Option("--paste", help="Remote machine: paste the redirected URL.")] = False,
        device: Annotated[bool, typer.Option("--device", help="Sign in with a device code.")] = False,
        no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL, don't open a browser.")] = False,
    ) -> None:
        """Sign in with your ChatGPT account (the Codex CLI's OAuth login)."""
        config = settings(ctx)
        show: Callable[[str], None] = lambda text: err_console.print(text, markup=False, soft_wrap=True)  # noqa: E731
        common = {"issuer": config.auth.auth_issuer, "client_id": config.auth.client_id, "own_file": config.auth_file}
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
        except OSError as exc:
            fail(
                f"could not listen on 127.0.0.1:{config.auth.login_port} for the sign-in callback: "
                f"{exc.strerror or exc}"
            )
        console.print(
            plain(
                f"Signed in as {credentials.email or 'unknown'} ({credentials.plan_type or 'unknown plan'}); "
                f"saved to {credentials.source}",
                limit=2000,
            )
        )

    @app.command("logout")
    def logout(ctx: typer.Context) -> None:
        """Remove codexgate's own credentials (the Codex CLI's file is left alone)."""
        config = settings(ctx)
        try:
            config.auth_file.unlink()
        except FileNotFoundError:
            console.print(f"Not signed in with codexgate (no {config.auth_file}).")
            return
        console.print(f"Removed {config.auth_file}.")
        if config.codex_auth_file.exists():
            console.print(
                f"The Codex CLI's credentials in {config.codex_auth_file} are still used; "
                "run `codex logout` to remove them."
            )

    @app.command("status")
    def status(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Account, plan, token expiry, last refresh and the latest rate-limit windows seen."""
        config = settings(ctx)
        store = CredentialStore(config.auth_file, config.codex_auth_file)
        try:
            credentials = store.load()
        except CredentialFileError as exc:
            fail(str(exc))
        document = status_document(credentials, store, rate_limits.load(config.rate_limits_file))
        if as_json:
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        if credentials is None:
            console.print(f"Not signed in (looked in {store.searched()}). Run `codexgate login`.")
        else:
            table = Table(show_header=False, title="codexgate status")
            for key in ("email", "plan", "account_id", "source", "access_token_expires_at", "last_refresh"):
                table.add_row(key.replace("_", " "), plain(str(document.get(key)), limit=1000))
            console.print(table)
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
            console.print("No rate-limit windows seen yet.")
