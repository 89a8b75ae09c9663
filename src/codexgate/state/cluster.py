"""What one instance holds of the state the instances of a gateway share: :class:`Cluster`.

Built by :func:`open_cluster` from the settings ``state_url``, ``state_prefix``, ``secret_key`` and
``previous_secret_keys``; ``None`` when ``state_url`` is not set (the embedded single-process default).
It bundles

* ``state`` — the :class:`~codexgate.state.redis_state.RedisState` every instance reads and writes;
* ``cache`` — a :class:`~codexgate.state.cache.CachedState` over it (reads answered from memory,
  invalidated by pub/sub), for what the answer path reads on every request;
* ``credentials`` — a :class:`~codexgate.state.secrets_box.CredentialStore`, credentials sealed under
  ``secret_key`` (never a token in plaintext in Redis);
* ``available`` — whether the store answered the last health probe (every ``probe_interval`` seconds);
  ``/health`` reports it (the store itself logs one line when it goes away and one when it is back).

Parts that share state (pool credentials and states, sessions, keys, budgets) take the :class:`Cluster`
and register what must run while the store is reachable again with :meth:`Cluster.on_reconnect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from codexgate.state.cache import CachedState
from codexgate.state.interface import SharedState, StateUnavailable
from codexgate.state.redis_state import RedisState
from codexgate.state.secrets_box import CredentialStore, SecretBox, SecretBoxError

if TYPE_CHECKING:
    from codexgate.config import Settings

__all__ = ["Cluster", "ClusterSettingsError", "cluster_settings_problem", "open_cluster"]

logger = logging.getLogger("codexgate.state")

PROBE_INTERVAL_SECONDS = 0.5


class ClusterSettingsError(Exception):
    """The shared-state settings cannot work together (e.g. ``state_url`` without ``secret_key``)."""


def cluster_settings_problem(settings: Settings) -> str | None:
    """Why these settings cannot start a shared-state instance, or None."""
    state = settings.state
    if state.state_url and not state.secret_key:
        return (
            "state_url is set but secret_key is not: credentials are shared through the state only encrypted. "
            "Set secret_key (CODEXGATE_SECRET_KEY) to a long random string, the same on every instance, e.g. "
            'python -c "import secrets; print(secrets.token_urlsafe(32))".'
        )
    return None


class Cluster:
    """The shared state of one instance (see the module docstring). :meth:`start` before use."""

    def __init__(
        self,
        state: SharedState,
        box: SecretBox,
        *,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
    ) -> None:
        self.state = state
        self.cache = CachedState(state)
        self.box = box
        self.credentials = CredentialStore(state, box)
        self.probe_interval = probe_interval
        self.available = True
        self._reconnect_hooks: list[Callable[[], Awaitable[None]]] = []
        self._prober: asyncio.Task[None] | None = None
        self._rewrapper: asyncio.Task[None] | None = None

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` each time the store answers again after an outage (errors are logged, not raised)."""
        self._reconnect_hooks.append(hook)

    async def start(self) -> None:
        """Probe the store once (an unreachable store is logged, not fatal), start the cache and the prober."""
        self.available = await self.state.health()  # the store logs an outage itself, once
        await self.cache.start(wait=1.0 if self.available else 0.0)
        if self._prober is None:
            self._prober = asyncio.create_task(self._probe_loop(), name="codexgate-state-probe")
        if self.box.rotating and self._rewrapper is None:
            self._rewrapper = asyncio.create_task(self._rewrap(), name="codexgate-state-rewrap")

    async def _rewrap(self) -> None:
        """``previous_secret_keys`` set (a rotation): re-seal every stored credential under the current
        ``secret_key``, retried every few seconds until the store answers; the log says when none is left."""
        while True:
            try:
                count = await self.credentials.rewrap_all()
            except StateUnavailable:
                await asyncio.sleep(5.0)
                continue
            except SecretBoxError as exc:  # sealed under a key that is neither current nor previous
                logger.warning("credentials rotation: %s", exc)
                return
            logger.info(
                "secret_key rotation: %d stored credential document(s) re-sealed under the current key; "
                "previous_secret_keys may be removed once every instance runs with the new secret_key",
                count,
            )
            return

    async def close(self) -> None:
        if self._rewrapper is not None:
            self._rewrapper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rewrapper
            self._rewrapper = None
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
            self._prober = None
        await self.cache.close()
        await self.state.close()

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            healthy = await self.state.health()
            if healthy == self.available:
                continue
            self.available = healthy
            if not healthy:
                continue
            for hook in list(self._reconnect_hooks):
                try:
                    await hook()
                except Exception as exc:  # a hook that fails must not stop the prober
                    logger.warning("resync after the shared state returned failed: %s", type(exc).__name__)


def open_cluster(settings: Settings) -> Cluster | None:
    """The :class:`Cluster` for these settings, or None without ``state_url``."""
    state = settings.state
    if not state.state_url:
        return None
    problem = cluster_settings_problem(settings)
    if problem is not None:
        raise ClusterSettingsError(problem)
    assert state.secret_key is not None
    box = SecretBox(state.secret_key, previous_keys=state.previous_secret_keys)
    return Cluster(RedisState.from_url(state.state_url, prefix=state.state_prefix), box)
