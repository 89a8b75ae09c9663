"""What the CLI does to the pool: add an account (login, import), remove, pause, resume, rename, list.

Each change is a file operation a running server sees within a second (see
:mod:`codexgate.pool.registry`): credential files are written under their refresh lock, and the
operator's index (aliases, pauses, resume counts) is rewritten atomically under its own lock. The CLI
never writes ``state.json`` (the server's), so a change cannot be lost to the server's next save.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codexgate.auth.credentials import (
    CredentialFileError,
    Credentials,
    credentials_from,
    read_document,
    write_tokens,
)
from codexgate.auth.file_lock import locked
from codexgate.pool import health
from codexgate.pool.account_files import (
    RUNTIME_FIELDS,
    AccountFile,
    FileKind,
    IndexEntry,
    PoolPaths,
    assign_aliases,
    identity,
    index_lock,
    new_account_path,
    read_index,
    read_states,
    scan,
    write_index,
)
from codexgate.pool.accounts import AccountState, AccountStatus, account_key, alias_from_email

__all__ = [
    "PoolAdminError",
    "StoredAccount",
    "account_views",
    "describe_state",
    "find_account",
    "pause_account",
    "remove_account",
    "rename_account",
    "resume_account",
    "store_credentials",
]

_ALIAS_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PoolAdminError(Exception):
    """An operator command cannot be done (unknown name, a taken alias, the Codex CLI's file …)."""


@dataclass(frozen=True, slots=True)
class StoredAccount:
    alias: str
    key: str
    path: Path
    created: bool  # a new account (False: an existing account got new credentials)
    credentials: Credentials


def _adopt(paths: PoolPaths) -> tuple[dict[str, AccountFile], dict[str, IndexEntry]]:
    """Scan the accounts and give every one an index entry (its alias fixed from then on).
    Call with :func:`index_lock` held."""
    files, _ = scan(paths)
    index = read_index(paths)
    saved = read_states(paths)
    previous = {key: s.state["alias"] for key, s in saved.items() if isinstance(s.state.get("alias"), str)}
    aliases = assign_aliases(((key, found.email) for key, found in files.items()), index, previous)
    missing = {key: IndexEntry(alias=aliases[key]) for key in files if key not in index}
    if missing:
        index.update(missing)
        write_index(paths, index)
    return files, index


def find_account(paths: PoolPaths, name: str) -> tuple[str, AccountFile, IndexEntry]:
    """The account called ``name``: its alias, else its key, else its email when only one account has it.
    Call with :func:`index_lock` held."""
    files, index = _adopt(paths)
    by_alias = [key for key in files if index[key].alias == name]
    matches = by_alias or [key for key in files if key == name]
    if not matches:
        matches = [key for key, found in files.items() if (found.email or "").lower() == name.lower()]
    if not matches:
        known = ", ".join(sorted(index[key].alias for key in files)) or "none"
        raise PoolAdminError(f"no account named {name!r} (accounts: {known})")
    if len(matches) > 1:
        aliases = ", ".join(sorted(index[key].alias for key in matches))
        raise PoolAdminError(f"{name!r} names several accounts ({aliases}); use the alias")
    key = matches[0]
    return key, files[key], index[key]


def _probe(document: dict[str, Any], source: Path) -> Credentials:
    credentials = credentials_from(document, source)
    if credentials is None:
        raise PoolAdminError(f"{source} holds no ChatGPT tokens")
    return credentials


async def store_credentials(
    paths: PoolPaths,
    *,
    access_token: str,
    refresh_token: str | None,
    id_token: str | None,
    account_id: str | None = None,
) -> StoredAccount:
    """Add the account these tokens belong to, or give an existing own account the new tokens.

    The first own account of an install goes to ``$CODEXGATE_HOME/auth.json`` (where codexgate has always
    kept it), later ones to ``accounts/<alias>.json``. An account so far known only from the Codex CLI's
    file gets its own file, which is used from then on (the Codex CLI keeps its own)."""
    tokens = {"access_token": access_token, "refresh_token": refresh_token, "id_token": id_token}
    if account_id:
        tokens["account_id"] = account_id
    probe = _probe({"tokens": tokens}, paths.legacy_file)
    key = account_key(*identity(probe))
    with index_lock(paths):
        files, index = _adopt(paths)
        existing = files.get(key)
        if key not in index:
            index[key] = IndexEntry(alias=alias_from_email(probe.email, {e.alias for e in index.values()}))
            write_index(paths, index)
        alias = index[key].alias
        if existing is not None and existing.kind is FileKind.OWN:
            target = existing.path
        elif not any(found.kind is FileKind.OWN for found in files.values()) and not paths.legacy_file.exists():
            target = paths.legacy_file
        else:
            target = new_account_path(paths, alias)
        async with locked(target):
            write_tokens(
                target,
                access_token=access_token,
                refresh_token=refresh_token,
                id_token=id_token,
                account_id=probe.account_id,
            )
        stored = _probe(read_document(target) or {}, target)
    return StoredAccount(alias, key, target, existing is None, stored)


def _same_file(first: Path, second: Path) -> bool:
    return first.resolve() == second.resolve()


async def import_auth_file(paths: PoolPaths, source: Path) -> StoredAccount:
    """Add (or update) the account held in a Codex CLI ``auth.json``; the source file is left as it is."""
    try:
        document = read_document(source)
    except CredentialFileError as exc:
        raise PoolAdminError(str(exc)) from None
    if document is None:
        raise PoolAdminError(f"{source} does not exist")
    if _same_file(source, paths.codex_file):
        raise PoolAdminError(f"{source} is the Codex CLI's login, which is already an account of the pool")
    credentials = _probe(document, source)
    return await store_credentials(
        paths,
        access_token=credentials.access_token,
        refresh_token=credentials.refresh_token,
        id_token=credentials.id_token,
        account_id=credentials.account_id,
    )


async def remove_account(paths: PoolPaths, name: str) -> tuple[str, list[Path], AccountFile | None]:
    """Delete codexgate's own credential files of the account ``name``; returns its alias, the files
    removed, and the Codex CLI's file if that still holds the account (it is never deleted)."""
    with index_lock(paths):
        key, found, entry = find_account(paths, name)
        _, shadowed = scan(paths)
        holders = [found, *(other for other in shadowed if other.key == key)]
        own = [holder.path for holder in holders if holder.kind is FileKind.OWN]
        codex = next((holder for holder in holders if holder.kind is FileKind.CODEX), None)
        if not own:
            raise PoolAdminError(
                f"{entry.alias!r} is the Codex CLI's login ({found.path}); codexgate does not delete it. "
                f"Use `codexgate accounts pause {entry.alias}`, or `codex logout`."
            )
        for path in own:
            async with locked(path):  # not in the middle of a refresh that would write it again
                path.unlink(missing_ok=True)
        if codex is None:
            index = read_index(paths)
            index.pop(key, None)
            write_index(paths, index)
    return entry.alias, own, codex


def _update_entry(paths: PoolPaths, name: str, **changes: Any) -> IndexEntry:
    with index_lock(paths):
        key, _, _ = find_account(paths, name)
        index = read_index(paths)
        current = index[key]
        for attribute, value in changes.items():
            setattr(current, attribute, value)
        write_index(paths, index)
        return current


def pause_account(paths: PoolPaths, name: str) -> IndexEntry:
    return _update_entry(paths, name, paused=True)


def resume_account(paths: PoolPaths, name: str) -> IndexEntry:
    """Back in service: un-paused, and a disabled or "needs login" state lifted once."""
    with index_lock(paths):
        key, _, _ = find_account(paths, name)
        index = read_index(paths)
        entry = index[key]
        entry.paused = False
        entry.resume_count += 1
        write_index(paths, index)
        return entry


def rename_account(paths: PoolPaths, name: str, alias: str) -> tuple[str, str]:
    """Give the account a new alias (letters, digits, ``.``, ``_``, ``-``; unique); returns (old, new)."""
    if not _ALIAS_RULE.match(alias):
        raise PoolAdminError("an alias is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    with index_lock(paths):
        key, _, _ = find_account(paths, name)
        index = read_index(paths)
        if any(other.alias == alias for other_key, other in index.items() if other_key != key):
            raise PoolAdminError(f"the alias {alias!r} is taken")
        old = index[key].alias
        index[key].alias = alias
        write_index(paths, index)
    return old, alias


# ---- the list ---------------------------------------------------------------------------------


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe_state(state: AccountState, now: float) -> str:
    """``active``, ``cooling until …``, ``needs login``, ``disabled (…)`` or ``paused``."""
    status = state.status
    if status is AccountStatus.COOLING:
        if state.cooling_until is None or state.cooling_until <= now:
            return "cooling, reset passed (the next request probes it)"
        return f"cooling until {_when(state.cooling_until)}"
    if status is AccountStatus.NEEDS_LOGIN:
        return "needs login"
    if status is AccountStatus.DISABLED:
        return f"disabled ({state.disabled_reason})" if state.disabled_reason else "disabled"
    return status.value


def account_views(paths: PoolPaths, now: float, today: str) -> list[dict[str, Any]]:
    """Every account as ``accounts list`` shows it: the server's last saved state with the operator's
    latest word applied (a running server applies the same within a second). No token, ever."""
    with index_lock(paths):
        files, index = _adopt(paths)
    saved = read_states(paths)
    views: list[dict[str, Any]] = []
    for key, found in files.items():
        state: AccountState | None = None
        if key in saved:
            try:
                state = AccountState.from_dict(saved[key].state)
            except (KeyError, TypeError, ValueError):
                state = None
        if state is None:
            state = AccountState(found.chatgpt_account_id, found.user_id, index[key].alias)
        entry = index[key]
        health.apply_operator(
            state,
            paused=entry.paused,
            resume_count=entry.resume_count,
            resumes_applied=saved[key].resumes_applied if key in saved else 0,
            paused_applied=saved[key].paused_applied if key in saved else None,
        )
        state.alias = entry.alias
        state.email = found.email or state.email
        state.plan = found.plan or state.plan
        view = {name: value for name, value in state.to_dict().items() if name not in RUNTIME_FIELDS}
        if state.usage_day != today:
            view["requests_today"] = view["tokens_today"] = 0
        view["state_text"] = describe_state(state, now)
        view["source"] = found.kind.value
        view["file"] = str(found.path)
        views.append(view)
    return views
