"""Private files: atomic writes with mode 0600 inside 0700 directories.

Used for credentials, the usage database's directory, API keys and the shared rate-limit state.
A crash at any point leaves either the old file or the new one, never a torn one.

An atomic write replaces the directory entry it is given; for a symbolic link that would put a
regular file in place of the link and leave the link's target stale. Writers of files a user may
link elsewhere (``auth.json`` into a dotfiles repository, say) pass ``follow_symlinks=True``: the
link is resolved and the write lands atomically next to its final target; the link stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a directory we create gets mode 0700."""
    if not path.exists():
        path.mkdir(parents=True, mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def write_target(path: Path) -> Path:
    """The file a write through ``path`` must replace: ``path``, or the final target of its links.

    Raises ``OSError`` (``ELOOP``) for a link that never ends in a file name (a loop)."""
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath gives up on a loop and returns a link
        raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))
    return target


def atomic_write_bytes(
    path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE, *, follow_symlinks: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same dir, fsync, rename, fsync dir.

    ``follow_symlinks``: if ``path`` is a symbolic link, write to its final target (see the module
    docstring) instead of replacing the link."""
    if follow_symlinks:
        path = write_target(path)
    directory = path.parent
    ensure_private_dir(directory)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str, mode: int = PRIVATE_FILE_MODE, *, follow_symlinks: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode, follow_symlinks=follow_symlinks)
