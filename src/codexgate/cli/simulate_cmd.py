"""``codexgate simulate``: run the upstream simulator, to try the gateway without an account."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        port: Annotated[int, typer.Option("--port", help="Port for the simulator.")] = 9292,
        host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
        delay: Annotated[float, typer.Option("--delay", help="Seconds between events.")] = 0.02,
    ) -> None:
        """Serve a local stand-in for the Codex backend (Responses SSE, /models).

        Point the gateway at it with CODEXGATE_UPSTREAM_URL=http://127.0.0.1:PORT. Say
        "scenario:NAME" in a prompt to pick a scenario (text, reasoning, tool_calls, refusal ...).
        """
        from codexgate.testing.simulator import run_simulator

        typer.echo(f"codexgate simulator on http://{host}:{port} (set CODEXGATE_UPSTREAM_URL to this)")
        run_simulator(host, port, event_delay=delay)
