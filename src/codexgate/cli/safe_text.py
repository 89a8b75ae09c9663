"""Data shown in the terminal: never read as rich markup, control characters escaped, long values cut.

A model name, a key name or an upstream field can hold ``[red]``-style markup, terminal escapes
(``\\x1b[2J``) or line breaks. Wrapped in :func:`plain` it is a :class:`rich.text.Text`, which rich
prints as it is, with the control characters shown as escapes (``\\x1b``, ``\\n``) and anything
longer than ``limit`` characters cut with an ellipsis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["CELL_LIMIT", "literal", "plain"]

CELL_LIMIT = 200  # characters of one value: real names are far shorter


def literal(value: object, limit: int = CELL_LIMIT, *, keep_newlines: bool = False) -> str:
    """The characters :func:`plain` shows, as a string (for output written without rich)."""
    from codexgate.observability.logging import escape_controls

    text = "-" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return escape_controls(text, keep_newlines=keep_newlines)


def plain(value: object, limit: int = CELL_LIMIT, *, keep_newlines: bool = False) -> Text:
    """``value`` as literal terminal text (``None`` shows as ``-``); ``keep_newlines`` for messages."""
    from rich.text import Text

    return Text(literal(value, limit, keep_newlines=keep_newlines))
