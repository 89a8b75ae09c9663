"""The test harness itself: clear messages when a server is missing, no orphan server after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.services import PostgresServer, RedisServer, ServiceMissing

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_redis_server_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEXGATE_REDIS_SERVER", str(tmp_path / "no-such-redis-server"))
    with pytest.raises(ServiceMissing, match=r"CODEXGATE_REDIS_SERVER=.*not an executable"):
        RedisServer(tmp_path)


def test_a_missing_postgresql_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEXGATE_PG_BIN", str(tmp_path))
    with pytest.raises(ServiceMissing, match=r"CODEXGATE_PG_BIN=.*no initdb"):
        PostgresServer()


def test_a_server_does_not_outlive_a_killed_test_process(tmp_path: Path) -> None:
    starter = (
        "import sys, time; from pathlib import Path; from tests.services import RedisServer; "
        f"server = RedisServer(Path({str(tmp_path)!r})).start(); print(server.process.pid, flush=True); time.sleep(60)"
    )
    test_process = subprocess.Popen([sys.executable, "-c", starter], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert test_process.stdout is not None
    line = test_process.stdout.readline()
    assert line.strip().isdigit(), f"the starter printed {line!r}"
    server_pid = int(line)
    test_process.send_signal(signal.SIGKILL)
    test_process.wait(10)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{server_pid}").exists():
        status = Path(f"/proc/{server_pid}/status").read_text() if Path(f"/proc/{server_pid}").exists() else ""
        if "zombie" in status:
            break
        if time.monotonic() > deadline:
            os.kill(server_pid, signal.SIGKILL)
            pytest.fail("redis-server kept running after the process that started it was killed")
        time.sleep(0.05)
