"""The simulator's ``GET /models`` list, shaped like the Codex backend's entries (protocol.md §4)."""

from __future__ import annotations

from typing import Any

_LEVEL_TEXT = {
    "minimal": "Fastest responses with little reasoning",
    "low": "Fast responses with lighter reasoning",
    "medium": "Balances speed and reasoning depth for everyday tasks",
    "high": "Greater reasoning depth for complex or ambiguous problems",
    "xhigh": "Extra high reasoning depth for the hardest problems",
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
) -> dict[str, Any]:
    return {
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
            "codex-auto-review",
            "codex-auto-review",
            "Internal review model (hidden).",
            priority=9,
            efforts=("medium",),
            visibility="hide",
        ),
    ]
