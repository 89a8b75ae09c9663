"""``codexgate demo``: the simulator and a gateway in front of it, in one command, all on this machine.

Nothing of the user's is read or written: the gateway's home is a temporary folder (never
``~/.codexgate`` or ``~/.codex``) holding throw-away credentials; the backend and the sign-in server
are both the simulator on loopback, so no request (a token refresh included) leaves the machine.
Ctrl-C (or SIGTERM) stops both and removes the folder.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from codexgate.cli.common import err_console, fail

DEMO_PORT = 9191
DEMO_TOKEN_LIFETIME = 3600.0
LOOPBACK = "127.0.0.1"


def instructions(base_url: str, home: Path) -> str:
    """What the demo prints once the gateway listens: the base URL, a curl line, an openai-python snippet."""
    return f"""
codexgate demo — base URL {base_url} (the gateway, in front of the built-in simulator; nothing leaves
this machine, token refreshes included). Throw-away home: {home} (removed on exit). Ctrl-C stops both.

Try it:

  curl {base_url}/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "gpt-5", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  python -c '
from openai import OpenAI
client = OpenAI(base_url="{base_url}", api_key="unused")
answer = client.chat.completions.create(model="gpt-5", messages=[{{"role": "user", "content": "Hello"}}])
print(answer.choices[0].message.content)'

Say "scenario:NAME" in a prompt to pick what the simulator does (`codexgate simulate --help` lists them).
"""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _refreshed(count: int) -> None:
    err_console.print(f"demo: the simulator issued fresh throw-away tokens (refresh {count})", markup=False)


def run_demo(port: int, token_lifetime: float = DEMO_TOKEN_LIFETIME) -> None:
    """Run the demo until SIGINT/SIGTERM. Raises ``PortInUse`` / ``OSError`` when the port cannot be had."""
    from codexgate.config import load_settings
    from codexgate.server.runner import run_server
    from codexgate.testing.demo_auth import TokenIssuer, write_demo_auth
    from codexgate.testing.simulator_process import simulator_thread

    home = Path(tempfile.mkdtemp(prefix="codexgate-demo-"))
    try:
        write_demo_auth(home / "codex", expires_in=token_lifetime)
        issuer = TokenIssuer(expires_in=token_lifetime, on_refresh=_refreshed)
        with simulator_thread(host=LOOPBACK, event_delay=0.02, token_issuer=issuer) as simulator:
            flags = {
                "home": str(home),
                "codex_home": str(home / "codex"),
                "host": LOOPBACK,
                "port": port,
                "upstream_url": simulator.base_url,
                "auth_issuer": simulator.base_url,
            }
            # env={}: no CODEXGATE_* variable of the user's (an upstream URL, a home) reaches the demo.
            settings = load_settings(flags=flags, env={}).settings

            def ready(base_url: str) -> None:
                print(instructions(base_url, home), flush=True)

            run_server(settings, on_ready=ready)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        port: Annotated[
            int, typer.Option("--port", min=0, max=65535, help="Port of the gateway (0: any free port).")
        ] = DEMO_PORT,
        token_lifetime: Annotated[
            float, typer.Option("--token-lifetime", hidden=True, help="Seconds the throw-away tokens live.")
        ] = DEMO_TOKEN_LIFETIME,
    ) -> None:
        """Try codexgate without an account: the simulator and a gateway, on 127.0.0.1, in one command."""
        from codexgate.config import SettingsError
        from codexgate.server.runner import PortInUse

        # A SIGTERM before the server has its own handlers still ends in the cleanup below.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            run_demo(port, token_lifetime)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except PortInUse as exc:
            fail(str(exc))
        except SettingsError as exc:
            fail(str(exc), code=2)
        except OSError as exc:
            fail(f"cannot start the demo on {LOOPBACK}:{port}: {exc.strerror or exc}")
        finally:
            signal.signal(signal.SIGTERM, previous)
