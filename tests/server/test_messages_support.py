"""The Messages front's supporting pieces: the mapping setting, the thinking key, the simulator's knobs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from codexgate.config import SettingsError, load_settings
from codexgate.server.anthropic_support import KEY_SIZE, account_tag, thinking_key
from codexgate.testing.scenarios import RequestContext, prompt_knobs


def test_anthropic_models_from_toml_keeps_its_order(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[anthropic_models]\n"claude-*opus*" = "gpt-5-high"\n"claude-*" = "gpt-5"\n')
    table = load_settings(config_file=config, env={}).settings.translation.anthropic_models
    assert list(table.items()) == [("claude-*opus*", "gpt-5-high"), ("claude-*", "gpt-5")]


def test_anthropic_models_from_the_environment_is_json(tmp_path: Path) -> None:
    env = {"CODEXGATE_HOME": str(tmp_path), "CODEXGATE_ANTHROPIC_MODELS": '{"claude-b*": "x", "claude-a*": "y"}'}
    table = load_settings(env=env).settings.translation.anthropic_models
    assert list(table) == ["claude-b*", "claude-a*"]
    with pytest.raises(SettingsError, match="anthropic_models"):
        load_settings(env={**env, "CODEXGATE_ANTHROPIC_MODELS": "claude-*=gpt-5"})
    assert load_settings(env={"CODEXGATE_HOME": str(tmp_path)}).settings.translation.anthropic_models == {}


def test_the_thinking_key_is_made_once_private_and_shared(tmp_path: Path) -> None:
    homes = [tmp_path / f"home{n}" for n in range(8)]
    results: dict[Path, list[bytes]] = {home: [] for home in homes}

    def get(home: Path) -> None:
        results[home].append(thinking_key(home))

    threads = [threading.Thread(target=get, args=(home,)) for home in homes for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for home, keys in results.items():
        assert len(set(keys)) == 1 and len(keys[0]) == KEY_SIZE
        path = home / "thinking.key"
        assert path.read_bytes() == keys[0] and path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in home.iterdir()] == ["thinking.key"]  # no temporary file left behind
    assert len({keys[0] for keys in results.values()}) == len(homes)  # random per home


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thinking.key").write_bytes(b"short")
    with pytest.raises(OSError, match="fewer than"):
        thinking_key(tmp_path)


def test_account_tags_are_short_stable_and_distinct() -> None:
    assert account_tag("acct_1") == account_tag("acct_1") != account_tag("acct_2")
    assert len(account_tag("acct_1")) == 16 and account_tag(None) == "-" and "acct" not in account_tag("acct_1")


def test_prompt_knobs() -> None:
    prompt = 'Do it.\nscenario:tool_calls tool=Bash args={"command": "echo a b"} other=1\nnext line tool=no'
    assert prompt_knobs(prompt) == {"tool": "Bash", "args": {"command": "echo a b"}, "other": "1"}
    assert prompt_knobs("scenario:tool_calls args=[1] tool=X") == {"tool": "X"}  # a non-object args is left out
    assert prompt_knobs("no marker tool=X") == {}


def test_a_tool_output_ends_a_prompt_driven_tool_round() -> None:
    from codexgate.testing.scenarios import Defaults, Scenario, build_events

    prompt = "scenario:tool_calls tool=Bash"
    first_input = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]
    first = build_events(Scenario("tool_calls"), RequestContext.from_body({"input": first_input}, 100), Defaults())
    calls = [e["item"] for e in first if e["type"] == "response.output_item.done"]
    assert [(c["type"], c["name"]) for c in calls] == [("function_call", "Bash")]
    output = {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "nonce-5"}
    second_body = {"input": [*first_input, calls[0], output]}
    second = build_events(Scenario("tool_calls"), RequestContext.from_body(second_body, 100), Defaults())
    done = [e["item"] for e in second if e["type"] == "response.output_item.done"]
    assert [item["type"] for item in done] == ["message"]
    assert "nonce-5" in done[0]["content"][0]["text"]
