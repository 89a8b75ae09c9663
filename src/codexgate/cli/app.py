"""The ``codexgate`` command line as a typer app. Each command group lives in its own module and registers itself.

:func:`codexgate.cli.main.run` (the entry point) builds it only when a command needs it: ``serve`` starts
without typer.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from codexgate.cli.common import GlobalOptions

__all__ = ["COMMAND_MODULES", "app"]

app = typer.Typer(
    name="codexgate",
    help="OpenAI-compatible gateway to the ChatGPT Codex backend, using your ChatGPT sign-in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: modules that define ``register(app)``; each adds its commands.
COMMAND_MODULES = [
    "codexgate.cli.serve_cmd",
    "codexgate.cli.demo_cmd",
    "codexgate.cli.config_cmd",
    "codexgate.cli.simulate_cmd",
    "codexgate.cli.keys_cmd",
    "codexgate.cli.admin_cmd",
    "codexgate.cli.stats_cmd",
    "codexgate.cli.auth_cmd",
    "codexgate.cli.accounts_cmd",
    "codexgate.cli.instructions_cmd",
    "codexgate.cli.models_cmd",
]


def _version(value: bool) -> None:
    if value:
        from codexgate import __version__

        typer.echo(f"codexgate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="TOML config file (default: $CODEXGATE_HOME/config.toml); also after the command."
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="codexgate's data dir (default: ~/.codexgate); also after the command."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    flags = {"home": str(home)} if home is not None else {}
    ctx.obj = GlobalOptions(config=config, flags=flags)


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
