"""The ``instructions`` sent when a request carries none (the Codex backend requires the field).

Order: the file named by the setting ``instructions_file``; else the prompt captured from the
user's own Codex CLI (``codexgate instructions capture``) for this model, stored as
``$CODEXGATE_HOME/instructions/<model>.md``, or the captured default ``_default.md``; else a short
neutral instruction of our own. OpenAI's prompt text is never part of this repository: it is only
read at run time from where the user's installation put it.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from codexgate.config import Settings

NEUTRAL_INSTRUCTIONS = "You are a helpful assistant. Answer the user's request accurately and concisely."
DEFAULT_CAPTURE = "_default"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

_cache: dict[Path, tuple[float, str]] = {}


@functools.lru_cache(maxsize=256)
def capture_file(instructions_dir: Path, model: str) -> Path:
    """Where the captured prompt of ``model`` lives (a file-system-safe name)."""
    safe = _UNSAFE.sub("_", model).strip(".") or DEFAULT_CAPTURE
    return instructions_dir / f"{safe}.md"


def _read_cached(path: Path) -> str | None:
    """The file's text, re-read only when its mtime changes; None if missing or empty."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1] or None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    _cache[path] = (mtime, text)
    return text or None


def instruction_source(settings: Settings, model: str) -> tuple[str, Path | None]:
    """``(kind, path)``: which source :func:`resolve_instructions` would use for ``model``."""
    configured = settings.upstream.instructions_file
    if configured is not None and _read_cached(configured.expanduser()) is not None:
        return "instructions_file", configured.expanduser()
    for path in (
        capture_file(settings.instructions_dir, model),
        capture_file(settings.instructions_dir, DEFAULT_CAPTURE),
    ):
        if _read_cached(path) is not None:
            return "captured", path
    return "neutral", None


def resolve_instructions(settings: Settings, model: str) -> str:
    _kind, path = instruction_source(settings, model)
    if path is None:
        return NEUTRAL_INSTRUCTIONS
    text = _read_cached(path)
    return text if text is not None else NEUTRAL_INSTRUCTIONS
