"""The benchmark's processes: the upstream simulator and the gateway, pinned, on 127.0.0.1.

Both are children of the benchmark in their own session, and both get SIGTERM from the kernel if
the benchmark dies (``PR_SET_PDEATHSIG``); :func:`running_stack` stops them on every way out
(normal end, error, Ctrl-C). CPU time and RSS are read from ``/proc`` (no psutil).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codexgate.testing.ports import free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
GATEWAY_CPU = 0
CLIENT_CPU = 1  # the simulator and the benchmark client share the other core
HOST = "127.0.0.1"
START_TIMEOUT = 30.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size, from ``/proc/<pid>/statm``."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin_self() -> None:
    """Put the benchmark client on the simulator's core."""
    if can_pin():
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {CLIENT_CPU})


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(command: Sequence[str], cpu: int, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` pinned to ``cpu``, its output going to the file ``log`` (never a pipe that
    could fill up and block it)."""
    pinned = ["taskset", "-c", str(cpu), *command] if can_pin() else list(command)
    with log.open("ab") as output:
        return subprocess.Popen(  # taskset execs the command: the pid is the Python process itself
            pinned,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def wait_listening(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the {name} exited with {process.returncode}: {error}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the {name} did not listen on {HOST}:{port} within {START_TIMEOUT:.0f} s")


SIMULATOR_ANNOUNCEMENT = re.compile(rb"codexgate simulator listening on http://[^\s:]+:(\d+)")


def wait_announced(process: subprocess.Popen[bytes], log: Path, offset: int) -> int:
    """The port a simulator started with ``--port 0`` bound, read from the line it prints when ready
    (in ``log`` past ``offset``: the log is appended to, and may hold an earlier run's line)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = SIMULATOR_ANNOUNCEMENT.search(log.read_bytes()[offset:]) if log.exists() else None
        if found is not None:
            return int(found.group(1))
        if process.poll() is not None:
            error = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the simulator exited with {process.returncode}: {error}")
        time.sleep(0.05)
    raise RuntimeError(f"the simulator did not announce its port within {START_TIMEOUT:.0f} s")


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, a few seconds' grace, then SIGKILL; always reaps."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(5)


@dataclass
class Stack:
    simulator: subprocess.Popen[bytes]
    gateway: subprocess.Popen[bytes]
    sim_port: int
    gateway_port: int
    gateway_env: dict[str, str]

    @property
    def gateway_pid(self) -> int:
        return self.gateway.pid


def gateway_env(home: Path, sim_port: int, gateway_port: int) -> dict[str, str]:
    """The gateway's environment: default settings but for its home, upstream and port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEXGATE_", "CODEX_"))}
    env.update(
        CODEXGATE_HOME=str(home),
        CODEX_HOME=str(home / "codex"),
        CODEXGATE_UPSTREAM_URL=f"http://{HOST}:{sim_port}",
        CODEXGATE_HOST=HOST,
        CODEXGATE_PORT=str(gateway_port),
    )
    return env


@contextlib.contextmanager
def running_stack(
    home: Path, *, event_delay: float, tokens: int, gateway_command: Sequence[str] = ()
) -> Iterator[Stack]:
    """Simulator (``tokens`` deltas per answer, ``event_delay`` s between events) and gateway."""
    python = sys.executable
    simulator_command = [
        python,
        "-m",
        "codexgate.testing.simulator",
        "--port",
        "0",  # it binds a free port and prints it: nothing can take the port between pick and bind
        "--tokens",
        str(tokens),
        "--event-delay",
        str(event_delay),
    ]
    processes: list[subprocess.Popen[bytes]] = []
    sim_log, gateway_log = home / "simulator.log", home / "gateway.log"
    try:
        sim_log_offset = sim_log.stat().st_size if sim_log.exists() else 0
        processes.append(spawn(simulator_command, CLIENT_CPU, sim_log))
        sim_port = wait_announced(processes[0], sim_log, sim_log_offset)
        gateway_port = free_port()  # `codexgate serve` must be told its port
        env = gateway_env(home, sim_port, gateway_port)
        gateway = list(gateway_command) or [python, "-m", "codexgate", "serve"]
        processes.append(spawn(gateway, GATEWAY_CPU, gateway_log, env))
        wait_listening(gateway_port, processes[1], "gateway", gateway_log)
        yield Stack(processes[0], processes[1], sim_port, gateway_port, env)
    finally:
        stop(processes[::-1])
