"""``file_lock.locked`` waits for a lock another holder has (asyncio imported when it first waits)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

from codexgate.auth.file_lock import LockTimeout, lock_path, locked


async def test_a_held_lock_is_waited_for(tmp_path: Path) -> None:
    credential = tmp_path / "auth.json"
    path = lock_path(credential)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    entered = asyncio.Event()

    async def take() -> None:
        async with locked(credential, wait_seconds=10):
            entered.set()

    task = asyncio.create_task(take())
    await asyncio.sleep(0.1)
    assert not entered.is_set()  # polling, the loop still running
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    await asyncio.wait_for(task, 5)
    assert entered.is_set()


async def test_a_lock_never_released_times_out(tmp_path: Path) -> None:
    credential = tmp_path / "auth.json"
    fd = os.open(lock_path(credential), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(LockTimeout):
            async with locked(credential, wait_seconds=0.1):
                pass
    finally:
        os.close(fd)
