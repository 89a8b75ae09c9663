"""Dockerfile, compose.yaml, .dockerignore and the systemd unit, checked by structure.

No Docker engine runs where this suite runs, so the image is not built here; these tests check what
a build and a run depend on: the base image, uv installing from the lockfile, a non-root user,
the /data volume, the port, the health check and the command.
"""

from __future__ import annotations

import configparser
import contextlib
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import yaml

from codexgate.config import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert isinstance(parsed, list)
        return [str(part) for part in parsed]
    return shlex.split(arguments)


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def test_dockerfile_structure() -> None:
    instructions = dockerfile_instructions((ROOT / "Dockerfile").read_text())
    keywords = [keyword for keyword, _ in instructions]
    # the base image is pinned by an exact version tag (major.minor.patch), never a moving one
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base) for base in bases), bases
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "uv sync --frozen" in runs and "--no-dev" in runs
    copies = " ".join(args for keyword, args in instructions if keyword == "COPY")
    assert "uv.lock" in copies and "pyproject.toml" in copies

    final = final_stage(instructions)
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "CODEXGATE_HOME=/data" in env and "CODEXGATE_HOST=0.0.0.0" in env
    assert "CODEXGATE_ALLOW_NO_AUTH" not in env  # the bind-safety rule stays on: a key is required
    volumes = [exec_form(args) for keyword, args in final if keyword == "VOLUME"]
    assert ["/data"] in volumes
    exposed = [port.split("/")[0] for keyword, args in final if keyword == "EXPOSE" for port in args.split()]
    assert exposed == [str(DEFAULT_PORT)]
    assert f"CODEXGATE_PORT={DEFAULT_PORT}" in env

    [healthcheck] = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[0] == "python" and "/health" in " ".join(command)
    assert "curl" not in healthcheck and "wget" not in healthcheck
    compile(command[-1], "<healthcheck>", "exec")  # the inline script is valid Python
    assert "server.json" in command[-1] and "CODEXGATE_PORT" in command[-1]

    entrypoint = next(exec_form(args) for keyword, args in reversed(final) if keyword == "ENTRYPOINT")
    cmd = next(exec_form(args) for keyword, args in reversed(final) if keyword == "CMD")
    assert [*entrypoint, *cmd][:2] == ["codexgate", "serve"]
    assert keywords.index("USER") < len(keywords) - 1


def test_compose_file_parses_with_the_volume_and_port() -> None:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = document["services"]["codexgate"]
    assert service["build"] == "."
    assert any(str(port).endswith(f":{DEFAULT_PORT}") for port in service["ports"])
    [volume] = service["volumes"]
    name, target = volume.split(":")[:2]
    assert target == "/data" and name in document["volumes"]
    assert "CODEXGATE_ALLOW_NO_AUTH" not in (service.get("environment") or {})
    # without a key the server exits (code 2): the policy must not restart it forever
    policy = str(service["restart"])
    assert re.fullmatch(r"on-failure:\d+", policy), policy


def test_build_backend_is_pinned() -> None:
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert requires and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9.]+", requirement) for requirement in requires)


def test_readme_device_login_maps_no_port() -> None:
    readme = (ROOT / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if "login --device" in line and "docker" in line]
    assert " -p " not in line


def test_dockerignore_keeps_secrets_and_the_venv_out_of_the_build_context() -> None:
    patterns = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")
    }
    for needed in (".git", ".venv", "auth.json", "keys.json", "*.db", "tests"):
        assert needed in patterns
    for kept in ("src", "uv.lock", "pyproject.toml", "README.md"):
        assert kept not in patterns


def test_systemd_user_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((ROOT / "deploy" / "codexgate.service").read_text())
    program, *args = unit["Service"]["ExecStart"].split()
    assert program.endswith("/codexgate") and args == ["serve"]
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "default.target"  # a user unit, not multi-user.target
    assert "User" not in unit["Service"]


# ---- the health check asks the port the server really uses ---------------------------------------


def healthcheck_script() -> str:
    final = final_stage(dockerfile_instructions((ROOT / "Dockerfile").read_text()))
    [healthcheck] = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    return command[2]


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def health_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_healthcheck(home: Path, port_variable: int) -> int:
    env = {**os.environ, "CODEXGATE_HOME": str(home), "CODEXGATE_PORT": str(port_variable)}
    return subprocess.run(
        [sys.executable, "-c", healthcheck_script()], env=env, capture_output=True, timeout=30
    ).returncode


def test_healthcheck_reads_the_port_from_server_json(tmp_path: Path) -> None:
    with health_server() as port:
        closed = _closed_port()
        # No server.json yet: CODEXGATE_PORT.
        assert _run_healthcheck(tmp_path, port) == 0
        assert _run_healthcheck(tmp_path, closed) != 0
        # The server wrote the port it bound (as run_server does): that port, whatever CODEXGATE_PORT says.
        (tmp_path / "server.json").write_text(json.dumps({"url": f"http://0.0.0.0:{port}"}))
        assert _run_healthcheck(tmp_path, closed) == 0
        (tmp_path / "server.json").write_text(json.dumps({"url": f"http://0.0.0.0:{closed}"}))
        assert _run_healthcheck(tmp_path, port) != 0
