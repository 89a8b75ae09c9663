"""``codexgate serve``: run the gateway. Every setting is also a flag: ``--x-y`` for ``x_y``."""

from __future__ import annotations

import logging

import typer

from codexgate.cli.common import err_console, fail, load
from codexgate.config import SETTING_SECTIONS, SettingsError, flag_name, parse_flag_args

SERVE_HELP = (
    "Run the gateway. Every setting can be given as a flag, e.g. --port 9191 --log-level debug "
    "(see `codexgate config show` for all of them): " + ", ".join(flag_name(name) for name in SETTING_SECTIONS)
)


def register(app: typer.Typer) -> None:
    @app.command(
        "serve",
        help=SERVE_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def serve(ctx: typer.Context) -> None:
        try:
            flags = parse_flag_args(list(ctx.args))
        except SettingsError as exc:
            err_console.print(f"codexgate: {exc}", markup=False)
            raise typer.Exit(2) from None
        loaded = load(ctx, flags)
        settings = loaded.settings

        from codexgate.server.runner import BindRefused, PortInUse, run_server

        try:
            run_server(settings)
        except BindRefused as exc:
            fail(str(exc), code=2)
        except PortInUse as exc:
            fail(str(exc))
        except OSError as exc:
            logging.getLogger("codexgate").debug("serve failed", exc_info=exc)
            fail(f"cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror or exc}")
