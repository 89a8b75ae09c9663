"""``codexgate serve`` as a user runs it: starts on loopback quickly, says where, answers /health."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, write_auth_json


@pytest.mark.slow
def test_serve_starts_within_10_seconds_and_stops_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_auth_json(home)
    port = free_port()
    env = {
        **os.environ,
        "CODEXGATE_HOME": str(home),
        "CODEX_HOME": str(tmp_path / "codex"),
        "CODEXGATE_PORT": str(port),
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "codexgate", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = None
        while time.monotonic() - started < 10:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200, "no /health answer within 10 s"
        assert health.json()["credentials"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out and str(home / "auth.json") in out
    assert "Traceback" not in err


@pytest.mark.slow
def test_public_bind_without_keys_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "CODEXGATE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "codexgate", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "allow-no-auth" in result.stderr and "Traceback" not in result.stderr
