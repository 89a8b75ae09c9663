"""An inter-process lock beside a credential file (``auth.json.lock``), held only briefly.

Two processes that both see an expired token must not both spend the single-use refresh token:
the one that takes the lock refreshes; the other, once it has the lock, re-reads the file and finds
the new tokens. ``fcntl.flock`` is released by the OS if a holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from codexgate.files import ensure_private_dir, write_target


class LockTimeout(Exception):
    pass


def lock_path(credential_file: Path) -> Path:
    """The lock beside the file the credentials really live in: two paths to one file (a symlinked
    ``auth.json``) share one lock."""
    target = write_target(credential_file)
    return target.with_name(target.name + ".lock")


@contextlib.asynccontextmanager
async def locked(credential_file: Path, wait_seconds: float = 30.0) -> AsyncIterator[None]:
    """Hold the lock file beside ``credential_file``; polls without blocking the event loop."""
    path = lock_path(credential_file)
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"timed out waiting for {path}") from None
                import asyncio  # loaded already under a running loop; not at import (the CLI reads these files too)

                await asyncio.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
