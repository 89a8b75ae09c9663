"""A loopback port for a child process that must be told its port before it starts.

Servers inside a test process bind port 0 and report the port they got; only a child process given
``--port N`` needs one up front. Such a port is picked outside the kernel's ephemeral range, so the
kernel cannot hand it to some other socket bound to port 0 (or to an outgoing connection) between
the pick and the child's bind; a bind probe skips ports already in use.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port"]

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_RANGE = (32_768, 60_999)
LOWEST_PORT = 20_000  # above the well-known and most registered service ports
ATTEMPTS = 200


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    return low, high


def _candidates() -> range:
    low, high = _ephemeral_range()
    if low - LOWEST_PORT >= 1_000:
        return range(LOWEST_PORT, low)
    if 65_535 - high >= 1_000:
        return range(high + 1, 65_536)
    return range(LOWEST_PORT, 65_536)  # no room outside the ephemeral range: the bind probe has to do


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on, chosen outside the kernel's ephemeral port range."""
    candidates = _candidates()
    chooser = random.SystemRandom()
    for _ in range(ATTEMPTS):
        port = chooser.choice(candidates)
        if _bindable(host, port):
            return port
    raise RuntimeError(f"no free port on {host} after {ATTEMPTS} tries")
