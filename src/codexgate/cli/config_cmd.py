"""``codexgate config show``: the effective settings and where each came from, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

from codexgate.cli.common import load, print_table
from codexgate.cli.safe_text import plain


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("show")
    def show(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Print every setting, its value, its source (default, file, env or flag) and what it means."""
        import orjson
        from rich.table import Table

        from codexgate.config import describe_settings, effective_settings, env_name, flag_name

        loaded = load(ctx)
        rows = effective_settings(loaded)
        meanings = {info.name: info.meaning for info in describe_settings()}
        if as_json:
            document = {
                "config_file": str(loaded.config_file) if loaded.config_file else None,
                "settings": {
                    name: {"value": value, "source": source, "section": section, "meaning": meanings.get(name, "")}
                    for section, name, value, source in rows
                },
            }
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        table = Table(title=plain(f"codexgate settings (config file: {loaded.config_file or 'none'})", limit=1000))
        for column in ("section", "setting", "value", "source", "env / flag"):
            table.add_column(column, overflow="fold")
        table.add_column("meaning", overflow="fold", min_width=30)
        for section, name, value, source in rows:
            flags = f"{env_name(name)} / {flag_name(name)}"
            table.add_row(
                section, name, plain(str(value), limit=1000), plain(source), flags, plain(meanings.get(name, ""))
            )
        print_table(table)
