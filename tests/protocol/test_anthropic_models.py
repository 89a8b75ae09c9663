"""claude-* → Codex model mapping and Anthropic's model list shape."""

from __future__ import annotations

import pytest

from codexgate.protocol.anthropic_models import ModelTarget, anthropic_model_list, display_name_for, resolve_model

SLUGS = ["gpt-top", "gpt-second", "gpt-5-mini"]


@pytest.mark.parametrize(
    ("name", "model", "effort"),
    [
        ("claude-opus-5-5", "gpt-top", "high"),
        ("claude-opus-4-1-20250805", "gpt-top", "high"),
        ("claude-sonnet-4-5", "gpt-top", "medium"),
        ("claude-3-5-sonnet-latest", "gpt-top", "medium"),
        ("claude-haiku-4-5", "gpt-top", "low"),
        ("Claude-Haiku-4-5", "gpt-top", "low"),
        ("claude-instant-1", "gpt-default", None),
        ("gpt-second", "gpt-second", None),
        ("gpt-second-xhigh", "gpt-second", "xhigh"),
        ("gpt-5-mini", "gpt-5-mini", None),
    ],
)
def test_defaults(name: str, model: str, effort: str | None) -> None:
    target = resolve_model(name, [], default_slug="gpt-default", slugs=SLUGS)
    assert (target.model, target.effort) == (model, effort)


def test_table_is_ordered_and_wins_over_defaults() -> None:
    table = [("claude-opus-4*", "gpt-second-low"), ("claude-opus*", "gpt-5-mini"), ("claude-*", "gpt-top-minimal")]
    assert resolve_model("claude-opus-4-1", table, default_slug="d", slugs=SLUGS) == ModelTarget(
        "gpt-second", "low", "claude-opus-4*"
    )
    assert resolve_model("claude-opus-5", table, default_slug="d", slugs=SLUGS) == ModelTarget(
        "gpt-5-mini", None, "claude-opus*"
    )
    assert resolve_model("claude-haiku", table, default_slug="d", slugs=SLUGS).effort == "minimal"
    assert resolve_model("claude-haiku", {"claude-haiku*": "gpt-x-high"}, default_slug="d", slugs=SLUGS) == ModelTarget(
        "gpt-x", "high", "claude-haiku*"
    )


def test_unknown_catalog_uses_the_default_slug() -> None:
    assert resolve_model("claude-opus-5-5", [], default_slug="gpt-d", slugs=[]) == ModelTarget(
        "gpt-d", "high", "default:claude-*opus*"
    )


def test_model_list_shape() -> None:
    answer = anthropic_model_list(["gpt-top", "claude-opus-5-5", "gpt-top", ""], "2026-01-01T00:00:00Z")
    assert answer == {
        "data": [
            {"type": "model", "id": "gpt-top", "display_name": "GPT Top", "created_at": "2026-01-01T00:00:00Z"},
            {
                "type": "model",
                "id": "claude-opus-5-5",
                "display_name": "Claude Opus 5.5",
                "created_at": "2026-01-01T00:00:00Z",
            },
        ],
        "has_more": False,
        "first_id": "gpt-top",
        "last_id": "claude-opus-5-5",
    }
    assert anthropic_model_list([], "t") == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_display_names() -> None:
    assert display_name_for("claude-sonnet-4-5") == "Claude Sonnet 4.5"
    assert display_name_for("gpt-5.1-codex-max") == "GPT 5.1 Codex Max"
