"""The simulator's ``GET /models`` list, shaped like the Codex backend's entries (protocol.md §4, §6).

Besides the full-shape models it lists Responses Lite models (``use_responses_lite: true``):
``gpt-5.6-sol`` (efforts low … max) and the Lite-only ``gpt-5.6-luna`` (the simulator's own flag
``lite_only``: a full-shape request for it answers 404 as the backend is reported to), and a hidden
model gated by ``minimal_client_version`` above any client (:data:`GATED_MODEL`).
"""

from __future__ import annotations

from typing import Any

#: a hidden model whose ``minimal_client_version`` is above every client's version
GATED_MODEL = "gpt-5.6-preview"
LITE_MODEL = "gpt-5.6-sol"
LITE_ONLY_MODEL = "gpt-5.6-luna"

_LEVEL_TEXT = {
    "none": "No reasoning",
    "minimal": "Fastest responses with little reasoning",
    "low": "Fast responses with lighter reasoning",
    "medium": "Balances speed and reasoning depth for everyday tasks",
    "high": "Greater reasoning depth for complex or ambiguous problems",
    "xhigh": "Extra high reasoning depth for the hardest problems",
    "max": "Maximum reasoning depth",
    "ultra": "Beyond maximum reasoning depth",
}


def _levels(*efforts: str) -> list[dict[str, str]]:
    return [{"effort": effort, "description": _LEVEL_TEXT[effort]} for effort in efforts]


def _entry(
    slug: str,
    display_name: str,
    description: str,
    *,
    priority: int,
    efforts: tuple[str, ...],
    default_effort: str = "medium",
    visibility: str = "list",
    context_window: int = 272_000,
    verbosity: bool = False,
    lite: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entry = {
        "slug": slug,
        "display_name": display_name,
        "description": description,
        "priority": priority,
        "visibility": visibility,
        "supported_in_api": True,
        "supported_reasoning_levels": _levels(*efforts),
        "default_reasoning_level": default_effort,
        "context_window": context_window,
        "max_context_window": context_window,
        "input_modalities": ["text", "image"],
        "service_tiers": [],
        "support_verbosity": verbosity,
        "default_verbosity": "low" if verbosity else None,
        "supports_reasoning_summary_parameter": True,
        "default_reasoning_summary": "auto",
        "shell_type": "shell_command",
        "apply_patch_tool_type": "freeform",
        "truncation_policy": {"mode": "tokens", "limit": 10_000},
        "supports_parallel_tool_calls": True,
        "experimental_supported_tools": [],
    }
    if lite:
        entry["use_responses_lite"] = True
        entry["supports_parallel_tool_calls"] = False
        entry["supports_reasoning_summary_parameter"] = False
    entry.update(extra or {})
    return entry


def default_models() -> list[dict[str, Any]]:
    """A fresh copy of the default model list (tests may change theirs freely)."""
    return [
        _entry(
            "gpt-5.1-codex-max",
            "gpt-5.1-codex-max",
            "Codex-optimized flagship for deep and fast reasoning.",
            priority=0,
            efforts=("low", "medium", "high", "xhigh"),
        ),
        _entry(
            "gpt-5.1-codex",
            "gpt-5.1-codex",
            "Optimized for codex.",
            priority=1,
            efforts=("low", "medium", "high"),
        ),
        _entry(
            "gpt-5.1-codex-mini",
            "gpt-5.1-codex-mini",
            "Optimized for codex. Cheaper, faster, but less capable.",
            priority=2,
            efforts=("medium", "high"),
        ),
        _entry(
            "gpt-5-codex",
            "gpt-5-codex",
            "Optimized for coding tasks with many tools.",
            priority=3,
            efforts=("low", "medium", "high"),
        ),
        _entry(
            "gpt-5",
            "gpt-5",
            "Broad world knowledge with strong general reasoning.",
            priority=4,
            efforts=("minimal", "low", "medium", "high"),
            verbosity=True,
            context_window=400_000,
        ),
        _entry(
            LITE_MODEL,
            LITE_MODEL,
            "Responses Lite model.",
            priority=5,
            efforts=("low", "medium", "high", "xhigh", "max"),
            lite=True,
            verbosity=True,
        ),
        _entry(
            LITE_ONLY_MODEL,
            LITE_ONLY_MODEL,
            "Responses Lite only model.",
            priority=6,
            efforts=("low", "medium", "high", "max", "ultra"),
            lite=True,
            verbosity=True,
            extra={"lite_only": True},
        ),
        _entry(
            GATED_MODEL,
            GATED_MODEL,
            "A model for newer clients (hidden).",
            priority=8,
            efforts=("medium",),
            visibility="hide",
            extra={"minimal_client_version": "99.0.0"},
        ),
        _entry(
            "codex-auto-review",
            "codex-auto-review",
            "Internal review model (hidden).",
            priority=9,
            efforts=("medium",),
            visibility="hide",
        ),
    ]
