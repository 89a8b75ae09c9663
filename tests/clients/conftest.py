"""Node clients for the suite: `npm ci` once per run (skipped when node_modules matches the lockfile)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAMP = ROOT / "node_modules" / ".codexgate-lock-hash"


@dataclass(frozen=True)
class NodeTools:
    node: str
    codex: Path
    root: Path


def _lock_hash() -> str:
    return hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def node_tools() -> NodeTools:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are needed for the client tests (the README's test command installs the rest)")
    wanted = _lock_hash()
    if not (STAMP.exists() and STAMP.read_text() == wanted):
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        STAMP.write_text(wanted)
    codex = ROOT / "node_modules" / ".bin" / "codex"
    assert codex.exists(), "npm ci did not install the Codex CLI"
    return NodeTools(node=node, codex=codex, root=ROOT)
