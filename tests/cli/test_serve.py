"""``codexgate serve`` as a user runs it: starts on loopback, says where, answers /health, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_until, write_auth_json

STARTUP_DEADLINE = 60.0  # how long a failing test waits; a loaded 2-core machine can take ~10 s to import it all


def _health(port: int, process: subprocess.Popen[str]) -> httpx.Response | None:
    """The /health answer, or None while the server is not listening yet (fails if it exited)."""
    assert process.poll() is None, "codexgate serve exited before it answered /health"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    except httpx.TransportError:
        return None


@pytest.mark.slow
def test_serve_starts_says_where_and_stops_cleanly(tmp_path: Path) -> None:
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
        answers: list[httpx.Response] = []

        def answered() -> bool:
            health = _health(port, process)
            if health is not None:
                answers.append(health)
            return bool(answers)

        assert wait_until(answered, timeout=STARTUP_DEADLINE, interval=0.1), (
            f"no /health within {STARTUP_DEADLINE:.0f} s"
        )
        print(f"codexgate serve answered /health {time.monotonic() - started:.1f} s after it was started")
        assert answers[-1].status_code == 200
        assert answers[-1].json()["credentials"] is True
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
