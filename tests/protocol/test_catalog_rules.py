"""The model catalog's rules: parsing, resolve(), efforts, the fallback table, the client gate, aliases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgate.errors import APIError
from codexgate.protocol.catalog_rules import (
    CLASSIC_EFFORTS,
    FALLBACK_RULES,
    KNOWN_EFFORTS,
    CatalogEntry,
    ModelAlias,
    ModelRules,
    Resolved,
    accepts_images,
    check_effort,
    client_too_old,
    client_too_old_error,
    context_window,
    is_lite,
    lowest_effort,
    parse_version,
)
from codexgate.testing.models_catalog import default_models


def raw_entry(slug: str, efforts: tuple[str, ...], **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "slug": slug,
        "display_name": slug,
        "visibility": "list",
        "supported_in_api": True,
        "supported_reasoning_levels": [{"effort": e, "description": f"level {e}"} for e in efforts],
        "default_reasoning_level": efforts[0] if efforts else None,
        "context_window": 272_000,
        "max_context_window": 872_000,
        "input_modalities": ["text", "image"],
        "some_future_field": {"nested": [1, 2]},
    }
    entry.update(fields)
    return entry


def catalog() -> list[dict[str, Any]]:
    return [
        raw_entry(
            "gpt-5.6-sol",
            ("low", "medium", "high", "xhigh", "max", "ultra"),
            use_responses_lite=True,
            minimal_client_version="0.144.0",
            priority=2,
        ),
        raw_entry("gpt-5.6-luna", ("low", "medium", "high", "xhigh", "max"), use_responses_lite=True, priority=3),
        raw_entry("gpt-5.5", ("low", "medium", "high", "xhigh"), priority=1),
        raw_entry("gpt-5.1-codex", ("low", "medium", "high"), priority=4),
        raw_entry("gpt-5.1-codex-max", ("low", "medium", "high", "xhigh"), priority=0),
        raw_entry("text-only", ("medium",), input_modalities=["text"], priority=5),
        raw_entry("hidden-review", ("medium",), visibility="hide", priority=6),
    ]


@pytest.fixture
def rules() -> ModelRules:
    return ModelRules.from_catalog_json(catalog())


# --- parsing ---------------------------------------------------------------------------------


def test_entry_parses_the_fields_and_ignores_extra_ones() -> None:
    entry = CatalogEntry.parse(catalog()[0])
    assert entry is not None
    assert entry.slug == "gpt-5.6-sol"
    assert entry.use_responses_lite is True
    assert entry.supported_reasoning_levels == ("low", "medium", "high", "xhigh", "max", "ultra")
    assert entry.default_reasoning_level == "low"
    assert (entry.context_window, entry.max_context_window) == (272_000, 872_000)
    assert entry.input_modalities == ("text", "image")
    assert entry.minimal_client_version == "0.144.0"
    assert entry.priority == 2
    assert entry.listed


def test_entry_tolerates_missing_and_wrong_fields() -> None:
    entry = CatalogEntry.parse(
        {
            "id": "bare",
            "priority": "high",
            "use_responses_lite": "yes",
            "supported_reasoning_levels": ["low", {"effort": "high"}, {"nope": 1}, 7, "low"],
            "context_window": -5,
            "input_modalities": "text",
            "support_verbosity": "true",
        }
    )
    assert entry is not None
    assert entry.slug == "bare"
    assert entry.priority == 0
    assert entry.use_responses_lite is False
    assert entry.supported_reasoning_levels == ("low", "high")
    assert entry.context_window is None
    assert entry.input_modalities is None
    assert entry.support_verbosity is None
    assert CatalogEntry.parse({"display_name": "no slug"}) is None
    assert CatalogEntry.parse("gpt-5") is None


def test_rules_from_the_simulators_catalog() -> None:
    rules = ModelRules.from_catalog_json([*default_models(), None, {"slug": ""}])
    assert rules.from_catalog
    assert {entry.slug for entry in rules.entries} >= {"gpt-5", "gpt-5.1-codex-max", "codex-auto-review"}
    assert rules.resolve("gpt-5-minimal") == Resolved("gpt-5", "minimal", rules.entry("gpt-5"))


# --- resolve ---------------------------------------------------------------------------------


def test_exact_slug_beats_suffix(rules: ModelRules) -> None:
    resolved = rules.resolve("gpt-5.1-codex-max")
    assert resolved.slug == "gpt-5.1-codex-max"
    assert resolved.effort is None
    assert resolved.entry is rules.entry("gpt-5.1-codex-max")


def test_every_listed_level_works_as_a_suffix(rules: ModelRules) -> None:
    sol = rules.entry("gpt-5.6-sol")
    assert sol is not None
    for level in sol.supported_reasoning_levels:
        assert rules.resolve(f"gpt-5.6-sol-{level}") == Resolved("gpt-5.6-sol", level, sol)
    assert rules.resolve("gpt-5.1-codex-max-xhigh").slug == "gpt-5.1-codex-max"


def test_suffix_only_when_the_rest_is_a_catalog_slug(rules: ModelRules) -> None:
    assert rules.resolve("gpt-5-high") == Resolved("gpt-5-high", None, None)
    assert rules.resolve("unknown-max") == Resolved("unknown-max", None, None)
    assert rules.resolve("gpt-5.6-sol-bogus") == Resolved("gpt-5.6-sol-bogus", None, None)
    assert rules.resolve("gpt-5.6-sol-") == Resolved("gpt-5.6-sol-", None, None)


def test_a_level_no_model_lists_still_splits_when_another_catalog_lists_it() -> None:
    rules = ModelRules.from_catalog_json([raw_entry("m", ("low",)), raw_entry("n", ("turbo",))])
    assert rules.resolve("m-turbo") == Resolved("m", "turbo", rules.entry("m"))


def test_suffix_for_a_level_the_model_does_not_list_is_a_400(rules: ModelRules) -> None:
    resolved = rules.resolve("gpt-5.5-max")
    assert (resolved.slug, resolved.effort) == ("gpt-5.5", "max")
    with pytest.raises(APIError) as caught:
        check_effort(resolved, resolved.effort, param="model")
    assert caught.value.status_code == 400
    assert caught.value.param == "model"
    assert "low, medium, high, xhigh" in caught.value.message
    assert "'max'" in caught.value.message


slugs = st.from_regex(r"[a-z][a-z0-9.]{0,6}(-[a-z0-9.]{1,6}){0,3}", fullmatch=True)
levels = st.lists(st.sampled_from([*KNOWN_EFFORTS, "turbo"]), min_size=0, max_size=5, unique=True)


@given(st.lists(st.tuples(slugs, levels), min_size=1, max_size=6, unique_by=lambda model: model[0]), st.data())
def test_resolve_properties(models: list[tuple[str, list[str]]], data: st.DataObject) -> None:
    rules = ModelRules.from_catalog_json([raw_entry(slug, tuple(efforts)) for slug, efforts in models])
    known = {entry.slug for entry in rules.entries}
    slug, efforts = data.draw(st.sampled_from(models))
    # an exact slug is always the model itself
    assert rules.resolve(slug) == Resolved(slug, None, rules.entry(slug))
    # any of its levels as a suffix resolves to it, unless that name is a slug itself
    if efforts:
        level = data.draw(st.sampled_from(efforts))
        name = f"{slug}-{level}"
        expected = Resolved(slug, level, rules.entry(slug))
        if name in known:
            expected = Resolved(name, None, rules.entry(name))
        assert rules.resolve(name) == expected
    # any name: either unchanged, or split into a catalog slug and its suffix
    name = data.draw(st.one_of(slugs, st.builds(lambda s, lv: f"{s}-{lv}", st.sampled_from(sorted(known)), levels)))
    resolved = rules.resolve(name)
    if resolved.effort is None:
        assert resolved.slug == name
        assert resolved.entry is rules.entry(name)
    else:
        assert resolved.slug in known
        assert f"{resolved.slug}-{resolved.effort}" == name
        assert name not in known


# --- fallback (no catalog) -------------------------------------------------------------------


def test_empty_catalog_means_fallback() -> None:
    assert ModelRules.from_catalog_json([]).from_catalog is False
    assert ModelRules.fallback().from_catalog is False


@given(st.from_regex(r"[a-z][a-z0-9.]{0,8}(-[a-z0-9.]{1,5}){0,2}", fullmatch=True), st.sampled_from(CLASSIC_EFFORTS))
def test_fallback_splits_the_classic_suffixes_off_any_name(base: str, effort: str) -> None:
    assert ModelRules.fallback().resolve(f"{base}-{effort}") == Resolved(base, effort, None)


def test_fallback_table() -> None:
    rules = ModelRules.fallback()
    assert rules.resolve("gpt-5.6-sol-max") == Resolved("gpt-5.6-sol", "max", None)
    assert rules.resolve("gpt-5.6-terra-ultra") == Resolved("gpt-5.6-terra", "ultra", None)
    # a family the table does not give max keeps the name whole (the backend decides)
    assert rules.resolve("gpt-5.1-codex-max") == Resolved("gpt-5.1-codex-max", None, None)
    assert rules.resolve("gpt-5.5-max") == Resolved("gpt-5.5-max", None, None)
    assert rules.is_lite("gpt-5.6-sol-max")
    assert rules.is_lite("gpt-5.6-luna")
    assert is_lite("gpt-5.6-luna")
    assert not rules.is_lite("gpt-5.5")
    assert not rules.is_lite("gpt-5")
    assert not is_lite("gpt-5.6")  # the family prefix alone is no model
    assert all(rule.efforts for rule in FALLBACK_RULES)


def test_fallback_passes_unknown_efforts_on() -> None:
    resolved = ModelRules.fallback().resolve("gpt-5.6-sol")
    check_effort(resolved, "ludicrous")
    check_effort(None, "ludicrous")
    assert lowest_effort(resolved) is None
    assert context_window(resolved) is None
    assert accepts_images(resolved)
    assert not client_too_old(resolved, "0.0.1")


# --- efforts and other per-model rules -------------------------------------------------------


def test_check_effort(rules: ModelRules) -> None:
    sol = rules.resolve("gpt-5.6-sol")
    check_effort(sol, "ultra")
    check_effort(sol, None)
    with pytest.raises(APIError) as caught:
        check_effort(sol, "minimal", param="reasoning.effort")
    error = caught.value
    assert error.status_code == 400
    assert error.type == "invalid_request_error"
    assert error.param == "reasoning.effort"
    assert "low, medium, high, xhigh, max, ultra" in error.message
    luna = rules.entry("gpt-5.6-luna")
    with pytest.raises(APIError) as caught:
        check_effort(luna, "ultra")
    assert caught.value.param == "reasoning_effort"
    assert "low, medium, high, xhigh, max." in caught.value.message
    # a model the catalog does not know: passed on
    check_effort(rules.resolve("gpt-7"), "ultra")
    # an entry that lists no levels: passed on
    check_effort(CatalogEntry("bare"), "anything")


def test_catalog_entry_decides_lite_over_the_fallback_table() -> None:
    rules = ModelRules.from_catalog_json([raw_entry("gpt-5.6-new", ("low",), use_responses_lite=False)])
    assert not rules.is_lite("gpt-5.6-new")
    assert not rules.is_lite("gpt-5.6-new-low")
    # not in this catalog: the table's guess
    assert rules.is_lite("gpt-5.6-other")
    lite = ModelRules.from_catalog_json([raw_entry("brand-new", ("low",), use_responses_lite=True)])
    assert lite.is_lite("brand-new-low")
    assert is_lite(lite.entries[0])


def test_lowest_effort_context_window_images(rules: ModelRules) -> None:
    sol = rules.resolve("gpt-5.6-sol")
    assert lowest_effort(sol) == "low"
    assert lowest_effort(rules.entry("hidden-review")) == "medium"
    assert context_window(sol) == 272_000
    assert context_window(CatalogEntry("m", max_context_window=1000)) == 1000
    assert accepts_images(sol)
    assert not accepts_images(rules.entry("text-only"))
    assert accepts_images(CatalogEntry("m"))


# --- client version gate ---------------------------------------------------------------------


def test_parse_version() -> None:
    assert parse_version("0.169.0") == parse_version("0.169") == (0, 169)
    assert parse_version("v1.2.3-alpha.1") == (1, 2, 3)
    assert parse_version("latest") is None


@pytest.mark.parametrize(
    ("ours", "needed", "too_old"),
    [
        ("0.169.0", "0.144.0", False),
        ("0.144.0", "0.144.0", False),
        ("0.143.9", "0.144.0", True),
        ("0.99.0", "0.144.0", True),
        ("0.144", "0.144.1", True),
        ("1.0.0", "0.200.0", False),
        ("dev", "0.144.0", False),
        ("0.1.0", "soon", False),
    ],
)
def test_client_too_old(ours: str, needed: str, too_old: bool) -> None:
    entry = CatalogEntry("gpt-5.6-sol", minimal_client_version=needed)
    assert client_too_old(entry, ours) is too_old
    assert client_too_old(Resolved("gpt-5.6-sol", None, entry), ours) is too_old


def test_client_too_old_error_names_the_setting(rules: ModelRules) -> None:
    entry = rules.entry("gpt-5.6-sol")
    assert entry is not None
    assert client_too_old(entry, "0.100.0")
    error = client_too_old_error(entry, "0.100.0")
    assert error.status_code == 400
    assert "client_version" in error.message
    assert "0.144.0" in error.message and "0.100.0" in error.message
    assert "newer" in error.message
    assert not client_too_old(rules.entry("gpt-5.5"), "0.1.0")


# --- /v1/models aliases ----------------------------------------------------------------------


def test_aliases(rules: ModelRules) -> None:
    aliases = rules.aliases()
    ids = [alias.id for alias in aliases]
    assert len(ids) == len(set(ids))
    assert "hidden-review" not in ids and "hidden-review-medium" not in ids
    # by priority: gpt-5.1-codex-max (0), gpt-5.5 (1), gpt-5.6-sol (2), ...
    assert ids[:5] == ["gpt-5.1-codex-max", *(f"gpt-5.1-codex-max-{e}" for e in ("low", "medium", "high", "xhigh"))]
    assert ModelAlias("gpt-5.6-sol-ultra", "gpt-5.6-sol", "ultra") in aliases
    assert ModelAlias("gpt-5.6-sol", "gpt-5.6-sol", None) in aliases
    assert "gpt-5.6-luna-ultra" not in ids
    # gpt-5.1-codex lists no max, and its `-max` name is another model, listed once as itself
    assert ids.count("gpt-5.1-codex-max") == 1
    assert [a for a in aliases if a.id == "gpt-5.1-codex-max"] == [ModelAlias("gpt-5.1-codex-max", "gpt-5.1-codex-max")]
    # every alias resolves back to what it names
    for alias in aliases:
        resolved = rules.resolve(alias.id)
        assert (resolved.slug, resolved.effort) == (alias.slug, alias.effort)


def test_alias_that_is_a_slug_is_not_an_effort_alias() -> None:
    rules = ModelRules.from_catalog_json(
        [raw_entry("m", ("low", "max"), priority=0), raw_entry("m-max", ("high",), priority=1)]
    )
    assert [a.id for a in rules.aliases()] == ["m", "m-low", "m-max", "m-max-high"]
    assert rules.aliases()[2] == ModelAlias("m-max", "m-max", None)


def test_no_aliases_without_a_catalog() -> None:
    assert ModelRules.fallback().aliases() == []
