"""Ways to run the simulator: in a background thread (sync tests), blocking (``codexgate simulate``),
or as a subprocess (``python -m codexgate.testing.simulator --port N``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from codexgate.testing.simulator_server import UpstreamSimulator

START_TIMEOUT = 10.0


@contextlib.contextmanager
def simulator_thread(**options: Any) -> Iterator[UpstreamSimulator]:
    """Run an :class:`UpstreamSimulator` on its own event loop in a daemon thread.

    ``with simulator_thread(event_delay=0.01) as sim: httpx.post(sim.base_url + "/responses", ...)``.
    ``sim.enqueue`` and ``sim.requests`` are safe to use from the test's thread.
    """
    simulator = UpstreamSimulator(**options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(simulator.start())
        except BaseException as error:
            failure.append(error)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=serve, name="upstream-simulator", daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT):
        raise RuntimeError("the upstream simulator did not start in time")
    if failure:
        raise failure[0]
    try:
        yield simulator
    finally:
        stopped = asyncio.run_coroutine_threadsafe(simulator.stop(), loop)
        with contextlib.suppress(Exception):
            stopped.result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)


STANDALONE_RECORDED = 1_000  # requests a stand-alone simulator remembers (nobody reads more of them)


async def serve_until_signalled(
    host: str, port: int, ready: Callable[[UpstreamSimulator], None] | None = None, **options: Any
) -> None:
    options.setdefault("max_recorded", STANDALONE_RECORDED)
    simulator = UpstreamSimulator(host=host, port=port, **options)
    await simulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready(simulator)
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def run_simulator(host: str = "127.0.0.1", port: int = 9292, **options: Any) -> None:
    """Serve until Ctrl-C or SIGTERM. ``options`` are :class:`UpstreamSimulator` keyword arguments,
    plus ``ready``: a callable given the running simulator (to print its address).

    It runs on uvloop, as the gateway does, so that a simulator sharing a core with a benchmark
    client spends as little of that core as it can on pacing and writing events."""
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_until_signalled(host, port, **options))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency (not on Windows)
        return None
    return uvloop.new_event_loop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m codexgate.testing.simulator",
        description="A local stand-in for the ChatGPT Codex backend (Responses SSE and /models).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9292, help="0 picks a free port (printed on start)")
    parser.add_argument("--event-delay", type=float, default=0.0, help="seconds between events")
    parser.add_argument("--header-delay", type=float, default=0.0, help="seconds before the status line")
    parser.add_argument("--tokens", type=int, default=None, help="text deltas per answer")
    parser.add_argument("--text", default=None, help="answer text (default: derived from the prompt)")
    parser.add_argument("--scenario", default="text", help="default scenario")
    parser.add_argument("--coalesce", action="store_true", help="write each stream in one piece")
    parser.add_argument("--no-validate", action="store_true", help="accept bodies the backend would refuse")
    parser.add_argument("--no-auth", action="store_true", help="do not require a bearer token")
    parser.add_argument("--token", action="append", default=None, help="accepted bearer token (repeatable)")
    parser.add_argument(
        "--max-recorded", type=int, default=STANDALONE_RECORDED, help="requests remembered for /__simulator/requests"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def announce(simulator: UpstreamSimulator) -> None:
        print(f"codexgate simulator listening on {simulator.base_url}", flush=True)

    try:
        _run_main(args, announce)
    except OSError as exc:
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror or exc}"
        print(f"simulator: port {args.port} on {args.host} {reason} (use --port)", file=sys.stderr)
        return 1
    return 0


def _run_main(args: argparse.Namespace, announce: Callable[[UpstreamSimulator], None]) -> None:
    run_simulator(
        args.host,
        args.port,
        ready=announce,
        event_delay=args.event_delay,
        header_delay=args.header_delay,
        tokens=args.tokens,
        text=args.text,
        default_scenario=args.scenario,
        coalesce=args.coalesce,
        validate=not args.no_validate,
        require_auth=not args.no_auth,
        accepted_tokens=args.token,
        max_recorded=args.max_recorded,
    )


if __name__ == "__main__":
    sys.exit(main())
