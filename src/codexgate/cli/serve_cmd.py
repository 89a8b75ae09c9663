"""``codexgate serve``: run the gateway. Every setting is also a flag: ``--x-y`` for ``x_y``.

The typer command: its help, built when shown; what it does is :func:`codexgate.cli.serve_start.start_server`
(the entry point calls that directly for a plain ``serve`` command line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand

from codexgate.cli.common import GlobalOptions

if TYPE_CHECKING:
    from codexgate.config import SettingInfo


def setting_help_line(info: SettingInfo) -> str:
    """``--port INT (default 8000): meaning``; a boolean as the flag pair it is (``--x / --no-x``)."""
    from codexgate.config import flag_name

    flag = flag_name(info.name)
    if info.type == "bool":
        usage = f"{flag} / --no-{flag[2:]}"
        default = "on" if info.default else "off"
    else:
        kind = info.type.removeprefix("one of ")
        usage = f"{flag} {'{' + kind + '}' if kind != info.type else kind.upper()}"
        default = "unset" if info.default is None else repr(info.default) if info.default == "" else str(info.default)
    return f"{usage} (default {default}): {info.meaning}"


#: the first paragraph of ``serve --help``: all that the command list of ``codexgate --help`` shows.
SERVE_SHORT_HELP = (
    "Run the gateway. Every setting is also a flag (and a CODEXGATE_* variable, and a key of the config "
    "file); `codexgate config show` prints their values and sources. Exit codes: 0 stopped cleanly, "
    "1 runtime failure (e.g. the port is in use), 2 usage or configuration error."
)


def serve_help() -> str:
    """The full help: the head and one line per setting (read off the settings model)."""
    from codexgate.config import describe_settings

    return SERVE_SHORT_HELP + "\n\nSettings:\n\n" + "\n\n".join(setting_help_line(i) for i in describe_settings())


class ServeCommand(TyperCommand):
    """Builds its help text only when it is shown: no other command loads the settings model to start.

    The help is plain text (click's formatter): one paragraph per setting reads the same without rich's
    layout, which for this page loaded rich's Markdown and traceback modules (~90 ms of the command).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None

    @property
    def help(self) -> str:
        return serve_help()

    @help.setter
    def help(self, value: str | None) -> None:
        pass


def register(app: typer.Typer) -> None:
    @app.command(
        "serve",
        cls=ServeCommand,
        short_help=SERVE_SHORT_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def serve(ctx: typer.Context) -> None:
        from codexgate.cli.serve_start import start_server

        code = start_server(ctx.find_object(GlobalOptions) or GlobalOptions(), list(ctx.args))
        if code:
            raise typer.Exit(code)
