"""``codexgate models refresh``: make the running server fetch the backend's model catalog now.

The command writes a fresh nonce to ``$CODEXGATE_HOME/models.refresh``; the server watches that file
(``upstream.models.watch_refresh_requests``), refreshes within a quarter second and writes the outcome
with the same nonce to ``models.refresh.done``, which the command prints. No key or port is needed,
only the server's home directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from codexgate.cli.common import console, fail, settings

__all__ = ["REFRESH_DONE_FILE", "REFRESH_REQUEST_FILE", "register", "request_refresh"]

#: the server's names for the request and its answer (``upstream.models``, which this command does not
#: import: it loads asyncio with the model catalog; tests/cli/test_lean_imports.py checks they agree)
REFRESH_REQUEST_FILE = "models.refresh"
REFRESH_DONE_FILE = "models.refresh.done"


def request_refresh(home: Path, *, timeout: float, poll: float = 0.1) -> dict[str, Any] | None:
    """Ask the server serving ``home`` for a refresh; its report, or None when none came in ``timeout`` s."""
    import secrets

    import orjson

    home.mkdir(parents=True, exist_ok=True)
    nonce = secrets.token_hex(16)
    request_path = home / REFRESH_REQUEST_FILE
    temporary = request_path.with_name(f"{request_path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps({"nonce": nonce, "requested_at": time.time()}))
    os.replace(temporary, request_path)
    done_path = home / REFRESH_DONE_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            report = orjson.loads(done_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            report = None
        if isinstance(report, dict) and report.get("nonce") == nonce:
            return report
        time.sleep(poll)
    return None


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="The backend's model catalog, as the running server sees it.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("refresh")
    def refresh(
        ctx: typer.Context,
        timeout: Annotated[float, typer.Option(help="seconds to wait for the server's answer")] = 15.0,
        json_output: Annotated[bool, typer.Option("--json", help="print the server's report as JSON")] = False,
    ) -> None:
        """Make the running server fetch the model catalog now (a new model or effort is then usable)."""
        import orjson

        home = settings(ctx).home
        report = request_refresh(home, timeout=timeout)
        if report is None:
            fail(f"No running codexgate server using {home} answered within {timeout:g} s.")
        if json_output:
            typer.echo(orjson.dumps(report).decode())
        elif report.get("ok"):
            console.print(f"Model catalog refreshed: {report.get('models')} models, {report.get('aliases')} ids.")
        else:
            fail(f"The server could not fetch the model catalog: {report.get('error')}")
