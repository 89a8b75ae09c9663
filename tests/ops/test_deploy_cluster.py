"""deploy/cluster: N replicas + Redis + PostgreSQL behind nginx, checked by structure.

No container engine runs where this suite runs: the compose file is read with yaml and nginx.conf with
the small parser below (directives and blocks), and each rule a streaming, shared-state deployment needs
is asserted on what they say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from codexgate.config import DEFAULT_PORT, LimitsSettings, UpstreamSettings

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster"
SECRET_NAMES = ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "CODEXGATE_SECRET_KEY")


# --- a small nginx.conf parser ---------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    children: list[Directive] | None = None  # None: a simple directive; a list: a block

    def all(self, name: str) -> list[Directive]:
        return [child for child in self.children or [] if child.name == name]

    def one(self, name: str) -> Directive:
        found = self.all(name)
        assert len(found) == 1, f"{name}: {len(found)} in {self.name} {self.args}"
        return found[0]

    def value(self, name: str) -> list[str]:
        return self.one(name).args


@dataclass
class _Cursor:
    tokens: list[str]
    index: int = field(default=0)


def nginx_tokens(text: str) -> list[str]:
    """Words, quoted strings (quotes removed) and the punctuation ``{ } ;``; ``#`` comments dropped."""
    tokens: list[str] = []
    pattern = re.compile(r"\s+|#[^\n]*|\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|([{};])|([^\s{};\"'#]+)")
    position = 0
    while position < len(text):
        match = pattern.match(text, position)
        if match is None:
            raise ValueError(f"cannot read nginx.conf at {position}: {text[position : position + 20]!r}")
        double, single, punctuation, word = match.groups()
        if double is not None or single is not None:
            tokens.append(double if double is not None else single)
        elif punctuation is not None:
            tokens.append(punctuation)
        elif word is not None:
            tokens.append(word)
        position = match.end()
    return tokens


def _parse_block(cursor: _Cursor, closing: bool) -> list[Directive]:
    directives: list[Directive] = []
    words: list[str] = []
    while cursor.index < len(cursor.tokens):
        token = cursor.tokens[cursor.index]
        cursor.index += 1
        if token == ";":
            if not words:
                raise ValueError("empty directive")
            directives.append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            if not words:
                raise ValueError("block without a name")
            directives.append(Directive(words[0], words[1:], _parse_block(cursor, closing=True)))
            words = []
        elif token == "}":
            if not closing or words:
                raise ValueError("unbalanced '}' or a directive without ';'")
            return directives
        else:
            words.append(token)
    if closing or words:
        raise ValueError("unexpected end of nginx.conf")
    return directives


def parse_nginx(text: str) -> Directive:
    return Directive("main", [], _parse_block(_Cursor(nginx_tokens(text)), closing=False))


def seconds(value: str) -> float:
    """nginx time: ``330s``, ``5m``, ``1h``, ``300`` (seconds), ``500ms``."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert match, value
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def size_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG])?", value)
    assert match, value
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[(match.group(2) or "").lower()]


def test_the_parser_reads_blocks_quotes_and_comments() -> None:
    conf = parse_nginx('a 1; # note\nhttp { map $x $y { default up; "" ""; } server { listen 80; } }')
    assert conf.value("a") == ["1"]
    http = conf.one("http")
    assert http.one("map").children == [Directive("default", ["up"]), Directive("", [""])]
    assert http.one("server").value("listen") == ["80"]
    for broken in ("a 1", "http { a 1; ", "a 1; }", "{ a 1; }"):
        with pytest.raises(ValueError):
            parse_nginx(broken)
    assert seconds("5m") == 300 and seconds("330s") == 330 and seconds("300") == 300
    assert size_bytes("20m") == 20 * 1024 * 1024 and size_bytes("64k") == 65536


# --- the files ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((CLUSTER / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert set(found) == {"codexgate", "redis", "postgres", "proxy"}
    return found  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return parse_nginx((CLUSTER / "nginx.conf").read_text())


@pytest.fixture(scope="module")
def gateway_location(nginx: Directive) -> Directive:
    [server] = nginx.one("http").all("server")
    [location] = [location for location in server.all("location") if location.args == ["/"]]
    return location


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" spelling
        env = dict(item.split("=", 1) for item in env)
    return {str(name): str(value) for name, value in env.items()}


def required_variable(value: str, name: str) -> bool:
    """``value`` interpolates ``${name:?...}`` (compose refuses to start when it is unset or empty)."""
    return re.search(r"\$\{" + re.escape(name) + r":\?[^}]*\}", value) is not None


# --- compose.yaml ---------------------------------------------------------------------------------------


def test_several_replicas_built_from_the_repository_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["codexgate"]
    assert gateway["deploy"]["replicas"] >= 2
    build = gateway["build"]
    context = (CLUSTER / build["context"]).resolve()
    assert context == ROOT and (context / build.get("dockerfile", "Dockerfile")).is_file()
    # replicas share no published port (the proxy is the only way in) and no data volume
    assert "ports" not in gateway and str(DEFAULT_PORT) in [str(port) for port in gateway.get("expose", [])]
    assert not gateway.get("volumes")
    assert gateway.get("stop_grace_period")


def test_images_are_pinned_by_exact_version_tags(services: dict[str, dict[str, Any]]) -> None:
    expected = {"redis": r"redis:7\.\d+\.\d+(-[a-z0-9.]+)?", "postgres": r"postgres:15\.\d+(-[a-z0-9.]+)?"}
    expected["proxy"] = r"nginx:\d+\.\d+\.\d+(-[a-z0-9.]+)?"
    for name, pattern in expected.items():
        image = services[name]["image"]
        assert re.fullmatch(pattern, image), (name, image)
        assert "latest" not in image


def test_only_the_proxy_is_published_and_only_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    for name in ("codexgate", "redis", "postgres"):
        assert "ports" not in services[name], name
    [port] = services["proxy"]["ports"]
    host, _, rest = str(port).partition(":")
    assert host == "127.0.0.1" and rest.endswith(":8080")
    nginx_conf = services["proxy"]["volumes"]
    assert any(str(volume).startswith("./nginx.conf:/etc/nginx/nginx.conf") for volume in nginx_conf)


def test_redis_and_postgres_sit_on_an_internal_network_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    networks = compose["networks"]
    for name in ("redis", "postgres"):
        attached = services[name]["networks"]
        assert attached and all(networks[network] and networks[network].get("internal") is True for network in attached)
    shared = set(services["redis"]["networks"]) & set(services["codexgate"]["networks"])
    assert shared and set(services["postgres"]["networks"]) & set(services["codexgate"]["networks"])
    # the proxy reaches the replicas but not the data stores
    assert not set(services["proxy"]["networks"]) & set(services["redis"]["networks"])
    assert set(services["proxy"]["networks"]) & set(services["codexgate"]["networks"])


def test_the_gateway_settings_point_at_redis_and_postgres(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["codexgate"])
    assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/0", env["CODEXGATE_STATE_URL"])
    database = env["CODEXGATE_DATABASE_URL"]
    assert re.fullmatch(r"postgresql://codexgate:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:5432/codexgate", database)
    assert required_variable(env["CODEXGATE_SECRET_KEY"], "CODEXGATE_SECRET_KEY")
    assert env["CODEXGATE_STATE_PREFIX"]
    assert "CODEXGATE_ALLOWED_HOSTS" in env  # the public name; Host reaches the replicas unchanged
    assert "CODEXGATE_ALLOW_NO_AUTH" not in env and "CODEXGATE_HOST" not in env  # the image's bind rule stays
    from codexgate.config import SETTING_SECTIONS, env_name

    known = {env_name(name) for name in SETTING_SECTIONS}
    assert {name for name in env if name.startswith("CODEXGATE_")} <= known  # every variable is a real setting
    postgres_env = environment(services["postgres"])
    assert postgres_env["POSTGRES_USER"] == "codexgate" and postgres_env["POSTGRES_DB"] == "codexgate"
    assert required_variable(postgres_env["POSTGRES_PASSWORD"], "POSTGRES_PASSWORD")


def test_redis_requires_a_password_and_persists(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert '--requirepass "$$REDIS_PASSWORD"' in command  # $$: read by the shell inside, not interpolated
    assert "--appendonly yes" in command
    assert required_variable(environment(redis)["REDIS_PASSWORD"], "REDIS_PASSWORD")
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in services["postgres"]["volumes"])


def test_no_secret_value_is_committed(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        env = environment(service)
        for secret in SECRET_NAMES:
            if secret in env:  # a reference compose must resolve from .env, never a value
                assert required_variable(env[secret], secret), (name, secret)
    # with every ${...} reference and $$VAR removed, nothing that looks like a random secret is left
    committed = (CLUSTER / "compose.yaml").read_text()
    bare = re.sub(r"\$\{[^}]*\}|\$\$[A-Z_]+", "", committed)
    random_looking = [
        token
        for token in re.findall(r"[A-Za-z0-9+=_-]{16,}", bare)
        if sum(char.isdigit() for char in token) >= 3 and sum(char.isalpha() for char in token) >= 3
    ]
    assert not random_looking, random_looking
    assert "change-me" not in committed
    example_text = (CLUSTER / ".env.example").read_text()
    example = dict(
        line.split("=", 1) for line in example_text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    for secret in SECRET_NAMES:
        assert example[secret] == "change-me"
    assert "openssl rand" in example_text
    assert ".env" in (CLUSTER / ".gitignore").read_text().split()


def test_every_service_has_a_health_check_and_waits_on_its_dependencies(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) >= 2, name
    assert "/health" in " ".join(services["codexgate"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    gateway_needs = services["codexgate"]["depends_on"]
    assert gateway_needs == {name: {"condition": "service_healthy"} for name in ("redis", "postgres")}
    assert services["proxy"]["depends_on"] == {"codexgate": {"condition": "service_healthy"}}


def test_restart_policies_do_not_loop_on_a_configuration_error(services: dict[str, dict[str, Any]]) -> None:
    for name in ("codexgate", "proxy"):  # both exit at once on a bad configuration
        policy = str(services[name]["restart"])
        assert re.fullmatch(r"on-failure:\d+", policy), (name, policy)
    for name, service in services.items():
        assert str(service.get("restart", "no")) != "always", name


# --- nginx.conf -----------------------------------------------------------------------------------------


def test_nginx_streams_both_ways(gateway_location: Directive) -> None:
    assert gateway_location.value("proxy_buffering") == ["off"]
    assert gateway_location.value("proxy_request_buffering") == ["off"]
    assert gateway_location.value("proxy_cache") == ["off"]


def test_nginx_timeouts_outlast_the_gateway_read_timeout(nginx: Directive, gateway_location: Directive) -> None:
    read_timeout = UpstreamSettings().read_timeout
    assert seconds(gateway_location.value("proxy_read_timeout")[0]) >= read_timeout
    assert seconds(gateway_location.value("proxy_send_timeout")[0]) >= read_timeout
    [server] = nginx.one("http").all("server")
    assert seconds(server.value("send_timeout")[0]) >= read_timeout


def test_nginx_speaks_http11_keepalive_and_passes_websocket_upgrades(
    nginx: Directive, gateway_location: Directive
) -> None:
    http = nginx.one("http")
    assert gateway_location.value("proxy_http_version") == ["1.1"]
    [upstream_name] = [arg.removeprefix("http://") for arg in gateway_location.value("proxy_pass")]
    [upstream] = [block for block in http.all("upstream") if block.args == [upstream_name]]
    assert int(upstream.value("keepalive")[0]) > 0
    [server] = upstream.all("server")
    assert server.args[0] == f"codexgate:{DEFAULT_PORT}"
    # the map: "upgrade" when the client asks for one, an empty Connection (keep-alive) otherwise
    [upgrade_map] = [block for block in http.all("map") if block.args[0] == "$http_upgrade"]
    variable = upgrade_map.args[1]
    entries = {entry.name: entry.args for entry in upgrade_map.children or []}
    assert entries["default"] == ["upgrade"] and entries[""] == [""]
    headers = {entry.args[0].lower(): entry.args[1:] for entry in gateway_location.all("proxy_set_header")}
    assert headers["upgrade"] == ["$http_upgrade"]
    assert headers["connection"] == [variable]


def test_nginx_body_size_matches_the_gateway(nginx: Directive) -> None:
    [server] = nginx.one("http").all("server")
    assert size_bytes(server.value("client_max_body_size")[0]) == LimitsSettings().max_body_size


def test_nginx_sets_the_forwarded_headers_itself_and_keeps_host(gateway_location: Directive) -> None:
    headers = {entry.args[0].lower(): entry.args[1:] for entry in gateway_location.all("proxy_set_header")}
    assert headers["host"] in (["$http_host"], ["$host"])
    # set from what nginx saw, never appended to what the client sent
    assert headers["x-forwarded-for"] == ["$remote_addr"]
    assert headers["x-forwarded-proto"] == ["$scheme"]
    assert headers["forwarded"] == [""]


def test_nginx_listens_where_compose_publishes_and_answers_its_health_check(
    nginx: Directive, services: dict[str, dict[str, Any]]
) -> None:
    [server] = nginx.one("http").all("server")
    assert server.value("listen") == ["8080"]
    [health] = [location for location in server.all("location") if location.args == ["=", "/proxy-health"]]
    assert health.value("return")[0] == "200"
    assert "http://127.0.0.1:8080/proxy-health" in services["proxy"]["healthcheck"]["test"]


def test_readme_covers_the_steps_and_names_the_shared_settings() -> None:
    readme = (CLUSTER / "README.md").read_text()
    for step in (
        "cp .env.example .env",
        "docker compose up -d --scale codexgate=3",
        "docker compose run --rm codexgate login --device",
        "docker compose run --rm codexgate keys create",
        "/health",
        "state_url",
        "secret_key",
        "previous_secret_keys",
        "X-Forwarded",
        "allowed_hosts",
    ):
        assert step in readme, step
