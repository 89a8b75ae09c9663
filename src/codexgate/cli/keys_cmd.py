"""``codexgate keys create|list|revoke``: the gateway's API keys (see ``storage/api_keys.py``).

``keys create`` prints the new key alone on the last line of stdout (everything else goes to
stderr), so ``KEY=$(codexgate keys create --name laptop)`` captures just the key. It is the only
time the key is shown; ``keys list`` shows names, ids and dates, never a key or a hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.table import Table

from codexgate.cli.common import console, err_console, fail, settings
from codexgate.cli.safe_text import plain
from codexgate.storage.api_keys import KeyStore, KeyStoreError


def _store(ctx: typer.Context) -> KeyStore:
    return KeyStore(settings(ctx).keys_file)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="Manage the API keys clients must present.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @keys_app.command("create")
    def create(
        ctx: typer.Context,
        name: Annotated[str, typer.Option("--name", help="A name for the key (shown in usage and stats).")],
    ) -> None:
        """Create a key and print it once, alone on the last line of stdout."""
        store = _store(ctx)
        try:
            key = store.create(name)
        except KeyStoreError as exc:
            fail(str(exc))
        err_console.print(
            f"Created API key {name.strip()!r}. It is shown only now: store it somewhere safe. "
            "A running gateway accepts it within a second.",
            markup=False,
            soft_wrap=True,
        )
        typer.echo(key)

    @keys_app.command("list")
    def list_keys(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the keys: name, id and creation time (never the key or its hash)."""
        try:
            keys = _store(ctx).list()
        except KeyStoreError as exc:
            fail(str(exc))
        if as_json:
            document = [{"id": k.id, "name": k.name, "created_at": _when(k.created_at)} for k in keys]
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        if not keys:
            err_console.print("No API keys: the gateway accepts any bearer value (loopback only by default).")
            return
        table = Table(title="codexgate API keys")
        for column in ("name", "id", "created"):
            table.add_column(column)
        for info in keys:
            table.add_row(plain(info.name), plain(info.id), _when(info.created_at))
        console.print(table)

    @keys_app.command("revoke")
    def revoke(
        ctx: typer.Context,
        name_or_id: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The key's name or id.")],
    ) -> None:
        """Revoke a key; a running gateway rejects it within a second."""
        store = _store(ctx)
        try:
            removed = store.revoke(name_or_id)
        except KeyStoreError as exc:
            fail(str(exc))
        if not removed:
            fail(f"no key named or with id {name_or_id!r}")
        err_console.print(f"Revoked API key {name_or_id!r}.", markup=False)
        if not store.list():
            err_console.print(
                "No API keys are left: a gateway on a loopback address (or started with --allow-no-auth) now "
                "accepts any client; one on a public address rejects every request until a key is created.",
                markup=False,
                soft_wrap=True,
            )
