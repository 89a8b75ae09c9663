"""Real Redis and PostgreSQL servers for the tests: on 127.0.0.1, free ports, temporary directories.

Use the fixtures from a conftest (``from tests.services import redis_server, ...``):

* ``redis_server`` (session): one ``redis-server`` with a password, shared by the session's tests; each
  test should use its own key prefix (``redis_prefix``).
* ``own_redis`` (function): a ``redis-server`` of this test alone, that the test may ``stop()`` and
  ``start()`` again on the same port (outage tests).
* ``postgres_server`` (session): a PostgreSQL cluster made by ``initdb`` with a password user. ``initdb``
  and ``postgres`` refuse to run as root, so as root they run as the unprivileged user ``nobody`` (or
  ``$CODEXGATE_TEST_PG_USER``) via ``setpriv``, in a temporary directory that user owns.

The binaries come from Debian's ``redis-server`` and ``postgresql`` packages (``scripts/test-services.sh``
installs them); ``$CODEXGATE_REDIS_SERVER`` and ``$CODEXGATE_PG_BIN`` point elsewhere. When one is missing
the fixture fails with what to install. :class:`RedisServer` and :class:`PostgresServer` are plain classes
too, for the benchmarks.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServiceMissing",
    "free_port",
    "own_redis",
    "postgres_server",
    "redis_prefix",
    "redis_server",
]

INSTALL_HINT = "run scripts/test-services.sh (as root or with sudo), or: apt-get install redis-server postgresql"


class ServiceMissing(RuntimeError):
    """A server binary the tests need is not installed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tied_to_this_process(signal_name: str, *setpriv_options: str) -> list[str]:
    """A ``setpriv`` prefix that signals the server when the test process dies (no orphans after a kill -9)."""
    setpriv = shutil.which("setpriv") or ("/usr/bin/setpriv" if Path("/usr/bin/setpriv").exists() else None)
    if setpriv is None:
        if setpriv_options:
            raise ServiceMissing(f"setpriv (util-linux) is needed to run PostgreSQL as another user: {INSTALL_HINT}")
        return []
    return [setpriv, *setpriv_options, "--pdeathsig", signal_name, "--"]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class RedisServer:
    """One ``redis-server`` on 127.0.0.1 (``start``/``stop`` may be called again: the port stays)."""

    directory: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    binary: str = ""
    process: subprocess.Popen[bytes] | None = None
    #: words put before the command (e.g. ``["taskset", "-c", "1"]`` to give Redis its own core)
    command_prefix: list[str] = field(default_factory=list)
    #: (certificate, key) PEM files: serve TLS only (``rediss://``), clients are not asked for certificates
    tls: tuple[Path, Path] | None = None

    def __post_init__(self) -> None:
        configured = os.environ.get("CODEXGATE_REDIS_SERVER")
        if configured and not self.binary and not os.access(configured, os.X_OK):
            raise ServiceMissing(f"CODEXGATE_REDIS_SERVER={configured} is not an executable file")
        self.binary = self.binary or configured or shutil.which("redis-server") or ""
        if not self.binary and Path("/usr/bin/redis-server").exists():
            self.binary = "/usr/bin/redis-server"
        if not self.binary:
            raise ServiceMissing(f"redis-server is not installed: {INSTALL_HINT}")

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        arguments = [
            *self.command_prefix,
            *_tied_to_this_process("SIGTERM"),
            self.binary,
            "--bind", "127.0.0.1",
            *(("--port", str(self.port)) if self.tls is None else (
                "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls[0]),
                "--tls-key-file", str(self.tls[1]), "--tls-auth-clients", "no",
            )),
            "--dir", str(self.directory),
            "--requirepass", self.password,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(log),
        ]  # fmt: skip
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process, "redis-server", timeout, log)
        return self

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL)
        self.process = None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (``initdb`` + ``postgres``), as an unprivileged user."""

    port: int = field(default_factory=free_port)
    user: str = "codexgate"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    database: str = "postgres"
    bin_dir: Path | None = None
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    run_as: str | None = None

    def __post_init__(self) -> None:
        self.bin_dir = self.bin_dir or self._find_bin_dir()
        if os.geteuid() == 0:
            self.run_as = os.environ.get("CODEXGATE_TEST_PG_USER", "nobody")
            try:
                pwd.getpwnam(self.run_as)
            except KeyError:
                raise ServiceMissing(
                    f"PostgreSQL refuses to run as root and user {self.run_as!r} does not exist: "
                    "create one (useradd --system pgtest) and set CODEXGATE_TEST_PG_USER"
                ) from None

    @staticmethod
    def _find_bin_dir() -> Path:
        configured = os.environ.get("CODEXGATE_PG_BIN")
        if configured and not (Path(configured) / "initdb").exists():
            raise ServiceMissing(f"CODEXGATE_PG_BIN={configured} holds no initdb")
        candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        for candidate in candidates:
            if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
                return Path(candidate)
        on_path = shutil.which("initdb")
        if on_path and shutil.which("postgres"):
            return Path(on_path).parent
        raise ServiceMissing(f"PostgreSQL (initdb, postgres) is not installed: {INSTALL_HINT}")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _command(self, *arguments: str) -> list[str]:
        assert self.bin_dir is not None
        command = [str(self.bin_dir / arguments[0]), *arguments[1:]]
        # setpriv execs the server itself (runuser would stay as a parent that does not pass signals on);
        # SIGINT is PostgreSQL's fast shutdown
        if self.run_as:
            as_user = (f"--reuid={self.run_as}", f"--regid={self._group}", "--init-groups")
            return [*_tied_to_this_process("SIGINT", *as_user), *command]
        return [*_tied_to_this_process("SIGINT"), *command]

    @property
    def _group(self) -> int:
        assert self.run_as is not None
        return pwd.getpwnam(self.run_as).pw_gid

    def start(self, timeout: float = 30.0) -> PostgresServer:
        # Not under pytest's tmp_path: that is private to root, and the server's user must reach its directory.
        self.directory = Path(tempfile.mkdtemp(prefix="codexgate-pg-"))
        data, log, password_file = self.directory / "data", self.directory / "postgres.log", self.directory / "pw"
        password_file.write_text(self.password + "\n")
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.directory, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        initdb = subprocess.run(
            self._command(
                "initdb", "-D", str(data), "-U", self.user, f"--pwfile={password_file}",
                "--auth=scram-sha-256", "--no-sync", "--encoding=UTF8", "--locale=C.UTF-8",
            ),
            capture_output=True,
            timeout=120,
            cwd=self.directory,
        )  # fmt: skip
        password_file.unlink()
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.decode(errors='replace')[-2000:]}")
        with log.open("wb") as log_file:
            self.process = subprocess.Popen(
                self._command(
                    "postgres", "-D", str(data), "-p", str(self.port),
                    "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                ),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )  # fmt: skip
        self._wait_ready(timeout, log)
        return self

    def _wait_ready(self, timeout: float, log: Path) -> None:
        assert self.bin_dir is not None and self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {_tail(log)}")
            probe = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
            if subprocess.run(probe, capture_output=True, timeout=10).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres was not ready on 127.0.0.1:{self.port} within {timeout} s: {_tail(log)}")

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT, timeout=20)  # SIGINT: PostgreSQL's fast shutdown
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


# -- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test alone, so tests sharing ``redis_server`` never see each other's keys."""
    return f"t{secrets.token_hex(4)}:"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path / "redis")
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database of this test alone on the shared server (dropped afterwards)."""
    import psycopg  # only the PostgreSQL tests need the driver

    name = f"test_{secrets.token_hex(5)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
