"""The CLI's account changes, told to the shared state (``state_url``): what ``login``, ``accounts import`` and
``accounts remove`` do besides writing the local files.

With ``state_url`` the shared store is the source of truth for credentials (see
:mod:`codexgate.pool.shared_accounts`). A server imports the credential files of its own home, but an
account signed in from a one-off container (``docker compose run --rm codexgate login --device``) or from
another machine must reach the store at once: :func:`share_credentials` stores the file's document there
(sealed, never over newer credentials) and tells every instance. :func:`unshare_account` takes an account
out of the store, so every instance drops it within a second or two (an instance that still holds the
account's file in its own home imports it again: remove it there too).

Both open the store for the one call and close it; without ``state_url`` they do nothing and return None.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from codexgate.auth.credentials import CredentialFileError, credentials_from, read_document
from codexgate.pool.account_files import identity
from codexgate.pool.accounts import account_key

if TYPE_CHECKING:
    from codexgate.config import Settings
    from codexgate.state.cluster import Cluster

__all__ = ["ClusterAdminError", "find_shared_account", "pause_shared_account", "share_credentials", "unshare_account"]


class ClusterAdminError(Exception):
    """The shared state could not take the change (unreachable, or a file that is not credentials)."""


@contextlib.asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[Cluster]:
    from codexgate.state.cluster import ClusterSettingsError, open_cluster

    try:
        cluster = open_cluster(settings)
    except ClusterSettingsError as exc:
        raise ClusterAdminError(str(exc)) from None
    assert cluster is not None
    try:
        yield cluster
    finally:
        await cluster.state.close()


async def share_credentials(settings: Settings, path: Path) -> bool | None:
    """Store the credentials of the file ``path`` in the shared state; True when stored, False when the store
    already holds newer ones for that account, None without ``state_url``."""
    if not settings.state.state_url:
        return None
    from codexgate.state.interface import StateUnavailable

    try:
        document = read_document(path)
        credentials = credentials_from(document, path) if document is not None else None
    except CredentialFileError as exc:
        raise ClusterAdminError(str(exc)) from None
    if document is None or credentials is None:
        raise ClusterAdminError(f"{path} holds no credentials")
    key = account_key(*identity(credentials))
    async with _opened(settings) as cluster:
        try:
            stored = await cluster.credentials.store_credentials(key, document)
            if stored:
                await cluster.cache.invalidate(cluster.credentials.namespace, key)
        except StateUnavailable:
            raise ClusterAdminError(UNREACHABLE) from None
    return stored


async def find_shared_account(settings: Settings, name: str) -> str | None:
    """The key of the one stored account called ``name`` (its key, its email, or its email's local part —
    the alias an instance gives it by default), for ``accounts remove`` from a home that does not hold it."""
    import orjson

    from codexgate.state.interface import StateUnavailable
    from codexgate.state.secrets_box import CredentialStore, SecretBoxError

    wanted = name.lower()
    matches: list[str] = []
    async with _opened(settings) as cluster:
        try:
            stored = await cluster.state.scan(cluster.credentials.namespace)
        except StateUnavailable:
            raise ClusterAdminError(UNREACHABLE) from None
    for key, sealed in stored.items():
        if key == name:
            return key
        try:
            document = orjson.loads(cluster.box.open(sealed, CredentialStore._context(key)))
            credentials = credentials_from(document, Path("shared")) if isinstance(document, dict) else None
        except (SecretBoxError, orjson.JSONDecodeError, CredentialFileError):
            continue
        email = (credentials.email or "").lower() if credentials is not None else ""
        if email and wanted in (email, email.split("@", 1)[0]):
            matches.append(key)
    if len(matches) > 1:
        raise ClusterAdminError(f"{name!r} names several shared accounts; use the account key")
    return matches[0] if matches else None


async def unshare_account(settings: Settings, key: str) -> bool | None:
    """Delete the account ``key`` (``chatgpt_account_id:user_id``) from the shared state; True when it was
    there, None without ``state_url``."""
    if not settings.state.state_url:
        return None
    from codexgate.state.interface import StateUnavailable

    async with _opened(settings) as cluster:
        try:
            return await cluster.cache.delete(cluster.credentials.namespace, key)
        except StateUnavailable:
            raise ClusterAdminError(UNREACHABLE) from None


#: never the URL: it may hold a password
UNREACHABLE = (
    "the shared state (state_url) cannot be reached: the account is changed in this home only; "
    "run the command again once Redis answers"
)


async def pause_shared_account(settings: Settings, key: str, paused: bool) -> None:
    """Pause (or resume) the account ``key`` for every instance, through the shared pool state."""
    from codexgate.pool.shared_pool import set_paused_in_store
    from codexgate.state.interface import StateUnavailable

    async with _opened(settings) as cluster:
        try:
            await set_paused_in_store(cluster, key, paused)
        except StateUnavailable:
            raise ClusterAdminError(UNREACHABLE) from None
