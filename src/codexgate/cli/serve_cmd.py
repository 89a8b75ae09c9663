"""``codexgate serve``: run the gateway. Every setting is also a flag: ``--x-y`` for ``x_y``."""

from __future__ import annotations

import logging

import typer

from codexgate.cli.common import err_console, fail, load
from codexgate.config import SettingInfo, SettingsError, describe_settings, flag_name, parse_flag_args


def setting_help_line(info: SettingInfo) -> str:
    """``--port INT (default 8000): meaning``; a boolean as the flag pair it is (``--x / --no-x``)."""
    flag = flag_name(info.name)
    if info.type == "bool":
        usage = f"{flag} / --no-{flag[2:]}"
        default = "on" if info.default else "off"
    else:
        kind = info.type.removeprefix("one of ")
        usage = f"{flag} {'{' + kind + '}' if kind != info.type else kind.upper()}"
        default = "unset" if info.default is None else repr(info.default) if info.default == "" else str(info.default)
    return f"{usage} (default {default}): {info.meaning}"


SERVE_HELP = (
    "Run the gateway. Every setting is also a flag (and a CODEXGATE_* variable, and a key of the config "
    "file); `codexgate config show` prints their values and sources. Exit codes: 0 stopped cleanly, "
    "1 runtime failure (e.g. the port is in use), 2 usage or configuration error.\n\nSettings:\n\n"
    + "\n\n".join(setting_help_line(info) for info in describe_settings())
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
