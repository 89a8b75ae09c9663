"""Settings: precedence flag > env > TOML file > default, the flat naming rule, bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from codexgate.config import (
    SETTING_SECTIONS,
    ServerSettings,
    SettingInfo,
    Settings,
    SettingsError,
    describe_settings,
    effective_settings,
    env_name,
    flag_name,
    load_settings,
    parse_flag_args,
)


def test_defaults(tmp_path: Path) -> None:
    loaded = load_settings(flags={"home": str(tmp_path)}, env={})
    s = loaded.settings
    assert s.server.host == "127.0.0.1"
    assert s.server.port not in (8000, 8080, 3000)
    assert s.upstream.upstream_url == "https://chatgpt.com/backend-api/codex"
    assert s.auth.auth_issuer == "https://auth.openai.com"
    assert s.server.log_level == "info" and s.server.log_format == "text"
    assert s.limits.max_body_size == 20 * 1024 * 1024
    assert loaded.sources["port"] == "default"


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('port = 1111\nlog_level = "debug"\nclient_version = "1.0.0"\n')
    env = {"CODEXGATE_HOME": str(tmp_path), "CODEXGATE_PORT": "2222", "CODEXGATE_LOG_LEVEL": "warning"}
    loaded = load_settings(env=env, flags={"port": "3333"})
    s = loaded.settings
    assert s.server.port == 3333 and loaded.sources["port"] == "flag"
    assert s.server.log_level == "warning" and loaded.sources["log_level"] == "env"
    assert s.upstream.client_version == "1.0.0" and loaded.sources["client_version"] == "file"
    assert loaded.sources["host"] == "default"
    assert loaded.config_file == tmp_path / "config.toml"


def test_section_tables_in_toml_mean_the_same(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[server]\nport = 4444\n[upstream]\nupstream_url = "http://127.0.0.1:1/x"\n')
    s = load_settings(config_file=config, env={}).settings
    assert s.server.port == 4444
    assert s.upstream.upstream_url == "http://127.0.0.1:1/x"


def test_codex_home_env_alias_and_rule_name(tmp_path: Path) -> None:
    s = load_settings(env={"CODEX_HOME": "/tmp/a", "CODEXGATE_HOME": str(tmp_path)}).settings
    assert s.codex_auth_file == Path("/tmp/a/auth.json")
    s = load_settings(
        env={"CODEX_HOME": "/tmp/a", "CODEXGATE_CODEX_HOME": "/tmp/b", "CODEXGATE_HOME": str(tmp_path)}
    ).settings
    assert s.codex_home == Path("/tmp/b")


def test_every_setting_follows_the_naming_rule(tmp_path: Path) -> None:
    for name in SETTING_SECTIONS:
        assert env_name(name) == "CODEXGATE_" + name.upper()
        assert flag_name(name) == "--" + name.replace("_", "-")
    flags = parse_flag_args(["--port", "5", "--allow-no-auth", "--log-format=json", "--cors-origins", "a,b"])
    assert flags == {"port": "5", "allow_no_auth": True, "log_format": "json", "cors_origins": ["a", "b"]}
    s = load_settings(flags={**flags, "home": str(tmp_path)}, env={}).settings
    assert s.server.cors_origins == ["a", "b"] and s.server.allow_no_auth is True


@pytest.mark.parametrize(
    ("env", "toml", "expected"),
    [
        ({"CODEXGATE_PORT": "abc"}, None, "port"),
        ({"CODEXGATE_PORT": "70000"}, None, "port"),
        ({"CODEXGATE_LOG_FORMAT": "xml"}, None, "log_format"),
        ({}, "bogus_key = 1\n", "bogus_key"),
        ({}, "port = 'x'\n", "port"),
        ({}, "not toml ===\n", "config"),
        ({}, "[server]\nupstream_url = 'x'\n", "upstream_url"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, env: dict[str, str], toml: str | None, expected: str) -> None:
    if toml is not None:
        (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(SettingsError) as info:
        load_settings(env={"CODEXGATE_HOME": str(tmp_path), **env})
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_unreadable_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config"):
        load_settings(config_file=tmp_path / "missing.toml", env={})
    if os.geteuid() != 0:  # root can read anything
        bad = tmp_path / "locked.toml"
        bad.write_text("port = 1\n")
        bad.chmod(0)
        with pytest.raises(SettingsError, match="cannot read"):
            load_settings(config_file=bad, env={})


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codexgate", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "toml", "needle"),
    [
        (["serve", "--port", "abc"], {}, None, "port"),
        (["serve"], {"CODEXGATE_PORT": "abc"}, None, "CODEXGATE_PORT"),
        (["serve"], {}, "unknown_thing = 1\n", "unknown_thing"),
        (["serve", "--no-such-flag", "1"], {}, None, "--no-such-flag"),
        (["config", "show"], {"CODEXGATE_LOG_LEVEL": "loud"}, None, "log_level"),
    ],
)
def test_cli_bad_setting_exits_2_without_traceback(
    tmp_path: Path, args: list[str], env: dict[str, str], toml: str | None, needle: str
) -> None:
    if toml:
        (tmp_path / "config.toml").write_text(toml)
    result = _cli(*args, env={"CODEXGATE_HOME": str(tmp_path), **env})
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_config_show_reports_sources_and_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("port = 1234\n")
    result = _cli("config", "show", "--json", env={"CODEXGATE_HOME": str(tmp_path), "CODEXGATE_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stderr
    import json

    document = json.loads(result.stdout)
    assert document["settings"]["port"] == {
        "value": 1234,
        "source": "file",
        "section": "server",
        "meaning": "port to listen on",
    }
    assert document["settings"]["log_level"]["source"] == "env"
    assert document["settings"]["host"]["source"] == "default"
    assert set(document["settings"]) == set(SETTING_SECTIONS)


def test_version_flag() -> None:
    from codexgate import __version__

    result = _cli("--version", env={})
    assert result.returncode == 0
    assert __version__ in result.stdout


# ---- the sources, the listing of settings, and adding a setting ------------------------------


class _ServerWithNewSetting(ServerSettings):
    idle_timeout: float = Field(30.0, gt=0, description="seconds an idle client connection is kept")


class _SettingsWithNewSetting(Settings):
    server: _ServerWithNewSetting = Field(default_factory=_ServerWithNewSetting)


def test_a_setting_added_to_a_section_is_read_from_file_env_and_flag(tmp_path: Path) -> None:
    def load(**kwargs: Any) -> tuple[float, str]:
        loaded = load_settings(settings_cls=_SettingsWithNewSetting, **kwargs)
        assert isinstance(loaded.settings.server, _ServerWithNewSetting)
        return loaded.settings.server.idle_timeout, loaded.sources["idle_timeout"]

    home = {"CODEXGATE_HOME": str(tmp_path)}
    assert load(env=home) == (30.0, "default")
    (tmp_path / "config.toml").write_text("idle_timeout = 5\n")
    assert load(env=home) == (5.0, "file")
    (tmp_path / "config.toml").write_text("[server]\nidle_timeout = 6\n")
    assert load(env=home) == (6.0, "file")
    assert load(env={**home, "CODEXGATE_IDLE_TIMEOUT": "7"}) == (7.0, "env")
    flags = parse_flag_args(["--idle-timeout", "8"], settings_cls=_SettingsWithNewSetting)
    assert load(env={**home, "CODEXGATE_IDLE_TIMEOUT": "7"}, flags=flags) == (8.0, "flag")

    with pytest.raises(SettingsError) as info:
        load(env={**home, "CODEXGATE_IDLE_TIMEOUT": "-1"})
    assert str(info.value).startswith("idle_timeout: invalid value '-1' from CODEXGATE_IDLE_TIMEOUT:")
    # the plain model does not know the new name
    with pytest.raises(SettingsError, match="idle_timeout: unknown setting"):
        load_settings(env=home)
    with pytest.raises(SettingsError, match="--idle-timeout: unknown option"):
        parse_flag_args(["--idle-timeout", "8"])

    listed = {setting.name: setting for setting in describe_settings(_SettingsWithNewSetting)}
    assert listed["idle_timeout"] == SettingInfo(
        "idle_timeout", "server", "float", 30.0, "seconds an idle client connection is kept"
    )
    loaded = load_settings(settings_cls=_SettingsWithNewSetting, env=home)
    assert ("server", "idle_timeout", 6.0, "file") in effective_settings(loaded)


def test_settings_built_directly_use_the_same_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [key for key in os.environ if key.startswith("CODEXGATE_") or key == "CODEX_HOME"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CODEXGATE_HOME", str(tmp_path))
    monkeypatch.setenv("CODEXGATE_PORT", "2222")
    monkeypatch.setenv("CODEXGATE_CORS_ORIGINS", '["http://a", "http://b"]')
    (tmp_path / "config.toml").write_text("port = 1111\nhost = '127.0.0.2'\n")
    settings = Settings()
    assert (settings.server.port, settings.server.host) == (2222, "127.0.0.2")
    assert settings.server.cors_origins == ["http://a", "http://b"]
    assert Settings(server={"port": 3333}).server.port == 3333


def test_every_setting_is_listed_with_type_default_and_one_line_meaning(tmp_path: Path) -> None:
    listed = describe_settings()
    assert [info.name for info in listed] == list(SETTING_SECTIONS)
    defaults = load_settings(config_file=_empty_file(tmp_path), env={}).settings
    for info in listed:
        assert info.section == SETTING_SECTIONS[info.name]
        assert info.meaning.strip() and "\n" not in info.meaning, info.name
        assert info.default == getattr(defaults, info.section).model_dump(mode="json")[info.name], info.name
    types = {info.name: info.type for info in listed}
    assert types["port"] == "int" and types["keepalive_interval"] == "float" and types["host"] == "str"
    assert types["allow_no_auth"] == "bool" and types["cors_origins"] == "list"
    assert types["home"] == "path" and types["instructions_file"] == "path"
    assert types["log_level"] == "one of debug|info|warning|error"
    assert types["reasoning"] == "one of reasoning_content|think|hidden"
    assert types["anthropic_models"] == "table"
    assert set(types.values()) <= {"int", "float", "bool", "str", "path", "list", "table"} | {
        t for t in types.values() if t.startswith("one of ")
    }


def _empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path
