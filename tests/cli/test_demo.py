"""``codexgate demo`` through the real console script: it answers, refreshes against the simulator,
stops on SIGINT/SIGTERM, removes its temporary home and never touches the user's HOME."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.cli.cli_support import BASE_URL, RunningCommand, cli_env, run_cli

REFRESH_LINE = re.compile(r"simulator issued fresh throw-away tokens \(refresh (\d+)\)")
DEMO_HOME = re.compile(r"Throw-away home: (\S+)")


def _chat(base_url: str, text: str) -> httpx.Response:
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{base_url}/chat/completions", json=body, timeout=30, trust_env=False)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_answers_refreshes_locally_and_cleans_up(tmp_path: Path, stop_signal: signal.Signals) -> None:
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    env = cli_env(tmp_path, TMPDIR=str(temp_root))
    # Tokens that live 60 s, inside the 300 s refresh margin: the first request must refresh them.
    demo = RunningCommand(["demo", "--port", "0", "--token-lifetime", "60"], env)
    try:
        port = int(demo.wait_for(BASE_URL).group(1))
        assert port != 0
        base_url = f"http://127.0.0.1:{port}/v1"
        home = Path(demo.wait_for(DEMO_HOME).group(1))
        assert home.parent == temp_root and home.is_dir()
        assert f"curl {base_url}/chat/completions" in demo.output
        assert f'OpenAI(base_url="{base_url}"' in demo.output

        answer = _chat(base_url, "Hello demo")
        assert answer.status_code == 200, answer.text
        assert "Hello demo" in answer.json()["choices"][0]["message"]["content"]
        assert int(demo.wait_for(REFRESH_LINE, timeout=30).group(1)) >= 1
        # The refreshed token set came from the simulator (its refresh tokens are rt_demo_…) and was stored.
        stored = [path.read_text() for path in home.rglob("auth.json")]
        assert any('"rt_demo_' in text for text in stored)
        assert _chat(base_url, "Again").status_code == 200
    finally:
        code = demo.stop(stop_signal)
    assert code == 0, demo.output
    assert "Traceback" not in demo.output
    assert list(temp_root.iterdir()) == [], "the demo's temporary home was not removed"
    assert list(Path(env["HOME"]).iterdir()) == [], "the demo wrote into the user's HOME"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2, trust_env=False)


def test_demo_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        temp_root = tmp_path / "tmp"
        temp_root.mkdir()
        result = run_cli(["demo", "--port", str(port)], cli_env(tmp_path, TMPDIR=str(temp_root)))
    assert result.returncode == 1
    assert f"port {port} is in use — another codexgate? use --port" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(temp_root.iterdir()) == []
