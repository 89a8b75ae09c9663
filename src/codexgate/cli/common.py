"""What every command shares: loading the settings from the global options, and clean exits."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from codexgate.cli.safe_text import literal, plain

if TYPE_CHECKING:
    import typer
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from codexgate.config import LoadedSettings, Settings

# rich's console and the settings stack (pydantic) are imported when a command first uses them, so that
# ``--version``, ``--help`` and the commands that print nothing start without them; typer when a command
# exits through it (``serve`` starts without typer: codexgate.cli.main).


#: what rich's ``Text`` drops from a string (``rich.control.strip_control_codes``): BEL, BS, VT, FF, CR
_RICH_STRIPPED = dict.fromkeys((7, 8, 11, 12, 13))


class _DeferredConsole:
    """A rich ``Console`` made on first use, with the options given here; every attribute is the console's.

    A line of plain text (``print`` of strings with ``soft_wrap=True``, no markup in them, on a console
    without highlighting or emoji codes) is written without rich: rich would write the same characters
    (no style, no wrapping), and a command that prints only such lines starts without rich's console."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def print(self, *objects: Any, **options: Any) -> None:
        if self._console is None and self._writes_as_is(objects, options):
            stream = sys.stderr if self._options.get("stderr") else sys.stdout
            stream.write(" ".join(objects).translate(_RICH_STRIPPED) + "\n")
            stream.flush()
            return
        self._made().print(*objects, **options)

    def _writes_as_is(self, objects: tuple[Any, ...], options: dict[str, Any]) -> bool:
        """True when rich would print ``objects`` unchanged: strings only, no markup read, no wrapping,
        no highlighting or emoji codes."""
        if self._options.get("highlight", True) or self._options.get("emoji", True):
            return False
        if not objects or not all(type(item) is str and "\t" not in item for item in objects):
            return False  # (rich expands tabs)
        if options.get("soft_wrap") is not True or options.get("highlight", False):
            return False
        if set(options) - {"soft_wrap", "markup", "highlight"}:
            return False
        return options.get("markup") is False or not any("[" in item for item in objects)


#: human output goes to stderr so that ``--json`` output on stdout stays a clean document. No ``:emoji:``
#: codes: the text printed is often data (a path, a name), shown as it is.
err_console = cast("Console", _DeferredConsole(stderr=True, highlight=False, emoji=False))
console = cast("Console", _DeferredConsole(highlight=False, emoji=False))


@dataclass
class GlobalOptions:
    config: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)


#: options of the ``codexgate`` group that are also accepted after the subcommand (they take a value).
GLOBAL_VALUE_OPTIONS = ("--config", "--home")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--config X`` / ``--home X`` (and ``--opt=X``) found after the subcommand to the front, so
    ``codexgate keys list --home DIR`` means ``codexgate --home DIR keys list``. Nothing after ``--``
    is touched; an option missing its value is left where it is (click then reports it)."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest.extend(argv[index:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE_OPTIONS:
            if "=" in arg:
                hoisted.append(arg)
            elif index + 1 < len(argv):
                hoisted.extend((arg, argv[index + 1]))
                index += 1
            else:
                rest.append(arg)
        else:
            rest.append(arg)
        index += 1
    return hoisted + rest


def print_table(table: Table, target: Console | None = None) -> None:
    """Print ``table`` without cutting a cell: cells wrap between words and never end in an ellipsis; when
    the words do not fit the terminal the table is printed wider (the terminal wraps its lines)."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.measure import Measurement

    out = target or console
    words: set[str] = set()
    for column in table.columns:
        if column.overflow == "ellipsis":
            column.overflow = "fold"
        cell_words = [word for cell in [column.header, *column.cells] for word in str(cell).split()]
        words.update(cell_words)
        column.min_width = max(column.min_width or 0, *(cell_len(word) for word in cell_words), 0)
    ranges = _column_ranges(table, out)
    if ranges is not None and table.width is None:  # the table's measure, from one measurement of its columns
        extra = table._extra_width
        measured = Measurement(
            sum(column.minimum for column in ranges) + extra, sum(column.maximum for column in ranges) + extra
        ).clamp(table.min_width)
    else:
        measured = Measurement.get(out, out.options.update_width(100_000), table)
    widest = measured.maximum

    def whole_at(width: int) -> bool:
        probe = Console(
            width=width, highlight=False, emoji=False, no_color=True, color_system=None, record=True, file=io.StringIO()
        )
        probe.print(table, crop=False)
        return _is_whole(probe.export_text(), width, words)

    # the narrowest width from the terminal's up at which every word of every cell is whole; below the
    # table's minimum (each column as wide as its longest word) a word is cut: no need to try. rich's own
    # column arithmetic gives the answer without rendering; one render confirms it, else it is bisected.
    low, high = max(out.width, min(measured.minimum, widest)), max(out.width, widest)
    guess = _narrowest_whole_width(table, out, low, high, ranges)
    if guess is not None:
        # the one render that confirms the width is also the output (rendered as the console would)
        final = Console(highlight=False, emoji=False, width=guess, stderr=out.stderr, no_color=out.no_color)
        buffer = io.StringIO()
        probe = Console(
            file=buffer,
            width=guess,
            highlight=False,
            emoji=False,
            no_color=out.no_color,
            force_terminal=final.is_terminal,
            color_system=cast("Any", final.color_system),  # the name of the one rich detected, or None
            legacy_windows=final.legacy_windows,
            record=True,
        )
        probe.print(table, crop=False)
        if _is_whole(probe.export_text(), guess, words):
            final.file.write(buffer.getvalue())
            final.file.flush()
            return
    if not whole_at(low):
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if whole_at(middle) else (middle, high)
        low = high
    width = low
    Console(highlight=False, emoji=False, width=max(out.width, width), stderr=out.stderr, no_color=out.no_color).print(
        table
    )


def _is_whole(rendered: str, width: int, words: set[str]) -> bool:
    """The rendered table fits ``width`` and shows every word of its cells uncut."""
    from rich.cells import cell_len

    fits = max((cell_len(line) for line in rendered.splitlines()), default=0) <= width
    return fits and all(word in rendered for word in words)


def _column_ranges(table: Table, out: Console) -> list[Measurement] | None:
    """Each column's measure (rich's own ``Table._measure_column``), or None if rich's internals differ."""
    try:
        options = out.options.update_width(100_000)
        return [table._measure_column(out, options, column) for column in table.columns]
    except (AttributeError, TypeError):
        return None


def _narrowest_whole_width(
    table: Table, out: Console, low: int, high: int, ranges: list[Measurement] | None = None
) -> int | None:
    """The narrowest width in ``low..high`` at which rich's column arithmetic (``Table``'s collapse of the
    widest wrapping columns, then an even cut) leaves every column at least as wide as its longest word,
    computed from one measurement of the columns (``ranges``, measured here if not given); ``None`` if
    rich's internals are not as expected."""
    try:
        from rich._ratio import ratio_reduce

        if ranges is None:
            ranges = _column_ranges(table, out)
        extra = table._extra_width
        collapse = table._collapse_widths
    except (AttributeError, ImportError, TypeError):
        return None
    if ranges is None:
        return None
    maxima = [measured.maximum or 1 for measured in ranges]
    minima = [measured.minimum for measured in ranges]
    wrapable = [column.width is None and not column.no_wrap for column in table.columns]
    for width in range(low, high + 1):
        room = width - extra
        widths = maxima
        if sum(widths) > room:
            widths = collapse(widths, wrapable, room)
            if sum(widths) > room:
                widths = ratio_reduce(sum(widths) - room, [1] * len(widths), widths, widths)
        if all(have >= need for have, need in zip(widths, minima, strict=True)):
            return width
    return None


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr (``error:`` in red on a terminal). The message often holds data (a
    path, a name, an upstream text): literal, never markup."""
    if not _stderr_may_colour():  # rich would write no colour: the same line without it
        err_console.print("error: " + literal(message, limit=4000, keep_newlines=True), markup=False, soft_wrap=True)
        return
    from rich.text import Text

    text = plain(message, limit=4000, keep_newlines=True)
    err_console.print(Text("error:", style="red") + " " + text, soft_wrap=True)


def _stderr_may_colour() -> bool:
    """False when rich's console on stderr certainly writes no colour: stderr is no terminal and neither
    ``FORCE_COLOR`` nor ``TTY_COMPATIBLE`` says to treat it as one (rich's own rules)."""
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream: let rich decide
        return True


def fail(message: str, code: int = 1) -> NoReturn:
    import typer

    print_error(message)
    raise typer.Exit(code)


def load(ctx: typer.Context, extra_flags: dict[str, Any] | None = None) -> LoadedSettings:
    """Settings for this command: global ``--config``/``--home`` plus command flags. Exit 2 if bad."""
    import typer

    from codexgate.config import SettingsError, load_settings

    options = ctx.find_object(GlobalOptions) or GlobalOptions()
    try:
        return load_settings(config_file=options.config, flags={**options.flags, **(extra_flags or {})})
    except SettingsError as exc:
        err_console.print(f"codexgate: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def settings(ctx: typer.Context, extra_flags: dict[str, Any] | None = None) -> Settings:
    return load(ctx, extra_flags).settings
