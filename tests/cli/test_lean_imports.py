"""The CLI's module graph stays lean: ``--version``, ``--help`` and the commands that read the settings load
no server, HTTP client or login flow; the server itself loads no module only an unused feature needs.

Checked by the modules a fresh interpreter holds after running the command (not by time): each case
runs ``codexgate.cli.main.run()`` in a subprocess and prints ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import pytest

#: top-level packages and codexgate modules no command may load just to print its version or help
FORBIDDEN = (
    "aiohttp",
    "httpx",
    "uvicorn",
    "fastapi",
    "starlette",
    "codexgate.server",
    "codexgate.auth.login",
    "codexgate.auth.oauth_client",
    "codexgate.console",
    "codexgate.upstream",
    "codexgate.testing",
    "playwright",
)

PROBE = """
import json, sys
sys.argv = ["codexgate", *json.loads(sys.argv[1])]
from codexgate.cli.main import run
try:
    run()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_modules(*args: str) -> tuple[int, set[str], str]:
    """Exit code, modules loaded and the command's own output of ``codexgate ARGS`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="codexgate-lean-") as home:
        completed = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps(list(args))],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "CODEXGATE_HOME": home},
        )
    output, _, last = completed.stdout.rstrip("\n").rpartition("\n")
    report = json.loads(last)
    return int(report["code"] or 0), set(report["modules"]), output


def offenders(modules: set[str]) -> list[str]:
    return sorted(name for name in modules for banned in FORBIDDEN if name == banned or name.startswith(banned + "."))


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("keys", "--help"), ("serve", "--help")])
def test_version_and_help_load_no_server_client_or_login(args: tuple[str, ...]) -> None:
    code, modules, output = loaded_modules(*args)
    assert code == 0
    assert "codexgate" in output  # the command did print its version or help
    assert "codexgate.cli.main" in modules
    assert offenders(modules) == []


def test_version_loads_neither_settings_nor_rich() -> None:
    code, modules, output = loaded_modules("--version")
    assert code == 0 and output.startswith("codexgate ")
    assert not {"codexgate.config", "pydantic_settings", "rich.console", "asyncio"} & modules


#: commands that read the settings (and files) and print; they exit 1 where they need an account or a server
SETTINGS_COMMANDS = [
    ("keys", "list"),
    ("keys", "list", "--json"),
    ("accounts", "list"),
    ("config", "show"),
    ("stats",),
    ("status",),
    ("admin", "clear-password"),
]


@pytest.mark.parametrize("args", SETTINGS_COMMANDS)
def test_settings_commands_load_no_server_client_or_login(args: tuple[str, ...]) -> None:
    code, modules, _ = loaded_modules(*args)
    assert code in (0, 1)
    assert "codexgate.config" in modules  # the command did read the settings
    assert offenders(modules) == []
    assert "pydantic_settings" not in modules


@pytest.mark.parametrize("args", [("serve", "--port", "abc"), ("--home", "/nonexistent/x", "serve", "--no-such", "1")])
def test_serve_starts_without_typer(args: tuple[str, ...]) -> None:
    # A bad flag stops serve after it read its settings: the direct path, typer never loaded.
    code, modules, _ = loaded_modules(*args)
    assert code == 2
    assert "codexgate.config" in modules
    assert not {"typer", "codexgate.cli.app", "codexgate.cli.keys_cmd"} & modules


def test_models_refresh_loads_no_upstream_module() -> None:
    # It writes the request file the running server's catalog watches, by the names the server uses.
    code, modules, _ = loaded_modules("models", "refresh", "--timeout", "0")
    assert code == 1  # no server answered
    assert "codexgate.config" in modules
    assert offenders(modules) == []


def test_models_refresh_writes_the_files_the_server_watches() -> None:
    from codexgate.cli import models_cmd
    from codexgate.upstream import models

    assert models_cmd.REFRESH_REQUEST_FILE == models.REFRESH_REQUEST_FILE
    assert models_cmd.REFRESH_DONE_FILE == models.REFRESH_DONE_FILE


#: commands that print no table here (no keys, no accounts, not signed in, no server): plain lines only
PLAIN_OUTPUT_COMMANDS = [
    ("keys", "list"),
    ("keys", "list", "--json"),
    ("accounts", "list"),
    ("accounts", "list", "--json"),
    ("status",),
    ("admin", "clear-password"),
    ("models", "refresh", "--timeout", "0"),
]


@pytest.mark.parametrize("args", PLAIN_OUTPUT_COMMANDS)
def test_plain_output_loads_neither_rich_console_nor_asyncio(args: tuple[str, ...]) -> None:
    # Output to a pipe, no table: rich's console is not needed to write a line (nor asyncio to read files).
    code, modules, _ = loaded_modules(*args)
    assert code in (0, 1)
    assert "codexgate.config" in modules
    assert not {"rich.console", "rich.table", "asyncio"} & modules


def test_a_table_still_loads_rich() -> None:
    # The check above could pass with rich never loaded at all: a table does load it.
    code, modules, output = loaded_modules("config", "show")
    assert code == 0 and "log_level" in output
    assert {"rich.console", "rich.table"} <= modules


SERVER_PROBE = """
import json, sys, tempfile
from codexgate.config import load_settings
from codexgate.server.runner import uvicorn_config
uvicorn_config(load_settings(env={"CODEXGATE_HOME": tempfile.mkdtemp()}).settings)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_server_loads_no_unused_feature() -> None:
    # Without state_url: no Redis client or cipher; no pydantic v1 (FastAPI loads it to check a typed route
    # parameter); no pydantic-settings.
    completed = subprocess.run(
        [sys.executable, "-c", SERVER_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(completed.stdout.splitlines()[-1]))
    assert {"fastapi", "aiohttp", "codexgate.server.app"} <= modules  # the probe did build the server
    heavy = {"redis", "cryptography", "pydantic.v1", "pydantic_settings", "codexgate.state.cluster"}
    assert heavy & modules == set()


def test_the_probe_sees_a_heavy_import() -> None:
    # The check above could pass by looking at the wrong process: a command that does load the
    # settings must show them in the same probe.
    _, modules, _ = loaded_modules("config", "show", "--json")
    assert {"codexgate.config", "pydantic"} <= modules
