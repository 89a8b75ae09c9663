"""The ``codexgate`` command's entry point: :func:`run`.

The typer app (:mod:`codexgate.cli.app`) is imported only when needed: ``codexgate serve`` with setting
flags (no ``--help``) goes straight to :func:`codexgate.cli.serve_start.start_server`, so that the server's
start-up does not pay for typer and the other commands' definitions. ``app`` is still importable from here.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

from codexgate.cli.common import GLOBAL_VALUE_OPTIONS, hoist_global_options

if TYPE_CHECKING:
    import typer

    app: typer.Typer

#: commands that start a server: the cyclic garbage collector stays off while they import and build it
#: (it would walk the growing heap ~200 times, ~15 % of the start-up); the server turns it on again
#: once it is built (``codexgate.server.runner.run_server``).
SERVER_COMMANDS = ("serve", "demo")


def command_name(args: list[str]) -> str | None:
    """The command of hoisted ``args`` (global options and their values skipped), or None."""
    values = iter(args)
    for arg in values:
        if arg in GLOBAL_VALUE_OPTIONS:
            next(values, None)
        elif not arg.startswith("-"):
            return arg
    return None


def run() -> None:
    args = hoist_global_options(sys.argv[1:])
    command = command_name(args)
    if command in SERVER_COMMANDS:
        gc.disable()
    if command == "serve":
        from codexgate.cli.serve_start import direct_serve_arguments, start_server

        direct = direct_serve_arguments(args)
        if direct is not None:
            raise SystemExit(start_server(*direct))
    from codexgate.cli.app import app

    app(args=args, prog_name="codexgate")


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer app, built on first use
        from codexgate.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
