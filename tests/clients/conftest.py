"""Node clients for the suite: ``npm ci`` once per run, before the first test (so its time counts against
no test's timeout), and only when node tests are selected; skipped when node_modules matches the lockfile.

Every test under ``tests/clients/`` drives Node.js (the openai Node SDK or the Codex CLI) and gets the
``node`` marker here, so ``-m "not node"`` leaves them all out; the Codex CLI test is also ``slow``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STAMP = ROOT / "node_modules" / ".codexgate-lock-hash"
NPM_CI_TIMEOUT = 900.0
#: what npm prints when it cannot reach the registry
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH", "network")
SLOW_TESTS = ("codex_cli",)

_setup_error: list[str] = []


@dataclass(frozen=True)
class NodeTools:
    node: str
    codex: Path
    root: Path


def _lock_hash(root: Path = ROOT) -> str:
    return hashlib.sha256((root / "package-lock.json").read_bytes()).hexdigest()


def _under_here(item: pytest.Item) -> bool:
    return Path(str(item.path)).resolve().is_relative_to(HERE)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of this folder before ``-m`` selects (``tryfirst``: ahead of the deselection)."""
    for item in items:
        if _under_here(item):
            item.add_marker(pytest.mark.node)
            if any(part in item.name for part in SLOW_TESTS):
                item.add_marker(pytest.mark.slow)


def npm_ci_failure(output: str) -> str:
    """The message for a failed ``npm ci``: a clear one when the registry could not be reached."""
    if any(marker in output for marker in NETWORK_ERRORS):
        return (
            "npm ci needs the network to install the Node clients from package-lock.json (the openai Node SDK "
            "and the Codex CLI) and could not reach the npm registry. Run `npm ci` once while online, or leave "
            'the Node tests out with -m "not node".\n' + output[-1500:]
        )
    return f"npm ci failed:\n{output[-3000:]}"


def install_node_clients(root: Path = ROOT) -> str | None:
    """Run ``npm ci`` in ``root`` unless its node_modules matches the lockfile. None when ready, else why not."""
    stamp = root / "node_modules" / ".codexgate-lock-hash"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return (
            "Node.js and npm are needed for the client tests (the README's test command installs the rest); "
            'leave them out with -m "not node"'
        )
    wanted = _lock_hash(root)
    if stamp.exists() and stamp.read_text() == wanted:
        return None
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return npm_ci_failure(f"npm ci did not finish within {NPM_CI_TIMEOUT:.0f} s (network?)")
    if result.returncode != 0:
        return npm_ci_failure(result.stdout + "\n" + result.stderr)
    stamp.write_text(wanted)
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the tests are selected: install the Node clients if any selected test needs them."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("node") and _under_here(item) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not (STAMP.exists() and STAMP.read_text() == _lock_hash()):
        reporter.write_line("installing the Node clients (npm ci) before the node tests …")
    error = install_node_clients()
    if error is not None:
        _setup_error.append(error)


@pytest.fixture(scope="session")
def node_tools() -> NodeTools:
    if _setup_error:
        pytest.fail(_setup_error[0], pytrace=False)
    error = install_node_clients()  # normally done by pytest_collection_finish already: a no-op then
    if error is not None:
        pytest.fail(error, pytrace=False)
    node = shutil.which("node")
    assert node is not None
    codex = ROOT / "node_modules" / ".bin" / "codex"
    assert codex.exists(), "npm ci did not install the Codex CLI"
    return NodeTools(node=node, codex=codex, root=ROOT)
