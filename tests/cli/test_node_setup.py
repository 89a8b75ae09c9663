"""The Node clients' setup (tests/clients/conftest.py): a clear message when ``npm ci`` cannot reach the
registry, and the ``node`` marker on every test under tests/clients."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import install_node_clients

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def _fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_npm_ci_without_the_network_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "package-lock.json").write_text('{"lockfileVersion": 3}')
    tools = tmp_path / "bin"
    tools.mkdir()
    _fake_tool(tools, "node", "exit 0")
    _fake_tool(tools, "npm", 'echo "npm error code ENOTFOUND" >&2; echo "npm error network request failed" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    message = install_node_clients(project)
    assert message is not None
    assert "needs the network" in message and "not node" in message and "ENOTFOUND" in message
    assert not (project / "node_modules" / ".codexgate-lock-hash").exists()


def test_other_npm_failures_are_reported_as_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "package-lock.json").write_text("{}")
    tools = tmp_path / "bin"
    tools.mkdir()
    _fake_tool(tools, "node", "exit 0")
    _fake_tool(tools, "npm", 'echo "npm error code EUSAGE lockfile out of date" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    message = install_node_clients(project)
    assert message is not None and message.startswith("npm ci failed") and "EUSAGE" in message


def test_every_client_test_is_node_marked() -> None:
    files = (ROOT / "tests" / "clients").rglob("test_*.py")
    test_functions = sum(len(re.findall(r"^(?:async )?def test_", path.read_text(), re.M)) for path in files)
    assert test_functions
    result = subprocess.run(
        [*PYTEST, "--collect-only", "-m", "not node", "tests/clients"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [line for line in result.stdout.splitlines() if "::" in line] == []
    assert re.search(rf"\b{test_functions} deselected", result.stdout), result.stdout
