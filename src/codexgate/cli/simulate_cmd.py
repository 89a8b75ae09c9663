"""``codexgate simulate``: run the upstream simulator, to try the gateway without an account."""

from __future__ import annotations

import errno
from typing import Annotated

import typer
from typer.core import TyperCommand

from codexgate.cli.common import fail

SIMULATE_SHORT_HELP = "Serve a local stand-in for the Codex backend (to try the gateway without an account)."
SIMULATE_HELP_HEAD = (
    "Serve a local stand-in for the Codex backend (Responses SSE, /models, /oauth/token).\n\n"
    "Point the gateway at it with CODEXGATE_UPSTREAM_URL=http://127.0.0.1:PORT (or run `codexgate demo`, "
    'which does both). Say "scenario:NAME" in a prompt to pick what it answers; an unknown name is a 400 '
    "naming the known ones. Scenarios:\n\n"
)


def simulate_help() -> str:
    """The full help: the head and one line per scenario (from the simulator's ``SCENARIO_NAMES``)."""
    from codexgate.testing.scenario_help import scenario_lines

    return SIMULATE_HELP_HEAD + "\n\n".join(scenario_lines())


class SimulateCommand(TyperCommand):
    """Builds its help text only when it is shown: every other command starts without loading the simulator."""

    @property
    def help(self) -> str:
        return simulate_help()

    @help.setter
    def help(self, value: str | None) -> None:
        pass


def register(app: typer.Typer) -> None:
    @app.command("simulate", cls=SimulateCommand, short_help=SIMULATE_SHORT_HELP)
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
