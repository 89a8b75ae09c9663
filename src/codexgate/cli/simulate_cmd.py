"""``codexgate simulate``: run the upstream simulator, to try the gateway without an account."""

from __future__ import annotations

import errno
from typing import Annotated

import typer

from codexgate.cli.common import fail
from codexgate.testing.scenario_help import scenario_lines

SIMULATE_HELP = (
    "Serve a local stand-in for the Codex backend (Responses SSE, /models, /oauth/token).\n\n"
    "Point the gateway at it with CODEXGATE_UPSTREAM_URL=http://127.0.0.1:PORT (or run `codexgate demo`, "
    'which does both). Say "scenario:NAME" in a prompt to pick what it answers; an unknown name is a 400 '
    "naming the known ones. Scenarios:\n\n" + "\n\n".join(scenario_lines())
)


def register(app: typer.Typer) -> None:
    @app.command("simulate", help=SIMULATE_HELP)
    def simulate(
        port: Annotated[
            int, typer.Option("--port", min=0, max=65535, help="Port for the simulator (0: any free port).")
        ] = 9292,
        host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
        delay: Annotated[float, typer.Option("--delay", min=0.0, help="Seconds between events.")] = 0.02,
    ) -> None:
        from codexgate.testing.simulator_process import run_simulator
        from codexgate.testing.simulator_server import UpstreamSimulator

        def announce(simulator: UpstreamSimulator) -> None:
            typer.echo(f"codexgate simulator on {simulator.base_url} (set CODEXGATE_UPSTREAM_URL to this)")

        try:
            run_simulator(host, port, ready=announce, event_delay=delay)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} is in use — another codexgate? use --port")
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
