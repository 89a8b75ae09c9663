"""``codexgate serve`` without typer: what the command does, and the plain command lines that skip typer.

:func:`start_server` is the command itself (the typer command calls it too); :func:`direct_serve_arguments`
recognises the command lines the entry point may hand to it directly (``[--config X] [--home X] serve
[--x-y VALUE ...]``): anything else (``--help``, an unknown global option, ``--``) goes through typer,
which prints help and usage errors. Typer and the definitions of the other commands cost the server's
start-up ~30 ms, and ``serve`` parses its setting flags itself anyway.
"""

from __future__ import annotations

import logging
from pathlib import Path

from codexgate.cli.common import GLOBAL_VALUE_OPTIONS, GlobalOptions, err_console, print_error

__all__ = ["direct_serve_arguments", "start_server"]

#: arguments after ``serve`` that only typer answers
TYPER_ONLY = frozenset({"--help", "-h", "--"})


def direct_serve_arguments(args: list[str]) -> tuple[GlobalOptions, list[str]] | None:
    """``(global options, setting flags)`` of a plain ``serve`` command line (global options first, as
    :func:`~codexgate.cli.common.hoist_global_options` leaves them), or None if typer must handle it."""
    options = GlobalOptions()
    index = 0
    while index < len(args) and args[index] != "serve":
        name, has_value, value = args[index].partition("=")
        if not has_value:
            value = args[index + 1] if index + 1 < len(args) else ""
            index += 1
        if name not in GLOBAL_VALUE_OPTIONS or not value:
            return None
        if name == "--config":
            options.config = Path(value)
        else:
            options.flags["home"] = str(Path(value))
        index += 1
    rest = args[index + 1 :]
    if index == len(args) or TYPER_ONLY & set(rest):
        return None
    return options, rest


def start_server(options: GlobalOptions, setting_args: list[str]) -> int:
    """Load the settings (global options, then ``--x-y`` flags) and serve until stopped. The exit code:
    0 stopped cleanly, 1 runtime failure (e.g. the port is in use), 2 usage or configuration error."""
    from codexgate.config import SettingsError, load_settings, parse_flag_args

    try:
        flags = parse_flag_args(setting_args)
        settings = load_settings(config_file=options.config, flags={**options.flags, **flags}).settings
    except SettingsError as exc:
        err_console.print(f"codexgate: {exc}", markup=False, soft_wrap=True)
        return 2

    if settings.state.state_url:  # the shared state's modules (redis, cryptography) only when it is used
        from codexgate.state.cluster import cluster_settings_problem

        problem = cluster_settings_problem(settings)
        if problem is not None:
            print_error(problem)
            return 2

    from codexgate.server.runner import BindRefused, PortInUse, run_server

    try:
        run_server(settings)
    except BindRefused as exc:
        print_error(str(exc))
        return 2
    except PortInUse as exc:
        print_error(str(exc))
        return 1
    except OSError as exc:
        logging.getLogger("codexgate").debug("serve failed", exc_info=exc)
        print_error(f"cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror or exc}")
        return 1
    return 0
