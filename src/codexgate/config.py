"""codexgate's one settings model: defaults < TOML file < environment < command-line flags.

Every setting has one public name used everywhere: TOML key ``x_y`` = env ``CODEXGATE_X_Y`` =
flag ``serve --x-y``. In code the settings are grouped in sections (``settings.server.port``,
``settings.upstream.upstream_url`` ...), but names are unique across sections, so the file, the
environment and the flags stay flat. A TOML file may also group keys under a table named after a
section (``[server]\\nport = 9191``); both spellings mean the same.

Two environment names predate the rule and are honoured too: ``CODEX_HOME`` (the Codex CLI's own
variable) for ``codex_home``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "CODEXGATE_"
DEFAULT_PORT = 9191
DEFAULT_CLIENT_VERSION = "0.169.0"
CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ReasoningFormat = Literal["reasoning_content", "think", "hidden"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="port to listen on")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    log_format: Literal["text", "json"] = Field("text", description="log line format")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS (comma-separated); empty = CORS off"
    )
    allow_no_auth: bool = Field(False, description="allow a non-loopback bind with no API key configured")
    keepalive_interval: float = Field(
        15.0, gt=0, description="seconds of upstream silence before an SSE keep-alive comment"
    )
    shutdown_grace: float = Field(10.0, ge=0, description="seconds open streams may finish after SIGTERM")


class UpstreamSettings(_Section):
    upstream_url: str = Field("https://chatgpt.com/backend-api/codex", description="Codex backend base URL")
    client_version: str = Field(DEFAULT_CLIENT_VERSION, description="Codex client version presented upstream")
    originator: str = Field("codex_cli_rs", description="originator header sent upstream")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to connect upstream")
    read_timeout: float = Field(300.0, gt=0, description="seconds of silence allowed between upstream events")
    upstream_retries: int = Field(2, ge=0, le=5, description="retries on connect errors/5xx before the first byte")
    retry_budget: float = Field(3.0, ge=0, description="seconds all retries of one request may take")
    instructions_file: Path | None = Field(
        None, description="file whose text is sent as instructions when the client gives none"
    )
    models: list[str] = Field(
        default_factory=list, description="model ids to list when the backend's list can't be fetched"
    )
    models_cache_ttl: float = Field(300.0, ge=0, description="seconds the backend's model list is cached")


class AuthSettings(_Section):
    codex_home: Path = Field(Path("~/.codex"), description="the Codex CLI's directory (its auth.json)")
    auth_issuer: str = Field("https://auth.openai.com", description="OAuth issuer")
    client_id: str = Field(CODEX_CLIENT_ID, description="OAuth client id")
    login_port: int = Field(1455, ge=0, le=65535, description="local port of the login callback")
    refresh_margin: float = Field(
        300.0, ge=0, description="refresh the access token this many seconds before it expires"
    )


class TranslationSettings(_Section):
    reasoning: ReasoningFormat = Field(
        "reasoning_content", description="reasoning in chat answers: reasoning_content, think or hidden"
    )
    reasoning_summary: Literal["auto", "concise", "detailed", "none"] = Field(
        "auto", description="reasoning.summary sent upstream when the client chose none"
    )


class StorageSettings(_Section):
    home: Path = Field(Path("~/.codexgate"), description="codexgate's data dir (config, database, credentials)")
    database: Path | None = Field(None, description="usage database path (default: $CODEXGATE_HOME/usage.db)")
    usage_retention_days: int = Field(90, ge=0, description="days usage rows are kept (0 = forever)")


class LimitsSettings(_Section):
    max_concurrent_streams: int = Field(1000, ge=0, description="concurrent upstream streams before 429 (0 = no cap)")
    max_body_size: int = Field(20 * 1024 * 1024, gt=0, description="largest request body in bytes")
    max_header_size: int = Field(64 * 1024, gt=0, description="largest request head in bytes")


SECTIONS: dict[str, type[_Section]] = {
    "server": ServerSettings,
    "upstream": UpstreamSettings,
    "auth": AuthSettings,
    "translation": TranslationSettings,
    "storage": StorageSettings,
    "limits": LimitsSettings,
}


class Settings(BaseSettings):
    """The effective configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(extra="forbid")

    server: ServerSettings = Field(default_factory=ServerSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    translation: TranslationSettings = Field(default_factory=TranslationSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() merges file, environment and flags under the flat naming rule itself
        # (pydantic-settings' nested env names would be CODEXGATE_SERVER__PORT), then hands the
        # merged values over as init arguments.
        return (init_settings,)

    # Paths derived from the settings: one place decides where each file lives.
    @property
    def home(self) -> Path:
        return self.storage.home.expanduser()

    @property
    def codex_home(self) -> Path:
        return self.auth.codex_home.expanduser()

    @property
    def auth_file(self) -> Path:
        return self.home / "auth.json"

    @property
    def codex_auth_file(self) -> Path:
        return self.codex_home / "auth.json"

    @property
    def database_path(self) -> Path:
        return (self.storage.database or self.home / "usage.db").expanduser()

    @property
    def keys_file(self) -> Path:
        return self.home / "keys.json"

    @property
    def rate_limits_file(self) -> Path:
        return self.home / "rate_limits.json"

    @property
    def instructions_dir(self) -> Path:
        return self.home / "instructions"


# ---- the flat naming rule -------------------------------------------------------------------

#: public name -> section name, for every setting.
SETTING_SECTIONS: dict[str, str] = {name: section for section, model in SECTIONS.items() for name in model.model_fields}
#: extra environment names honoured for a setting, after CODEXGATE_X_Y.
ENV_ALIASES: dict[str, tuple[str, ...]] = {"codex_home": ("CODEX_HOME",)}
SECRET_MARKERS = ("token", "secret", "password", "api_key")

Source = Literal["default", "file", "env", "flag"]


class SettingsError(Exception):
    """A bad setting: one clear line naming it. The CLI prints it and exits with code 2."""


@dataclass
class LoadedSettings:
    settings: Settings
    sources: dict[str, Source] = field(default_factory=dict)
    config_file: Path | None = None


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def is_secret(name: str) -> bool:
    return any(marker in name for marker in SECRET_MARKERS)


def _field_annotation(name: str) -> Any:
    return SECTIONS[SETTING_SECTIONS[name]].model_fields[name].annotation


def _coerce_text(name: str, raw: str) -> Any:
    """Env and flag values arrive as text; list settings take JSON or comma-separated values."""
    if _field_annotation(name) == list[str]:
        stripped = raw.strip()
        if stripped.startswith("["):
            import json

            try:
                return json.loads(stripped)
            except ValueError as exc:
                raise SettingsError(f"{name}: not a valid JSON list ({exc})") from None
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return raw


def default_config_file(env: Mapping[str, str], flags: Mapping[str, Any]) -> Path:
    home = flags.get("home") or env.get(env_name("home")) or "~/.codexgate"
    return Path(str(home)).expanduser() / "config.toml"


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """Flat ``{name: value}`` from a TOML file; section tables are flattened."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise SettingsError(f"config: file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise SettingsError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config: {path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if key in SECTIONS and isinstance(value, dict):
            for inner_key, inner_value in value.items():
                if SETTING_SECTIONS.get(inner_key) != key:
                    raise SettingsError(f"{inner_key}: unknown setting in [{key}] of {path}")
                flat[inner_key] = inner_value
        elif key in SETTING_SECTIONS:
            flat[key] = value
        else:
            raise SettingsError(f"{key}: unknown setting in {path}")
    return flat


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in SETTING_SECTIONS:
        for candidate in (env_name(name), *ENV_ALIASES.get(name, ())):
            if candidate in env:
                values[name] = _coerce_text(name, env[candidate])
                break
    return values


def parse_flag_args(args: list[str]) -> dict[str, Any]:
    """``["--port", "9", "--allow-no-auth", "--log-level=debug"]`` -> ``{"port": "9", ...}``."""
    values: dict[str, Any] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--"):
            raise SettingsError(f"unexpected argument {arg!r}")
        body, has_value, inline_value = arg[2:].partition("=")
        negated = body.startswith("no-") and body[3:].replace("-", "_") in SETTING_SECTIONS
        name = (body[3:] if negated else body).replace("-", "_")
        if name not in SETTING_SECTIONS:
            raise SettingsError(f"{arg.split('=')[0]}: unknown option")
        if _field_annotation(name) is bool and not has_value:
            values[name] = not negated
        elif has_value:
            values[name] = _coerce_text(name, inline_value)
        else:
            if index + 1 >= len(args):
                raise SettingsError(f"{flag_name(name)}: needs a value")
            index += 1
            values[name] = _coerce_text(name, args[index])
        index += 1
    return values


def _nest(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for name, value in flat.items():
        nested[SETTING_SECTIONS[name]][name] = value
    return nested


def load_settings(
    *,
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Build the settings. Raises :class:`SettingsError` with one line naming a bad setting."""
    env = os.environ if env is None else env
    flags = dict(flags or {})
    unknown = [name for name in flags if name not in SETTING_SECTIONS]
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting")
    env_values = read_env(env)
    explicit_file = config_file or (Path(env["CODEXGATE_CONFIG"]) if env.get("CODEXGATE_CONFIG") else None)
    path = (explicit_file or default_config_file(env, {**env_values, **flags})).expanduser()
    file_values = read_config_file(path, required=explicit_file is not None)

    merged: dict[str, Any] = {}
    sources: dict[str, Source] = dict.fromkeys(SETTING_SECTIONS, "default")
    for source, layer in (("file", file_values), ("env", env_values), ("flag", flags)):
        for name, value in layer.items():
            merged[name] = value
            sources[name] = source  # type: ignore[assignment]
    try:
        settings = Settings.model_validate(_nest(merged))
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        name = next((part for part in location if part in SETTING_SECTIONS), ".".join(location))
        origin = sources.get(name, "default")
        where = {
            "file": f"in {path}",
            "env": f"from {env_name(name)}",
            "flag": f"from {flag_name(name)}",
            "default": "",
        }[origin]
        value = merged.get(name)
        shown = "***" if is_secret(name) else repr(value)
        raise SettingsError(f"{name}: invalid value {shown} {where}: {error['msg']}".replace("  ", " ")) from None
    return LoadedSettings(settings=settings, sources=sources, config_file=path if path.exists() else None)


def effective_settings(loaded: LoadedSettings) -> list[tuple[str, str, Any, Source]]:
    """``(section, name, value, source)`` rows for ``config show``, secrets masked."""
    rows: list[tuple[str, str, Any, Source]] = []
    for section in SECTIONS:
        values = getattr(loaded.settings, section).model_dump(mode="json")
        for name, value in values.items():
            shown = "***" if is_secret(name) and value else value
            rows.append((section, name, shown, loaded.sources.get(name, "default")))
    return rows
