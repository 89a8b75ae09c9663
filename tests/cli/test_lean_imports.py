"""The CLI's module graph stays lean: ``--version`` and ``--help`` load no server, HTTP client or login flow.

Checked by the modules a fresh interpreter holds after running the command (not by time): each case
runs ``codexgate.cli.main.run()`` in a subprocess and prints ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "CODEXGATE_HOME": "/nonexistent/codexgate-lean-test"},
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


def test_the_probe_sees_a_heavy_import() -> None:
    # The check above could pass by looking at the wrong process: a command that does load the
    # settings must show them in the same probe.
    _, modules, _ = loaded_modules("config", "show", "--json")
    assert {"codexgate.config", "pydantic"} <= modules
