"""Start-up time of the ``codexgate`` commands, and of ``codexgate serve`` until its ``/health`` answers.

Every command runs as its own process through the venv's own ``codexgate`` entry point (the one next
to this Python), in a throw-away home with no ``CODEXGATE_*`` variable of the caller's, several times.
The table shows the median and the fastest run, and the median and least CPU time of the process
(user + system: on a machine busy with other work it moves less than the wall time). A command that prints
nothing useful without an account (``status``, ``admin clear-password``, ``models refresh --timeout
0``) still starts, parses its arguments and reads its files before it exits 1: that is what is timed.
``serve`` is timed from the process's start to the first 200 from ``GET /health``; its RSS at that
moment is shown too.

    uv run python bench/bench_startup.py            # --runs N (default 7), --out PATH (JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
HEALTH_TIMEOUT = 30.0
POLL_INTERVAL = 0.002
CLI_TARGET = 0.3
SERVE_TARGET = 0.5

#: the commands that start no server, as given on the command line
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--version",),
    ("--help",),
    ("keys", "list"),
    ("keys", "list", "--json"),
    ("accounts", "list"),
    ("config", "show"),
    ("stats",),
    ("status",),
    ("admin", "clear-password"),
    ("models", "refresh", "--timeout", "0"),
    ("serve", "--help"),
)


@dataclass
class Timing:
    command: str
    median_s: float
    min_s: float
    cpu_s: float
    exit_code: int
    target_s: float
    rss_mb: float | None = None
    cpu_min_s: float | None = None  # the least CPU of the runs: on a busy machine the steadiest figure


def entry_point() -> Path:
    """The venv's own console script (next to the running interpreter)."""
    script = Path(sys.executable).parent / "codexgate"
    if not script.exists():
        raise SystemExit(f"no codexgate entry point next to {sys.executable}: run with `uv run python …`")
    return script


def clean_env(home: Path) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE dropped: an installed venv has its bytecode; the warm-up runs write it here.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CODEXGATE_") and name != "PYTHONDONTWRITEBYTECODE"
    }
    env.update({"CODEXGATE_HOME": str(home), "CODEX_HOME": str(home / "codex"), "COLUMNS": "120"})
    return env


def time_command(script: Path, args: Sequence[str], env: Mapping[str, str], runs: int) -> Timing:
    durations: list[float] = []
    cpu: list[float] = []
    code = 0
    for _ in range(runs):
        cpu_before = children_cpu()
        started = time.perf_counter()
        completed = subprocess.run(
            [str(script), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        durations.append(time.perf_counter() - started)
        cpu.append(children_cpu() - cpu_before)
        code = completed.returncode
    median = statistics.median
    return Timing(" ".join(args), median(durations), min(durations), median(cpu), code, CLI_TARGET, cpu_min_s=min(cpu))


def children_cpu() -> float:
    """User + system CPU seconds of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def health_ok(port: int) -> bool:
    """One ``GET /health``: True on a 200, False while nothing listens yet."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def serve_once(script: Path, home: Path, env: Mapping[str, str]) -> tuple[float, float, float]:
    """Seconds from the process's start to the first 200 from /health, its CPU seconds and RSS (MiB) then."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(script), "serve", "--host", HOST, "--port", str(port), "--home", str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not health_ok(port):
            if process.poll() is not None:
                raise SystemExit(f"codexgate serve exited with {process.returncode} before answering /health")
            if time.perf_counter() - started > HEALTH_TIMEOUT:
                raise SystemExit(f"codexgate serve did not answer /health within {HEALTH_TIMEOUT:g} s")
            time.sleep(POLL_INTERVAL)
        elapsed = time.perf_counter() - started
        return elapsed, process_cpu(process.pid), rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def time_serve(script: Path, home: Path, env: Mapping[str, str], runs: int) -> Timing:
    results = [serve_once(script, home, env) for _ in range(runs)]
    durations = [duration for duration, _, _ in results]
    return Timing(
        "serve (to /health)",
        statistics.median(durations),
        min(durations),
        statistics.median(cpu for _, cpu, _ in results),
        0,
        SERVE_TARGET,
        rss_mb=statistics.median(rss for _, _, rss in results),
        cpu_min_s=min(cpu for _, cpu, _ in results),
    )


def table(timings: Sequence[Timing]) -> str:
    width = max(len(t.command) for t in timings)
    header = f"{'command':<{width}}  median s   min s   CPU s  (min)  target     exit  RSS MiB"
    lines = [header, "-" * len(header)]
    for t in timings:
        verdict = "ok" if t.median_s <= t.target_s else "over"
        rss = f"{t.rss_mb:.1f}" if t.rss_mb is not None else "-"
        cpu_min = f"{t.cpu_min_s:.3f}" if t.cpu_min_s is not None else "-"
        figures = f"{t.median_s:8.3f}  {t.min_s:6.3f}  {t.cpu_s:6.3f} {cpu_min:>6}  <{t.target_s:.1f} {verdict:<4}"
        lines.append(f"{t.command:<{width}}  {figures}  {t.exit_code:>4}  {rss:>7}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (the median is shown)")
    parser.add_argument("--serve-runs", type=int, default=5, help="runs of serve")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    options = parser.parse_args()
    script = entry_point()
    with tempfile.TemporaryDirectory(prefix="codexgate-startup-") as directory:
        home = Path(directory)
        env = clean_env(home)
        for args in COMMANDS:  # warm-up, not timed: bytecode written, files in the page cache
            subprocess.run([str(script), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        serve_once(script, home, env)
        timings = [time_command(script, args, env, options.runs) for args in COMMANDS]
        timings.append(time_serve(script, home, env, options.serve_runs))
    print(table(timings))
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})")
    if options.out:
        options.out.write_text(json.dumps([asdict(t) for t in timings], indent=2) + "\n")


if __name__ == "__main__":
    main()
