"""Several codexgate processes as one gateway: the harness of the shared-state tests (issue 16).

:func:`start_cluster` starts, on 127.0.0.1 and free ports,

* the upstream simulator as a process (``python -m codexgate.testing.simulator``), read and steered through
  its control API (:class:`~codexgate.testing.simulator_control.SimulatorControl`: refreshes per account,
  requests per account, usage limits, a slow token endpoint);
* N ``codexgate serve`` processes (the real console entry point), each with its own ``CODEXGATE_HOME``,
  ``CODEXGATE_STATE_URL`` at a Redis the test owns (it may ``stop()``/``start()`` it on the same port),
  ``CODEXGATE_SECRET_KEY``, ``CODEXGATE_DATABASE_URL`` at a database of its own in the session's PostgreSQL,
  upstream and sign-in server at the simulator. Instance 1's home holds the account files (``accounts_on=
  "first"``: the others learn the accounts from Redis) or every home holds copies of them (``"all"``).

:class:`GatewayCluster` then offers ``kill_9(i)``, ``restart(i)``, ``health(i)``, each instance's log, the
``codexgate stats`` and ``codexgate keys`` CLIs against the cluster, and :class:`RoundRobinClient`: an async
httpx client over the instances that sends each request to the next instance and, when the connection to it
fails (refused, or cut before an answer), sends it again to the following one, as a load balancer would.

Every wait is bounded (:data:`START_TIMEOUT`, :data:`REQUEST_TIMEOUT`): a test that fails does so in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from bench.processes import gateway_env, wait_announced

from codexgate.testing.demo_auth import demo_auth_document, pool_account_ids, write_pool_accounts
from codexgate.testing.ports import free_port
from codexgate.testing.simulator_control import SimulatorControl
from tests.services import PostgresServer, RedisServer, _tied_to_this_process

__all__ = [
    "SECRET_KEY",
    "GatewayCluster",
    "Instance",
    "RoundRobinClient",
    "SimulatorProcess",
    "create_database",
    "start_cluster",
]

HOST = "127.0.0.1"
SECRET_KEY = "cluster-tests-" + secrets.token_urlsafe(24)
START_TIMEOUT = 60.0  # three interpreters importing the gateway at once on a loaded 2-core machine
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 20.0
CLI = str(Path(sys.executable).with_name("codexgate"))
#: what a load balancer retries on the next instance: the connection failed, no answer was received
CONNECTION_FAILURES = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _spawn(command: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``command`` in its own session, output appended to ``log``, killed if the test process dies."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [*_tied_to_this_process("SIGKILL"), *command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _end(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(STOP_TIMEOUT)


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def create_database(server: PostgresServer, name: str) -> str:
    """A new, empty database ``name`` in ``server``; its URL."""
    assert server.bin_dir is not None
    env = {**os.environ, "PGPASSWORD": server.password}
    command = [str(server.bin_dir / "createdb"), "-h", HOST, "-p", str(server.port), "-U", server.user, name]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"createdb {name} failed: {done.stderr[-1000:]}")
    return f"postgresql://{server.user}:{server.password}@{HOST}:{server.port}/{name}"


@dataclass
class SimulatorProcess:
    """The simulator as a process of its own (the gateways' upstream and sign-in server)."""

    directory: Path
    event_delay: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def control(self) -> SimulatorControl:
        return SimulatorControl(self.base_url)

    @property
    def log(self) -> Path:
        return self.directory / "simulator.log"

    def start(self) -> SimulatorProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        command = [sys.executable, "-m", "codexgate.testing.simulator", "--port", "0", "--max-recorded", "100000"]
        command += ["--event-delay", str(self.event_delay)]
        self.process = _spawn(command, self.log)
        self.port = wait_announced(self.process, self.log, offset)
        return self

    def stop(self) -> None:
        _end(self.process)
        self.process = None


@dataclass
class Instance:
    """One ``codexgate serve`` process of the cluster (``index`` counts from 1)."""

    index: int
    home: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.home.parent / f"instance-{self.index}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Instance:
        with self.log.open("a") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n")
        self.process = _spawn([CLI, "serve"], self.log, self.env)
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """``/health``'s answer once it answers 200; fails if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"instance {self.index} exited ({code}): {self.log_text()}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(self.base_url + "/health", timeout=1.0)
                if answer.status_code == 200:
                    document: dict[str, Any] = answer.json()
                    return document
            time.sleep(0.05)
        raise RuntimeError(f"instance {self.index} was not healthy within {timeout:.0f} s: {self.log_text()}")

    def health(self) -> dict[str, Any]:
        answer = httpx.get(self.base_url + "/health", timeout=5.0)
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document

    def kill_9(self) -> None:
        _end(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _end(self.process)

    def log_text(self, size: int = 4000) -> str:
        return _tail(self.log, size)


@dataclass
class GatewayCluster:
    """The simulator, Redis, a PostgreSQL database and the gateway instances of one test."""

    directory: Path
    simulator: SimulatorProcess
    redis: RedisServer
    database_url: str
    instances: list[Instance] = field(default_factory=list)
    account_ids: list[str] = field(default_factory=list)
    api_key: str | None = None

    def instance(self, index: int) -> Instance:
        """Instance ``index``, counting from 1."""
        return self.instances[index - 1]

    @property
    def urls(self) -> list[str]:
        return [instance.base_url for instance in self.instances]

    def kill_9(self, index: int) -> None:
        self.instance(index).kill_9()

    def restart(self, index: int, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Stop instance ``index`` if it runs, start it again on the same port and home; its ``/health``."""
        instance = self.instance(index)
        instance.stop()
        instance.start()
        return instance.wait_healthy(timeout)

    def health(self, index: int) -> dict[str, Any]:
        return self.instance(index).health()

    def client(self, **options: Any) -> RoundRobinClient:
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return RoundRobinClient(self.urls, headers=headers, **options)

    def cli(self, *args: str, index: int = 1, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``codexgate ARGS`` with instance ``index``'s environment (home, state, database)."""
        env = {**self.instance(index).env, "NO_COLOR": "1", "COLUMNS": "120"}
        return subprocess.run(
            [CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def stats(self) -> dict[str, Any]:
        """``codexgate stats --json --since all`` against the cluster's database."""
        done = self.cli("stats", "--json", "--since", "all")
        if done.returncode != 0:
            raise AssertionError(f"codexgate stats failed ({done.returncode}): {done.stderr[-2000:]}")
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def create_key(self, name: str, index: int = 1) -> str:
        """``codexgate keys create`` through instance ``index``'s environment; the key."""
        done = self.cli("keys", "create", "--name", name, index=index)
        if done.returncode != 0:
            raise AssertionError(f"codexgate keys create failed: {done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1]

    def revoke_key(self, name: str, index: int = 1) -> None:
        done = self.cli("keys", "revoke", name, index=index)
        if done.returncode != 0:
            raise AssertionError(f"codexgate keys revoke failed: {done.stderr[-2000:]}")

    def logs(self, size: int = 3000) -> str:
        """The end of every process's log, for a failing test's message."""
        parts = [f"== instance {i.index} ==\n{i.log_text(size)}" for i in self.instances]
        parts.append(f"== simulator ==\n{_tail(self.simulator.log, size)}")
        return "\n".join(parts)

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        self.simulator.stop()


def instance_env(
    home: Path, simulator: SimulatorProcess, port: int, *, state_url: str | None, database_url: str | None, prefix: str
) -> dict[str, str]:
    """A gateway's environment: default settings but for home, port, upstream, sign-in server and state."""
    env = gateway_env(home, simulator.port, port)
    env.update(
        HOME=str(home),
        CODEXGATE_AUTH_ISSUER=simulator.base_url,
        CODEXGATE_LOG_LEVEL="info",
        CODEXGATE_STATE_PREFIX=prefix,
        CODEXGATE_UPSTREAM_RETRIES="1",
    )
    if state_url is not None:
        env.update(CODEXGATE_STATE_URL=state_url, CODEXGATE_SECRET_KEY=SECRET_KEY)
    if database_url is not None:
        env["CODEXGATE_DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def start_cluster(
    directory: Path,
    redis: RedisServer,
    postgres: PostgresServer,
    *,
    instances: int = 3,
    accounts: int = 3,
    expired: bool = False,
    expired_accounts: int = 0,
    accounts_on: Literal["first", "all"] = "first",
    api_key: bool = False,
    event_delay: float = 0.0,
) -> Iterator[GatewayCluster]:
    """Start a cluster (see the module docstring) and stop every process it started on the way out.

    ``expired``: every account's access token has expired (each account's first request refreshes);
    ``expired_accounts``: only the last that many have;
    ``api_key``: a key is created through instance 1 before the instances start (``cluster.api_key``)."""
    directory.mkdir(parents=True, exist_ok=True)
    simulator = SimulatorProcess(directory, event_delay=event_delay)
    cluster = GatewayCluster(directory, simulator, redis, create_database(postgres, f"c{secrets.token_hex(6)}"))
    prefix = f"cg{secrets.token_hex(4)}:"
    try:
        simulator.start()
        for index in range(1, instances + 1):
            home = directory / f"home-{index}"
            home.mkdir(mode=0o700)
            if index == 1:
                write_pool_accounts(home, accounts, expires_in=-60 if expired else 3600)
                for account_id in pool_account_ids(accounts)[accounts - expired_accounts :]:
                    document = demo_auth_document(time.time(), expires_in=-60, account_id=account_id)
                    (home / "accounts" / f"{account_id}.json").write_text(json.dumps(document))
            elif accounts_on == "all":  # the same files (the same refresh tokens), as copies of one login would be
                shutil.copytree(directory / "home-1" / "accounts", home / "accounts")
            env = instance_env(
                home, simulator, free_port(), state_url=redis.url, database_url=cluster.database_url, prefix=prefix
            )
            cluster.instances.append(Instance(index, home, int(env["CODEXGATE_PORT"]), env))
        cluster.account_ids = pool_account_ids(accounts)
        if api_key:
            cluster.api_key = cluster.create_key("cluster-test")
        for instance in cluster.instances:
            instance.start()
        for instance in cluster.instances:
            instance.wait_healthy()
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Outcome:
    """What :class:`RoundRobinClient` did for one request: the answer (or the error that ended it), and
    the instances it tried in order."""

    response: httpx.Response | None
    error: BaseException | None
    tried: list[int]


class RoundRobinClient:
    """``async with RoundRobinClient(urls) as client: await client.post("/v1/responses", json=…)``.

    Each request goes to the next instance in turn; when its connection fails (refused, reset, cut before
    the answer came) it is sent to the following instance, up to once per instance. A timeout is not
    retried (the request may have been served): it is raised. ``outcomes`` records every request."""

    def __init__(
        self, urls: Sequence[str], *, headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self.urls = list(urls)
        self._turn = itertools.count()
        self._client = httpx.AsyncClient(
            headers=headers or {}, timeout=timeout, limits=httpx.Limits(max_connections=1000)
        )
        self.outcomes: list[Outcome] = []

    async def __aenter__(self) -> RoundRobinClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    @property
    def retried(self) -> int:
        """Requests sent to more than one instance."""
        return sum(1 for outcome in self.outcomes if len(outcome.tried) > 1)

    async def request(self, method: str, path: str, *, instance: int | None = None, **kwargs: Any) -> httpx.Response:
        """Send to ``instance`` (1-based) first if given, else to the next in turn; retried as above."""
        first = (instance - 1) if instance is not None else next(self._turn) % len(self.urls)
        outcome = Outcome(None, None, [])
        self.outcomes.append(outcome)
        for step in range(len(self.urls)):
            index = (first + step) % len(self.urls)
            outcome.tried.append(index + 1)
            try:
                outcome.response = await self._client.request(method, self.urls[index] + path, **kwargs)
                outcome.error = None
                return outcome.response
            except CONNECTION_FAILURES as exc:
                outcome.error = exc
            except BaseException as exc:
                outcome.error = exc
                raise
        assert outcome.error is not None
        raise outcome.error

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def gather(self, count: int, make: Any, *, limit: float = 60.0) -> list[httpx.Response | BaseException]:
        """Run ``make(i)`` (a coroutine using this client) for ``i < count`` at once; each answer or error.
        The whole lot is bounded by ``limit`` seconds (a hang fails the test rather than stalling it)."""
        tasks = [asyncio.ensure_future(make(i)) for i in range(count)]
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), limit)
        return list(done)
