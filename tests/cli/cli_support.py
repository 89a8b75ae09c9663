"""Running the real ``codexgate`` console script in a subprocess, as a user does."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: the console script installed in this venv (``[project.scripts]``), not ``python -m``.
CODEXGATE = str(Path(sys.executable).with_name("codexgate"))
STARTUP_DEADLINE = 60.0  # a loaded 2-core machine can take ~10 s to import it all
BASE_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/v1")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without any CODEXGATE_*/CODEX_HOME of the caller's, HOME in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEXGATE_") and k != "CODEX_HOME"}
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    env.update({"HOME": str(home), "NO_COLOR": "1", "COLUMNS": "100"})
    env.update(extra)
    return env


def shared_state_env(tmp_path: Path, home: Path, state_url: str, prefix: str, secret_key: str) -> dict[str, str]:
    """:func:`cli_env` for a command run from ``home`` against the shared state (``state_url``)."""
    return cli_env(
        tmp_path,
        CODEXGATE_HOME=str(home),
        CODEXGATE_STATE_URL=state_url,
        CODEXGATE_STATE_PREFIX=prefix,
        CODEXGATE_SECRET_KEY=secret_key,
    )


def run_cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CODEXGATE, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


class RunningCommand:
    """A long-running command whose stdout and stderr lines are collected by threads as they come."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [CODEXGATE, *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            for stream, sink in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)
            self._lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = STARTUP_DEADLINE) -> re.Match[str]:
        """The first match of ``pattern`` in the output so far or to come; fails if the command exits."""
        deadline = time.monotonic() + timeout
        for line in self.stdout + self.stderr:
            match = pattern.search(line)
            if match:
                return match
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    raise AssertionError(f"command exited ({self.process.returncode}): {self.output}") from None
                continue
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"no {pattern.pattern!r} within {timeout:.0f} s: {self.output}")

    @property
    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def stop(self, signum: int, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise
        for pump in self._pumps:
            pump.join(10)
        return code
