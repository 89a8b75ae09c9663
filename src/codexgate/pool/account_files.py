"""The pool's files on disk, shared by the running server (:mod:`codexgate.pool.registry`) and the CLI.

Layout under ``$CODEXGATE_HOME``::

    auth.json                 the first own account (an install from before the pool: account #1, read in place)
    accounts/<name>.json      one own account each (Codex CLI ``auth.json`` format, 0600)
    accounts/index.json       the operator's word, written by the CLI only: alias, paused, resume count per account
    accounts/state.json       the server's word: each account's lasting state (cooldowns, windows, last error)

plus the Codex CLI's ``$CODEX_HOME/auth.json``, which is one more account (read and refreshed in place).
An account's identity is its ``chatgpt_account_id`` and user id, read from its tokens; when several files
hold one account, the first in :func:`scan` order is the one used and refreshed: ``auth.json``, then
``accounts/*.json`` by name, then the Codex CLI's file last, so that codexgate's own login of an account
wins over the Codex CLI's copy and the two programs never spend one refresh-token chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from codexgate.auth.credentials import CredentialFileError, Credentials, credentials_from, read_document
from codexgate.auth.jwt_claims import claims_of, decode_payload
from codexgate.files import atomic_write_bytes, ensure_private_dir
from codexgate.pool.accounts import account_key, alias_from_email

__all__ = [
    "AccountFile",
    "FileKind",
    "IndexEntry",
    "PoolPaths",
    "SavedState",
    "assign_aliases",
    "identity",
    "index_lock",
    "new_account_path",
    "read_index",
    "read_states",
    "scan",
    "state_document",
    "write_index",
    "write_states",
]

logger = logging.getLogger("codexgate.pool")

INDEX_NAME = "index.json"
STATE_NAME = "state.json"
_RESERVED = frozenset({INDEX_NAME, STATE_NAME})
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: runtime fields of ``AccountState.to_dict`` that are not worth a write (they restart afresh)
RUNTIME_FIELDS = frozenset({"streams_in_flight", "backoff_until", "probe_in_flight"})


@dataclass(frozen=True, slots=True)
class PoolPaths:
    """Where an install's accounts live."""

    home: Path
    codex_file: Path

    @property
    def accounts_dir(self) -> Path:
        return self.home / "accounts"

    @property
    def legacy_file(self) -> Path:
        """``$CODEXGATE_HOME/auth.json``: the single own account of an install from before the pool."""
        return self.home / "auth.json"

    @property
    def index_file(self) -> Path:
        return self.accounts_dir / INDEX_NAME

    @property
    def state_file(self) -> Path:
        return self.accounts_dir / STATE_NAME


class FileKind(StrEnum):
    OWN = "own"  # codexgate's own login: ``logout``/``accounts remove`` may delete it
    CODEX = "codex"  # the Codex CLI's file: refreshed in place, never deleted


@dataclass(frozen=True, slots=True)
class AccountFile:
    """One credential file and the account its tokens belong to."""

    path: Path
    kind: FileKind
    key: str
    chatgpt_account_id: str
    user_id: str
    email: str | None
    plan: str | None
    has_refresh_token: bool


def identity(credentials: Credentials) -> tuple[str, str]:
    """``(chatgpt_account_id, user_id)`` of the tokens. Tokens without a user id claim fall back to the
    id token's subject, then the email (emails are not unique across workspaces; the account id is)."""
    claims = claims_of(credentials.access_token, credentials.id_token)
    subject = decode_payload(credentials.id_token).get("sub")
    user = claims.user_id or (subject if isinstance(subject, str) and subject else None) or credentials.email or "-"
    return credentials.account_id or claims.account_id or "-", user


def _account_file(path: Path, kind: FileKind) -> AccountFile | None:
    try:
        document = read_document(path)
    except CredentialFileError as exc:
        logger.warning("skipping an unusable credential file: %s", exc)
        return None
    credentials = credentials_from(document, path) if document is not None else None
    if credentials is None:
        return None
    account_id, user_id = identity(credentials)
    return AccountFile(
        path=path,
        kind=kind,
        key=account_key(account_id, user_id),
        chatgpt_account_id=account_id,
        user_id=user_id,
        email=credentials.email,
        plan=credentials.plan_type,
        has_refresh_token=bool(credentials.refresh_token),
    )


def own_paths(paths: PoolPaths) -> list[Path]:
    """The own credential files in priority order: ``auth.json``, then ``accounts/*.json`` by name."""
    found = [paths.legacy_file] if paths.legacy_file.is_file() else []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(os.scandir(paths.accounts_dir), key=lambda e: e.name):
            name = entry.name
            if name.endswith(".json") and not name.startswith(".") and name not in _RESERVED and entry.is_file():
                found.append(Path(entry.path))
    return found


def scan(paths: PoolPaths) -> tuple[dict[str, AccountFile], list[AccountFile]]:
    """Every account on disk: key → the file used for it (first wins), and the files shadowed by it."""
    chosen: dict[str, AccountFile] = {}
    shadowed: list[AccountFile] = []
    candidates = [(path, FileKind.OWN) for path in own_paths(paths)]
    if paths.codex_file.is_file():
        candidates.append((paths.codex_file, FileKind.CODEX))
    for path, kind in candidates:
        found = _account_file(path, kind)
        if found is None:
            continue
        if found.key in chosen:
            shadowed.append(found)
        else:
            chosen[found.key] = found
    return chosen, shadowed


def new_account_path(paths: PoolPaths, alias: str) -> Path:
    """A free ``accounts/<alias>.json`` (a name taken by another file gets ``-2``, ``-3`` …)."""
    base = _FILE_UNSAFE.sub("-", alias).strip("-.") or "account"
    name, n = base, 2
    while f"{name}.json" in _RESERVED or (paths.accounts_dir / f"{name}.json").exists():
        name = f"{base}-{n}"
        n += 1
    return paths.accounts_dir / f"{name}.json"


# ---- the operator's index -------------------------------------------------------------------------


@dataclass(slots=True)
class IndexEntry:
    """What the operator said about an account: its alias, whether it is paused, how often resumed."""

    alias: str
    paused: bool = False
    #: each ``accounts resume`` adds one; the server resumes the account once per increase
    resume_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "paused": self.paused, "resume_count": self.resume_count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexEntry | None:
        alias = data.get("alias")
        if not isinstance(alias, str) or not alias:
            return None
        count = data.get("resume_count")
        return cls(
            alias=alias,
            paused=data.get("paused") is True,
            resume_count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        logger.warning("ignoring unreadable %s (%s)", path.name, type(exc).__name__)
        return {}
    return data if isinstance(data, dict) else {}


def read_index(paths: PoolPaths) -> dict[str, IndexEntry]:
    accounts = _read_json(paths.index_file).get("accounts")
    entries: dict[str, IndexEntry] = {}
    if isinstance(accounts, dict):
        for key, raw in accounts.items():
            entry = IndexEntry.from_dict(raw) if isinstance(raw, dict) else None
            if entry is not None:
                entries[str(key)] = entry
    return entries


def write_index(paths: PoolPaths, entries: Mapping[str, IndexEntry]) -> None:
    document = {"version": 1, "accounts": {key: entry.to_dict() for key, entry in entries.items()}}
    atomic_write_bytes(paths.index_file, orjson.dumps(document, option=orjson.OPT_INDENT_2))


@contextlib.contextmanager
def index_lock(paths: PoolPaths) -> Iterator[None]:
    """Serialize the CLI's read-modify-write of the index (a blocking ``flock``, held for milliseconds)."""
    ensure_private_dir(paths.accounts_dir)
    fd = os.open(paths.accounts_dir / (INDEX_NAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ---- the server's states --------------------------------------------------------------------------


@dataclass(slots=True)
class SavedState:
    """One account's line in ``state.json``: its lasting state and the operator's word already applied
    (the resume count, and whether the index said paused; ``None`` before it was first applied)."""

    state: dict[str, Any]
    resumes_applied: int = 0
    paused_applied: bool | None = None


def read_states(paths: PoolPaths) -> dict[str, SavedState]:
    accounts = _read_json(paths.state_file).get("accounts")
    saved: dict[str, SavedState] = {}
    if isinstance(accounts, dict):
        for key, raw in accounts.items():
            if not isinstance(raw, dict) or not isinstance(raw.get("state"), dict):
                continue
            applied = raw.get("resumes_applied")
            paused = raw.get("paused_applied")
            saved[str(key)] = SavedState(
                state=raw["state"],
                resumes_applied=applied if isinstance(applied, int) else 0,
                paused_applied=paused if isinstance(paused, bool) else None,
            )
    return saved


def state_document(saved: Mapping[str, SavedState]) -> bytes:
    accounts = {
        key: {
            "state": {k: v for k, v in entry.state.items() if k not in RUNTIME_FIELDS},
            "resumes_applied": entry.resumes_applied,
            "paused_applied": entry.paused_applied,
        }
        for key, entry in saved.items()
    }
    return orjson.dumps({"version": 1, "accounts": accounts}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def write_states(paths: PoolPaths, document: bytes) -> None:
    atomic_write_bytes(paths.state_file, document)


def assign_aliases(
    keys_and_emails: Iterable[tuple[str, str | None]],
    index: Mapping[str, IndexEntry],
    previous_aliases: Mapping[str, str],
) -> dict[str, str]:
    """Each account's alias: the operator's, else the one it had, else derived from its email (unique)."""
    aliases: dict[str, str] = {}
    pending: list[tuple[str, str | None]] = []
    for key, email in keys_and_emails:
        entry = index.get(key)
        previous = previous_aliases.get(key)
        if entry is not None:
            aliases[key] = entry.alias
        elif isinstance(previous, str) and previous and previous not in aliases.values():
            aliases[key] = previous
        else:
            pending.append((key, email))
    for key, email in pending:
        aliases[key] = alias_from_email(email, taken=set(aliases.values()))
    return aliases


#: a file's identity and content version (mtime, inode, size), None when it does not exist
FileStamp = tuple[int, int, int] | None


def file_stamp(path: Path) -> FileStamp:
    """``path``'s (mtime_ns, inode, size), or None: what tells a changed file (an atomic rename changes the inode)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)
