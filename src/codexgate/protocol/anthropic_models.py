"""``claude-*`` model names → a Codex model and effort; Anthropic's model list shape (pure).

The setting ``anthropic_models`` is an ordered table of glob patterns (``fnmatch``, case-insensitive)
→ a target ``model`` or ``model-effort`` (``gpt-5-high``). The first matching pattern wins. When no
pattern of the table matches, the built-in defaults apply; they name no fixed slug:

* ``claude-*opus*`` → the catalog's highest-priority model at ``high``;
* ``claude-*sonnet*`` → the same model at ``medium``;
* ``claude-*haiku*`` → the same model at ``low``;
* any other ``claude-*`` name → the catalog's default model, with no effort (the request decides).

A name that is not ``claude-*`` and matches no pattern is a Codex model name sent directly: an effort
suffix is split off it as on the chat path (``gpt-5-high`` → ``gpt-5`` at ``high``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from codexgate.protocol.chat_to_responses import split_model_effort

__all__ = [
    "DEFAULT_FAMILY_EFFORTS",
    "ModelTarget",
    "anthropic_model_list",
    "display_name_for",
    "resolve_model",
]

#: (glob, effort) for the built-in defaults, tried after the configured table.
DEFAULT_FAMILY_EFFORTS: tuple[tuple[str, str], ...] = (
    ("claude-*opus*", "high"),
    ("claude-*sonnet*", "medium"),
    ("claude-*haiku*", "low"),
)


@dataclass(frozen=True)
class ModelTarget:
    """Where a requested model name goes: the Codex model, the effort (or None), and which rule chose it."""

    model: str
    effort: str | None
    rule: str  # the matching pattern, "default:<glob>", "default" or "direct"


def _table_items(table: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(table, Mapping):
        return [(str(pattern), str(target)) for pattern, target in table.items()]
    return [(str(pattern), str(target)) for pattern, target in table]


def _split_target(target: str, slugs: Sequence[str]) -> tuple[str, str | None]:
    """``model`` or ``model-effort``; a slug that is itself in the catalog is never split."""
    if target in slugs:
        return target, None
    return split_model_effort(target)


def resolve_model(
    name: str,
    table: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    default_slug: str,
    slugs: Sequence[str],
) -> ModelTarget:
    """The Codex model and effort for ``name``.

    ``table``: the configured patterns in order; ``default_slug``: the catalog's default model;
    ``slugs``: the catalog's listed models, highest priority first (empty when the catalog is unknown:
    then ``default_slug`` stands in for the highest-priority model too).
    """
    lowered = name.lower()
    for pattern, target in _table_items(table):
        if fnmatchcase(lowered, pattern.lower()):
            model, effort = _split_target(target, slugs)
            return ModelTarget(model, effort, pattern)
    if lowered.startswith("claude-"):
        top = slugs[0] if slugs else default_slug
        for pattern, effort in DEFAULT_FAMILY_EFFORTS:
            if fnmatchcase(lowered, pattern):
                return ModelTarget(top, effort, f"default:{pattern}")
        return ModelTarget(default_slug, None, "default")
    model, effort = _split_target(name, slugs)
    return ModelTarget(model, effort, "direct")


def display_name_for(model_id: str) -> str:
    """``claude-opus-4-1`` → ``Claude Opus 4.1``; ``gpt-5.1-codex`` → ``GPT 5.1 Codex``."""
    words = model_id.replace("_", "-").split("-")
    out: list[str] = []
    for word in words:
        if not word:
            continue
        if word.isdigit() and out and out[-1][-1:].isdigit():
            out[-1] = f"{out[-1]}.{word}"
        elif word.lower() == "gpt":
            out.append("GPT")
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out) or model_id


def anthropic_model_list(names: Sequence[str], created_at: str) -> dict[str, Any]:
    """Anthropic's ``GET /v1/models`` answer for ``names`` (duplicates dropped, order kept).

    ``created_at`` is an RFC 3339 time string (Anthropic's shape), passed in: the core has no clock.
    """
    seen: set[str] = set()
    data: list[dict[str, Any]] = []
    for name in names:
        if name in seen or not name:
            continue
        seen.add(name)
        data.append({"type": "model", "id": name, "display_name": display_name_for(name), "created_at": created_at})
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
