"""What every command shares: loading the settings from the global options, and clean exits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from codexgate.cli.safe_text import plain
from codexgate.config import LoadedSettings, Settings, SettingsError, load_settings

#: human output goes to stderr so that ``--json`` output on stdout stays a clean document.
err_console = Console(stderr=True, highlight=False)
console = Console(highlight=False)


@dataclass
class GlobalOptions:
    config: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)


def fail(message: str, code: int = 1) -> NoReturn:
    # The message often holds data (a path, a name, an upstream text): literal, never markup.
    text = plain(message, limit=4000, keep_newlines=True)
    err_console.print(Text("error:", style="red") + " " + text, soft_wrap=True)
    raise typer.Exit(code)


def load(ctx: typer.Context, extra_flags: dict[str, Any] | None = None) -> LoadedSettings:
    """Settings for this command: global ``--config``/``--home`` plus command flags. Exit 2 if bad."""
    options = ctx.find_object(GlobalOptions) or GlobalOptions()
    try:
        return load_settings(config_file=options.config, flags={**options.flags, **(extra_flags or {})})
    except SettingsError as exc:
        err_console.print(f"codexgate: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def settings(ctx: typer.Context, extra_flags: dict[str, Any] | None = None) -> Settings:
    return load(ctx, extra_flags).settings
