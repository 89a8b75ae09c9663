"""codexgate's one settings model: defaults < TOML file < environment < command-line flags.

Every setting has one public name used everywhere: TOML key ``x_y`` = env ``CODEXGATE_X_Y`` =
flag ``serve --x-y``. In code the settings are grouped in sections (``settings.server.port``,
``settings.upstream.upstream_url`` ...), but names are unique across sections, so the file, the
environment and the flags stay flat. A TOML file may also group keys under a table named after a
section (``[server]\\nport = 9191``); both spellings mean the same.

One environment name predates the rule and is honoured too: ``CODEX_HOME`` (the Codex CLI's own
variable) for ``codex_home``.

Loading is plain pydantic: building :class:`Settings` (directly or through :func:`load_settings`) reads
the layers by their flat names — the flags are the init arguments, :func:`read_env` and
:func:`read_toml` read the environment and the file — merges them section by section over the defaults
and validates the result once. Every layer reads the names off the model, so a field added to a
section is a setting in the file, the environment and the flags at once. (No pydantic-settings: its
machinery cost every command that reads the settings ~0.1 s of start-up.)
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

ENV_PREFIX = "CODEXGATE_"
DEFAULT_PORT = 9191
DEFAULT_HOME = "~/.codexgate"
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
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted besides loopback (comma-separated); set = Host checked with keys too",
    )
    keepalive_interval: float = Field(
        15.0, gt=0, description="seconds of upstream silence before an SSE keep-alive comment"
    )
    shutdown_grace: float = Field(10.0, ge=0, description="seconds open streams may finish after SIGTERM")


class UpstreamSettings(_Section):
    upstream_url: str = Field("https://chatgpt.com/backend-api/codex", description="Codex backend base URL")
    client_version: str = Field(DEFAULT_CLIENT_VERSION, description="Codex client version presented upstream")
    originator: str = Field("codex_exec", description="originator header sent upstream")
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
    routing: Literal["sticky", "least_used", "round_robin", "fill_first"] = Field(
        "sticky", description="how requests are spread over several accounts"
    )
    fill_threshold: float = Field(95.0, ge=0, le=100, description="fill_first moves to the next account at this used %")
    account_max_streams: int = Field(0, ge=0, description="concurrent streams per account (0 = no cap)")


class TranslationSettings(_Section):
    reasoning: ReasoningFormat = Field(
        "reasoning_content", description="reasoning in chat answers: reasoning_content, think or hidden"
    )
    reasoning_summary: Literal["auto", "concise", "detailed", "none"] = Field(
        "auto", description="reasoning.summary sent upstream when the client chose none"
    )
    anthropic_models: dict[str, str] = Field(
        default_factory=dict,
        description="ordered table: claude-* glob -> model or model-effort (env: JSON); empty = built-in defaults",
    )


class StorageSettings(_Section):
    home: Path = Field(Path("~/.codexgate"), description="codexgate's data dir (config, database, credentials)")
    database: Path | None = Field(None, description="usage database path (default: $CODEXGATE_HOME/usage.db)")
    database_url: str | None = Field(
        None,
        description="a postgresql:// URL: usage rows go to PostgreSQL, shared by several instances "
        "(default: none = the SQLite file)",
        pattern=r"^postgres(ql)?://",
    )
    usage_retention_days: int = Field(90, ge=0, description="days usage rows are kept (0 = forever)")
    admin_password_hash: str | None = Field(
        None, description="the dashboard's admin password as a hash (`codexgate admin set-password` writes one)"
    )
    admin_password: str | None = Field(
        None, description="the dashboard's admin password in plain text (tests, containers); hashed at start"
    )


class StateSettings(_Section):
    state_url: str | None = Field(
        None,
        description="redis:// or rediss:// URL of the state several instances share (default: none = "
        "this process only)",
        pattern=r"^(rediss?|unix)://",
    )
    state_prefix: str = Field(
        "codexgate:", min_length=1, max_length=64, description="prefix of every key codexgate writes in Redis"
    )
    secret_key: str | None = Field(
        None, min_length=16, description="key that encrypts credentials in the shared state (needed with state_url)"
    )
    previous_secret_keys: list[str] = Field(
        default_factory=list, description="older secret_key values, still accepted to read (rotation)"
    )


class LimitsSettings(_Section):
    max_concurrent_streams: int = Field(1000, ge=0, description="concurrent upstream streams before 429 (0 = no cap)")
    max_body_size: int = Field(20 * 1024 * 1024, gt=0, description="largest request body in bytes")
    max_header_size: int = Field(64 * 1024, gt=0, description="largest request head in bytes")
    head_timeout: float = Field(10.0, gt=0, description="seconds a new request's head may take to arrive")
    body_min_rate: int = Field(
        64 * 1024, ge=0, description="bytes/s a request body must average after body_grace (0 = no rule)"
    )
    body_grace: float = Field(10.0, ge=0, description="seconds a request body may take before body_min_rate applies")
    max_connections: int = Field(
        0, ge=0, description="open client connections before new ones get 503 (0 = sized from the fd limit)"
    )
    max_event_size: int = Field(16 * 1024 * 1024, gt=0, description="largest single upstream SSE event in bytes")
    max_answer_size: int = Field(
        64 * 1024 * 1024, gt=0, description="most upstream bytes read for one non-streamed answer"
    )
    websocket_idle_timeout: float = Field(
        600.0, gt=0, description="seconds a WebSocket on /v1/responses may stay silent between turns"
    )
    websocket_max_lifetime: float = Field(
        3600.0, gt=0, description="seconds a WebSocket on /v1/responses may stay open in all"
    )


class Settings(BaseModel):
    """The effective configuration. Build it with :func:`load_settings`; built directly, it reads the
    real environment and file the same way, its init arguments taking the place of the flags."""

    model_config = ConfigDict(extra="forbid")

    server: ServerSettings = Field(default_factory=ServerSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    translation: TranslationSettings = Field(default_factory=TranslationSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    def __init__(self, **values: Any) -> None:
        # Highest first: flags (the init arguments) > flat environment > flat TOML file > defaults.
        # Outside load_settings() the real environment is read.
        request = _REQUEST.get() or _LoadRequest(env=os.environ)
        super().__init__(**_layered(type(self), request, values))

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


def setting_fields(settings_cls: type[BaseModel] = Settings) -> dict[str, tuple[str, FieldInfo]]:
    """Public name -> (section, field) for every setting: each field of the model is a section."""
    return {
        name: (section, info)
        for section, outer in settings_cls.model_fields.items()
        for name, info in cast("type[BaseModel]", outer.annotation).model_fields.items()
    }


#: public name -> section name, for every setting.
SETTING_SECTIONS: dict[str, str] = {name: section for name, (section, _) in setting_fields().items()}
#: extra environment names honoured for a setting, after CODEXGATE_X_Y.
ENV_ALIASES: dict[str, tuple[str, ...]] = {"codex_home": ("CODEX_HOME",)}
SECRET_MARKERS = ("token", "secret", "password", "api_key", "database_url", "state_url")  # URLs may hold a password

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


def default_config_file(env: Mapping[str, str], flags: Mapping[str, Any]) -> Path:
    home = flags.get("home") or env.get(env_name("home")) or DEFAULT_HOME
    return Path(str(home)).expanduser() / "config.toml"


def _from_text(name: str, info: FieldInfo, raw: str) -> Any:
    """Env and flag values arrive as text; list settings take JSON or comma-separated values, tables JSON."""
    if get_origin(info.annotation) is dict:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}: not a valid JSON object ({exc})") from None
    if get_origin(info.annotation) is not list:
        return raw
    if not raw.strip().startswith("["):
        return [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: not a valid JSON list ({exc})") from None


def _grouped(flat: Mapping[str, Any], fields: Mapping[str, tuple[str, FieldInfo]]) -> dict[str, Any]:
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        grouped.setdefault(fields[name][0], {})[name] = value
    return grouped


# ---- the sources: flags are the init arguments; the environment and the file are read here ----


@dataclass
class _LoadRequest:
    """What one load reads (env, ``--config``), and what each layer held by flat name."""

    env: Mapping[str, str]
    config_file: Path | None = None
    path: Path | None = None
    layers: dict[Source, dict[str, Any]] = field(default_factory=dict)

    def sources(self, names: Iterable[str]) -> dict[str, Source]:
        """Where each setting's value came from: the highest layer that holds it."""
        sources: dict[str, Source] = dict.fromkeys(names, "default")
        for layer in ("file", "env", "flag"):
            sources.update(dict.fromkeys(self.layers.get(layer, {}), layer))
        return sources


_REQUEST: ContextVar[_LoadRequest | None] = ContextVar("codexgate_settings_request", default=None)


def read_env(fields: Mapping[str, tuple[str, FieldInfo]], env: Mapping[str, str]) -> dict[str, Any]:
    """``CODEXGATE_X_Y`` for setting ``x_y``, then the legacy names in :data:`ENV_ALIASES`; flat names."""
    values: dict[str, Any] = {}
    for name, (_, info) in fields.items():
        for candidate in (env_name(name), *ENV_ALIASES.get(name, ())):
            if candidate in env:
                values[name] = _from_text(name, info, env[candidate])
                break
    return values


def read_toml(path: Path, fields: Mapping[str, tuple[str, FieldInfo]], *, required: bool) -> dict[str, Any]:
    """Flat ``x_y = ...`` keys, or the same keys under their ``[section]`` table; flat names. A missing
    file is empty unless ``required``."""
    try:
        document = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        if required:
            raise SettingsError(f"config: file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise SettingsError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config: {path} is not valid TOML: {exc}") from None
    sections = {section for section, _ in fields.values()}
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and key in sections:
            strays = [name for name in value if fields.get(name, ("",))[0] != key]
            if strays:
                raise SettingsError(f"{strays[0]}: unknown setting in [{key}] of {path}")
            flat.update(value)
        elif key in fields:
            flat[key] = value
        else:
            raise SettingsError(f"{key}: unknown setting in {path}")
    return flat


def _merged(lower: Mapping[str, Any], higher: Mapping[str, Any]) -> dict[str, Any]:
    """Section by section: a section given as a table in both keeps the lower layer's other keys."""
    merged = dict(lower)
    for section, value in higher.items():
        below = merged.get(section)
        merged[section] = {**below, **value} if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _layered(settings_cls: type[BaseModel], request: _LoadRequest, init: Mapping[str, Any]) -> dict[str, Any]:
    """The grouped values to validate: the file, then the environment, then the init arguments on top.
    The file is ``--config``, else ``$CODEXGATE_CONFIG`` (either must exist), else ``config.toml`` in the
    home dir the init arguments or the environment chose. Records each layer's flat values in ``request``."""
    fields = setting_fields(settings_cls)
    request.layers["env"] = env_values = read_env(fields, request.env)
    above_file = _merged(_grouped(env_values, fields), init)
    env = request.env
    explicit = request.config_file or (Path(env["CODEXGATE_CONFIG"]) if env.get("CODEXGATE_CONFIG") else None)
    storage = above_file.get(fields["home"][0])
    home = storage.get("home") if isinstance(storage, dict) else getattr(storage, "home", None)
    path = request.path = (explicit or default_config_file({}, {"home": home})).expanduser()
    request.layers["file"] = file_values = read_toml(path, fields, required=explicit is not None)
    return _merged(_grouped(file_values, fields), above_file)


def parse_flag_args(args: list[str], settings_cls: type[Settings] = Settings) -> dict[str, Any]:
    """``["--port", "9", "--allow-no-auth", "--log-level=debug"]`` -> ``{"port": "9", ...}``."""
    fields = setting_fields(settings_cls)
    values: dict[str, Any] = {}
    remaining = iter(args)
    for arg in remaining:
        if not arg.startswith("--"):
            raise SettingsError(f"unexpected argument {arg!r}")
        body, has_value, inline_value = arg[2:].partition("=")
        negated = body.startswith("no-") and body[3:].replace("-", "_") in fields
        name = (body[3:] if negated else body).replace("-", "_")
        if name not in fields:
            raise SettingsError(f"{arg.split('=')[0]}: unknown option")
        if fields[name][1].annotation is bool and not has_value:
            values[name] = not negated
            continue
        text = inline_value if has_value else next(remaining, None)
        if text is None:
            raise SettingsError(f"{flag_name(name)}: needs a value")
        values[name] = _from_text(name, fields[name][1], text)
    return values


# ---- loading --------------------------------------------------------------------------------


def load_settings(
    *,
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    settings_cls: type[Settings] = Settings,
) -> LoadedSettings:
    """Build the settings. Raises :class:`SettingsError` with one line naming a bad setting."""
    fields = setting_fields(settings_cls)
    request = _LoadRequest(env=os.environ if env is None else env, config_file=config_file)
    request.layers["flag"] = flags = dict(flags or {})
    unknown = [name for name in flags if name not in fields]
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting")
    token = _REQUEST.set(request)
    try:
        settings = settings_cls(**_grouped(flags, fields))
    except ValidationError as exc:
        raise _explain(exc, request, request.sources(fields)) from None
    finally:
        _REQUEST.reset(token)
    path = request.path
    return LoadedSettings(settings, request.sources(fields), path if path and path.exists() else None)


def _explain(exc: ValidationError, request: _LoadRequest, sources: Mapping[str, Source]) -> SettingsError:
    """One line: the setting, its value (masked if secret), where the value came from, what is wrong."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    name = next((part for part in location if part in sources), ".".join(location))
    origin = sources.get(name, "default")
    where = {"file": f"in {request.path}", "env": f"from {env_name(name)}", "flag": f"from {flag_name(name)}"}
    shown = "***" if is_secret(name) else repr(request.layers.get(origin, {}).get(name))
    return SettingsError(f"{name}: invalid value {shown} {where.get(origin, '')}: {error['msg']}".replace("  ", " "))


def effective_settings(loaded: LoadedSettings) -> list[tuple[str, str, Any, Source]]:
    """``(section, name, value, source)`` rows for ``config show``, secrets masked."""
    rows: list[tuple[str, str, Any, Source]] = []
    for section in type(loaded.settings).model_fields:
        for name, value in getattr(loaded.settings, section).model_dump(mode="json").items():
            shown = "***" if is_secret(name) and value else value
            rows.append((section, name, shown, loaded.sources.get(name, "default")))
    return rows


# ---- what each setting means, for help texts ------------------------------------------------


@dataclass(frozen=True)
class SettingInfo:
    name: str
    section: str
    type: str  # readable: int, float, bool, str, path, list, "one of a|b|c"
    default: Any  # JSON-shaped; None = unset
    meaning: str


def readable_type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "one of " + "|".join(str(choice) for choice in get_args(annotation))
    if get_origin(annotation) in (Union, UnionType):  # X | None: the value is optional, the type is X
        return " or ".join(readable_type(arg) for arg in get_args(annotation) if arg is not type(None))
    names = {bool: "bool", int: "int", float: "float", str: "str", Path: "path", list: "list", dict: "table"}
    return names.get(get_origin(annotation) or annotation, str(annotation))


def describe_settings(settings_cls: type[Settings] = Settings) -> list[SettingInfo]:
    """Every setting: name, section, readable type, default and its one-line meaning."""
    return [
        SettingInfo(
            name,
            section,
            readable_type(info.annotation),
            to_jsonable_python(info.get_default(call_default_factory=True)),
            info.description or "",
        )
        for name, (section, info) in setting_fields(settings_cls).items()
    ]
