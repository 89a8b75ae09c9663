"""What the Messages routes need beyond the pure core: the thinking key, the account tag, the model
rules, and the two adapters between the core's translators and the server's answer helpers.

* :func:`thinking_key`: the HMAC key for thinking signatures, ``$CODEXGATE_HOME/thinking.key`` (32
  random bytes). Created at first use, atomically and with mode 0600: the bytes go to a private
  temporary file that is then *linked* to the final name, so two processes starting at once agree on
  one key (the loser reads the winner's). Read once per process and path. With a shared state
  (``state_url``), :func:`install_cluster_key` replaces it by the cluster's one key: stored sealed with
  ``cluster.box`` in the store, created once by the first instance (under a lock), read by every other.
* :func:`account_tag`: a short hash of a pool account's key (its ``chatgpt_account_id`` and user id); a
  signature names the account whose encrypted reasoning it carries (only that account can continue it).
  :func:`thinking_accounts` maps the tags back to the pool's accounts, :func:`bind_thinking` tells the
  router which account a verified block belongs to (so the request goes there), and :func:`served_tag`
  is the tag of the account that served a call.
* :func:`model_rules`: the one place the Messages routes learn the catalog's rules.
* :class:`MessagesConverter` (stream) and :class:`MessageAnswer` (JSON) wrap the core's
  :class:`~codexgate.protocol.anthropic_stream.MessagesStreamTranslator` and
  :class:`~codexgate.protocol.anthropic_aggregate.MessagesAggregator` for
  :func:`~codexgate.server.answers.streamed` and :func:`~codexgate.server.answers.aggregated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from codexgate.errors import APIError
from codexgate.files import PRIVATE_FILE_MODE, ensure_private_dir
from codexgate.pool.sticky import content_key
from codexgate.protocol.anthropic_aggregate import MessagesAggregator
from codexgate.protocol.anthropic_blocks import PING
from codexgate.protocol.anthropic_stream import MessagesStreamTranslator
from codexgate.protocol.catalog_rules import ModelRules
from codexgate.server.gateway import Call, Gateway
from codexgate.server.streaming import StreamOutcome

if TYPE_CHECKING:
    from codexgate.state.cluster import Cluster

__all__ = [
    "KEY_SIZE",
    "MessageAnswer",
    "MessagesConverter",
    "account_tag",
    "bind_thinking",
    "cluster_thinking_key",
    "install_cluster_key",
    "model_rules",
    "served_tag",
    "thinking_accounts",
    "thinking_key",
]

logger = logging.getLogger("codexgate.server")

KEY_SIZE: Final = 32
KEY_FILE_NAME: Final = "thinking.key"
_keys: dict[Path, bytes] = {}
_fetches: set[asyncio.Task[None]] = set()
_keys_lock = threading.Lock()


def _create_key(path: Path) -> bytes:
    """Write a new key under ``path`` unless one is there already; the key that is there after."""
    ensure_private_dir(path.parent)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_SIZE))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made one first: use that
            os.link(temporary, path)  # atomic, and never replaces a key
    finally:
        os.unlink(temporary)
    return path.read_bytes()


def thinking_key(home: Path) -> bytes:
    """The signing key in ``home`` (created at first use); raises ``OSError`` if it cannot be had."""
    path = home / KEY_FILE_NAME
    with _keys_lock:
        key = _keys.get(path)
        if key is None:
            try:
                key = path.read_bytes()
            except FileNotFoundError:
                key = _create_key(path)
            if len(key) < KEY_SIZE:
                raise OSError(f"{path} holds {len(key)} bytes, fewer than {KEY_SIZE}: remove it to make a new key")
            _keys[path] = key
    return key


CLUSTER_KEY_NAMESPACE: Final = "secrets"
CLUSTER_KEY_NAME: Final = "thinking-key"


async def cluster_thinking_key(cluster: Cluster) -> bytes:
    """The cluster's signing key: read from the store, or created there by the first instance that finds none
    (the check and the write under one lock, so every instance ends up with the same key). Raises
    ``StateUnavailable`` when the store cannot be reached."""
    state, box = cluster.state, cluster.box

    from codexgate.state.secrets_box import SecretBoxError

    async def stored() -> bytes | None:
        sealed = await state.get(CLUSTER_KEY_NAMESPACE, CLUSTER_KEY_NAME)
        if sealed is None:
            return None
        try:
            key = box.open(sealed, CLUSTER_KEY_NAME)
        except SecretBoxError:  # sealed under a secret_key this instance no longer has: replaced below
            logger.warning(
                "the shared signing key cannot be opened with this secret_key; a new one replaces it "
                "(thinking signatures issued before no longer verify)"
            )
            return None
        if box.key_id_of(sealed) != box.key_id:  # secret_key rotated: re-seal under the current one
            await state.put(CLUSTER_KEY_NAMESPACE, CLUSTER_KEY_NAME, box.seal(key, CLUSTER_KEY_NAME))
        return key

    key = await stored()
    if key is None:
        async with state.lock(f"create-{CLUSTER_KEY_NAME}", ttl=10.0).hold(wait=10.0):
            key = await stored()
            if key is None:
                key = secrets.token_bytes(KEY_SIZE)
                await state.put(CLUSTER_KEY_NAMESPACE, CLUSTER_KEY_NAME, box.seal(key, CLUSTER_KEY_NAME))
    if len(key) < KEY_SIZE:
        raise OSError(f"the shared signing key holds {len(key)} bytes, fewer than {KEY_SIZE}")
    return key


def use_key(home: Path, key: bytes) -> None:
    """Make ``key`` the one :func:`thinking_key` answers for ``home`` (the cluster's key, not the file's)."""
    with _keys_lock:
        _keys[home / KEY_FILE_NAME] = key


async def install_cluster_key(cluster: Cluster, home: Path) -> bool:
    """Use the cluster's signing key for ``home``; True when installed. While the store cannot be reached the
    file's key stays in use and the cluster's is installed when the store answers again."""
    from codexgate.state.interface import StateUnavailable

    try:
        use_key(home, await cluster_thinking_key(cluster))
        return True
    except (StateUnavailable, TimeoutError):
        pass

    async def fetch() -> None:
        with contextlib.suppress(StateUnavailable, TimeoutError):
            use_key(home, await cluster_thinking_key(cluster))

    async def retry() -> None:  # on every reconnect, on a task of its own (not on the cluster's prober)
        task = asyncio.create_task(fetch(), name="codexgate-shared-signing-key")
        _fetches.add(task)
        task.add_done_callback(_fetches.discard)

    logger.warning("the shared signing key could not be read: thinking signatures use this instance's key until it can")
    cluster.on_reconnect(retry)
    return False


def account_tag(account_id: str | None) -> str:
    """A short, stable tag for an account (``-`` when the credentials name none)."""
    if not account_id:
        return "-"
    return hashlib.sha256(account_id.encode()).hexdigest()[:16]


def thinking_accounts(gateway: Gateway) -> dict[str, str]:
    """Tag → key of every account of the pool (a signature naming any of them is the gateway's own)."""
    pool = gateway.pool
    if pool is None:
        return {}
    return {account_tag(key): key for key in pool.accounts()}


def bind_thinking(gateway: Gateway, account_key: str, encrypted_content: str) -> None:
    """A verified thinking block of ``account_key``: its encrypted reasoning routes to that account."""
    pool = gateway.pool
    if pool is not None:
        pool.router.remember_content((content_key(encrypted_content),), account_key, time.time())


def served_tag(call: Call) -> str:
    """The tag of the account that served ``call`` (``-`` when none is known)."""
    return account_tag(call.account.key) if call.account is not None else "-"


async def model_rules(gateway: Gateway) -> ModelRules:
    """The catalog's rules (the gateway's one accessor: the fallback table while it cannot be had)."""
    return await gateway.model_rules()


class MessagesConverter:
    """Responses events → Anthropic Messages SSE bytes; a long silence sends a ``ping`` event."""

    keepalive_bytes: Final = PING

    def __init__(self, translator: MessagesStreamTranslator) -> None:
        self.translator = translator

    def convert(self, events: list[dict[str, Any]]) -> bytes:
        feed = self.translator.feed
        if len(events) == 1:  # a paced stream: one event per read
            return b"".join(feed(events[0]))
        frames: list[bytes] = []
        for event in events:
            frames += feed(event)
        return b"".join(frames)

    def finish(self) -> bytes:
        return b"".join(self.translator.finish())

    def fail(self, error: APIError) -> bytes:
        return b"".join(self.translator.fail(error))

    def has_output(self) -> bool:
        return self.translator.has_output

    def outcome(self, outcome: StreamOutcome) -> None:
        translator = self.translator
        outcome.usage = translator.usage
        outcome.rate_limits = translator.rate_limits
        error = translator.error
        if error is not None and outcome.error_code is None:
            outcome.status = error.status_code
            outcome.error_code = error.code or error.type


class MessageAnswer:
    """A :class:`MessagesAggregator` whose ``result()`` is the whole ``Message``."""

    def __init__(self, aggregator: MessagesAggregator) -> None:
        self.aggregator = aggregator

    def feed(self, event: dict[str, Any]) -> Any:
        return self.aggregator.feed(event)

    def finish(self) -> Any:
        return self.aggregator.finish()

    def result(self) -> dict[str, Any]:
        return self.aggregator.message()

    @property
    def usage(self) -> Any:
        return self.aggregator.usage
