"""What the backend's model catalog says about each model, and the rules read from it (pure).

The Codex backend's ``GET {base}/models?client_version=X`` answers ``{"models": [entry, ...]}``
(protocol.md §4). :class:`CatalogEntry` parses one entry tolerantly (missing fields get neutral
defaults, wrong types are ignored, extra fields are ignored). :class:`ModelRules` is built from the
entries — or, when the catalog cannot be had, from :data:`FALLBACK_RULES` — and answers:

* :meth:`ModelRules.resolve`: a requested model name → catalog slug + effort suffix. An exact
  catalog slug always wins (``gpt-5.1-codex-max`` is a model, not ``gpt-5.1-codex`` at ``max``); a
  ``-<level>`` suffix is split off only when the rest is a catalog slug. Without a catalog: today's
  behaviour (the six classic levels are split off any name) plus the levels the fallback table lists
  for the rest's family.
* :func:`check_effort`: a level the model does not list → 400 naming the levels it lists; when the
  catalog does not know the model, the effort is passed on for the backend to judge.
* :func:`is_lite`, :func:`lowest_effort`, :func:`context_window`, :func:`accepts_images`,
  :func:`client_too_old` / :func:`client_too_old_error`, and :meth:`ModelRules.aliases` (the
  ``/v1/models`` ids: each listed slug, then ``slug-level`` for every level it lists).

:data:`FALLBACK_RULES` is the only place model names appear in code. It follows the catalog bundled
with the Codex CLI 0.169.0: the ``gpt-5.6-*``, ``gpt-6-*`` and ``gpt-6.1-*`` families use Responses
Lite and list low … ultra; ``gpt-5.5`` uses the full shape and lists low … xhigh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from codexgate.errors import APIError

__all__ = [
    "CLASSIC_EFFORTS",
    "FALLBACK_RULES",
    "KNOWN_EFFORTS",
    "CatalogEntry",
    "FallbackRule",
    "ModelAlias",
    "ModelRules",
    "Resolved",
    "accepts_images",
    "check_effort",
    "client_too_old",
    "client_too_old_error",
    "context_window",
    "is_lite",
    "lowest_effort",
    "parse_version",
]

#: the levels split off any model name before catalogs listed their own (today's behaviour).
CLASSIC_EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")
#: every level seen in 2026 catalogs, lowest first; a catalog may list others, which work as well.
KNOWN_EFFORTS: tuple[str, ...] = (*CLASSIC_EFFORTS, "max", "ultra")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _levels(value: Any) -> tuple[str, ...]:
    """``[{effort, description}, ...]`` (or plain strings) → the efforts, in order, without repeats."""
    efforts: list[str] = []
    if isinstance(value, list):
        for level in value:
            effort = level.get("effort") if isinstance(level, Mapping) else level
            if isinstance(effort, str) and effort and effort not in efforts:
                efforts.append(effort)
    return tuple(efforts)


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the backend's catalog, with the fields the gateway reads."""

    slug: str
    display_name: str | None = None
    priority: int = 0
    #: ``list`` (shown) or something else (``hide``); ``None`` when the entry does not say
    visibility: str | None = None
    supported_in_api: bool | None = None
    use_responses_lite: bool = False
    #: the efforts the model accepts, in the catalog's order (lowest first in observed catalogs)
    supported_reasoning_levels: tuple[str, ...] = ()
    default_reasoning_level: str | None = None
    context_window: int | None = None
    max_context_window: int | None = None
    #: ``None`` when the entry does not say (then nothing is assumed missing)
    input_modalities: tuple[str, ...] | None = None
    minimal_client_version: str | None = None
    supports_reasoning_summary_parameter: bool | None = None
    support_verbosity: bool | None = None
    default_verbosity: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> CatalogEntry | None:
        """The entry for one element of ``models``; ``None`` when it has no usable ``slug`` (or ``id``)."""
        if not isinstance(raw, Mapping):
            return None
        slug = _str(raw.get("slug")) or _str(raw.get("id"))
        if slug is None:
            return None
        modalities = raw.get("input_modalities")
        priority = raw.get("priority")
        return cls(
            slug=slug,
            display_name=_str(raw.get("display_name")),
            priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
            visibility=_str(raw.get("visibility")),
            supported_in_api=_bool(raw.get("supported_in_api")),
            use_responses_lite=raw.get("use_responses_lite") is True,
            supported_reasoning_levels=_levels(raw.get("supported_reasoning_levels")),
            default_reasoning_level=_str(raw.get("default_reasoning_level")),
            context_window=_positive_int(raw.get("context_window")),
            max_context_window=_positive_int(raw.get("max_context_window")),
            input_modalities=(
                tuple(m for m in modalities if isinstance(m, str)) if isinstance(modalities, list) else None
            ),
            minimal_client_version=_str(raw.get("minimal_client_version")),
            supports_reasoning_summary_parameter=_bool(raw.get("supports_reasoning_summary_parameter")),
            support_verbosity=_bool(raw.get("support_verbosity")),
            default_verbosity=_str(raw.get("default_verbosity")),
        )

    @property
    def listed(self) -> bool:
        """Shown in ``/v1/models`` (``visibility`` absent or ``list``)."""
        return self.visibility in (None, "list")


@dataclass(frozen=True)
class FallbackRule:
    """A model family (names starting with ``prefix``, or equal to ``prefix`` when ``exact``)."""

    prefix: str
    lite: bool
    efforts: tuple[str, ...]
    exact: bool = False

    def matches(self, slug: str) -> bool:
        return slug == self.prefix if self.exact else slug.startswith(self.prefix) and len(slug) > len(self.prefix)


_LOW_TO_ULTRA = ("low", "medium", "high", "xhigh", "max", "ultra")
#: used only when the catalog cannot be had; first match wins. Follows the Codex CLI 0.169.0.
FALLBACK_RULES: tuple[FallbackRule, ...] = (
    FallbackRule("gpt-5.6-", lite=True, efforts=_LOW_TO_ULTRA),
    FallbackRule("gpt-6-", lite=True, efforts=_LOW_TO_ULTRA),
    FallbackRule("gpt-6.1-", lite=True, efforts=_LOW_TO_ULTRA),
    FallbackRule("gpt-5.5", lite=False, efforts=("low", "medium", "high", "xhigh"), exact=True),
)


def _fallback_rule(slug: str) -> FallbackRule | None:
    return next((rule for rule in FALLBACK_RULES if rule.matches(slug)), None)


@dataclass(frozen=True)
class Resolved:
    """A requested model name, resolved: the slug to send, the suffix effort, and the catalog entry."""

    slug: str
    effort: str | None = None
    #: ``None`` when there is no catalog or it does not list ``slug``
    entry: CatalogEntry | None = None


@dataclass(frozen=True)
class ModelAlias:
    """One ``/v1/models`` id: a slug (``effort`` None) or ``slug-effort``."""

    id: str
    slug: str
    effort: str | None = None


class ModelRules:
    """The catalog's rules, or the fallback table's when ``entries`` is empty (``from_catalog`` False)."""

    def __init__(self, entries: Iterable[CatalogEntry] = ()) -> None:
        self._entries: dict[str, CatalogEntry] = {}
        for entry in entries:
            self._entries.setdefault(entry.slug, entry)
        #: True when built from a (non-empty) catalog; False means the fallback table applies
        self.from_catalog = bool(self._entries)
        levels = {level for entry in self._entries.values() for level in entry.supported_reasoning_levels}
        self._suffixes = frozenset(levels | set(KNOWN_EFFORTS))

    @classmethod
    def from_catalog_json(cls, raw_entries: Iterable[Any]) -> ModelRules:
        """Rules from the backend's raw ``models`` list (entries without a slug are skipped)."""
        return cls(entry for entry in map(CatalogEntry.parse, raw_entries) if entry is not None)

    @classmethod
    def fallback(cls) -> ModelRules:
        """Rules when the catalog cannot be had: :data:`FALLBACK_RULES`, efforts passed on."""
        return cls()

    @property
    def entries(self) -> tuple[CatalogEntry, ...]:
        return tuple(self._entries.values())

    def entry(self, slug: str) -> CatalogEntry | None:
        return self._entries.get(slug)

    def resolve(self, name: str) -> Resolved:
        """The slug and suffix effort for a requested model name (see the module doc)."""
        exact = self._entries.get(name)
        if exact is not None:
            return Resolved(name, None, exact)
        base, sep, suffix = name.rpartition("-")
        if not (sep and base and suffix):
            return Resolved(name, None, None)
        if self.from_catalog:
            entry = self._entries.get(base)
            if entry is not None and suffix in self._suffixes:
                return Resolved(base, suffix, entry)
            return Resolved(name, None, None)
        if suffix in CLASSIC_EFFORTS:
            return Resolved(base, suffix, None)
        rule = _fallback_rule(base)
        if rule is not None and suffix in rule.efforts:
            return Resolved(base, suffix, None)
        return Resolved(name, None, None)

    def is_lite(self, name: str) -> bool:
        """Whether the model a requested name resolves to takes the Responses Lite shape."""
        return is_lite(self.resolve(name))

    def aliases(self) -> list[ModelAlias]:
        """The ``/v1/models`` ids for the listed models by priority: each slug, then ``slug-level`` per level.

        An alias that is itself a catalog slug is left out (the model keeps its name). Empty without a catalog.
        """
        out: list[ModelAlias] = []
        seen: set[str] = set()
        for entry in sorted(self._entries.values(), key=lambda e: e.priority):
            if not entry.listed:
                continue
            candidates = [ModelAlias(entry.slug, entry.slug)]
            candidates += [
                ModelAlias(f"{entry.slug}-{level}", entry.slug, level)
                for level in entry.supported_reasoning_levels
                if f"{entry.slug}-{level}" not in self._entries
            ]
            for alias in candidates:
                if alias.id not in seen:
                    seen.add(alias.id)
                    out.append(alias)
        return out


def _entry_of(target: CatalogEntry | Resolved | None) -> CatalogEntry | None:
    return target.entry if isinstance(target, Resolved) else target


def is_lite(target: CatalogEntry | Resolved | str) -> bool:
    """Lite per the catalog entry when there is one, else per :data:`FALLBACK_RULES` for the slug."""
    if isinstance(target, CatalogEntry):
        return target.use_responses_lite
    if isinstance(target, Resolved):
        if target.entry is not None:
            return target.entry.use_responses_lite
        target = target.slug
    rule = _fallback_rule(target)
    return rule is not None and rule.lite


def check_effort(
    target: CatalogEntry | Resolved | None, effort: str | None, *, param: str = "reasoning_effort"
) -> None:
    """Raise a 400 naming the listed levels when the model's entry does not list ``effort``.

    Nothing is checked when ``effort`` is None, the entry is unknown (no catalog, or a model it does
    not list) or the entry lists no levels: the backend judges those.
    """
    entry = _entry_of(target)
    if effort is None or entry is None or not entry.supported_reasoning_levels:
        return
    if effort in entry.supported_reasoning_levels:
        return
    raise APIError(
        400,
        f"The model '{entry.slug}' does not support reasoning effort '{effort}'. "
        f"Supported levels: {', '.join(entry.supported_reasoning_levels)}.",
        type="invalid_request_error",
        param=param,
        code="unsupported_value",
    )


def lowest_effort(target: CatalogEntry | Resolved | None) -> str | None:
    """The lowest level the model lists (catalogs list them lowest first); None when unknown."""
    entry = _entry_of(target)
    if entry is None or not entry.supported_reasoning_levels:
        return None
    return entry.supported_reasoning_levels[0]


def context_window(target: CatalogEntry | Resolved | None) -> int | None:
    """The model's context window in tokens (``context_window``, else ``max_context_window``)."""
    entry = _entry_of(target)
    if entry is None:
        return None
    return entry.context_window or entry.max_context_window


def accepts_images(target: CatalogEntry | Resolved | None) -> bool:
    """False only when the entry lists its input modalities and ``image`` is not among them."""
    entry = _entry_of(target)
    return entry is None or entry.input_modalities is None or "image" in entry.input_modalities


_VERSION = re.compile(r"\s*v?(\d+(?:\.\d+)*)")


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"0.169.0"`` → ``(0, 169, 0)``; pre-release/build tails are ignored; None when not a version."""
    match = _VERSION.match(text)
    if match is None:
        return None
    parts = [int(part) for part in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def client_too_old(target: CatalogEntry | Resolved | None, client_version: str) -> bool:
    """Whether ``client_version`` is below the entry's ``minimal_client_version`` (unparseable: False)."""
    entry = _entry_of(target)
    if entry is None or entry.minimal_client_version is None:
        return False
    needed = parse_version(entry.minimal_client_version)
    ours = parse_version(client_version)
    return needed is not None and ours is not None and ours < needed


def client_too_old_error(entry: CatalogEntry, client_version: str) -> APIError:
    """The 400 for a model that needs a newer Codex client than the one the gateway presents."""
    return APIError(
        400,
        f"The model '{entry.slug}' requires a newer Codex client (at least {entry.minimal_client_version}); "
        f"the gateway presents client version {client_version}. Raise the setting `client_version`.",
        type="invalid_request_error",
        param="model",
        code="client_version_too_old",
    )
