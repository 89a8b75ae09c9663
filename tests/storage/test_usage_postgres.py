"""Usage rows in a real PostgreSQL (``database_url``): migrations, a real gateway writing, ``stats``, outages."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest

from codexgate.storage import usage_db, usage_pg
from codexgate.storage.usage_db import POSTGRESQL, SCHEMA_VERSION, UsageDBError, UsageRecord
from codexgate.storage.usage_writer import UsageWriter
from codexgate.testing import Scenario, UpstreamSimulator
from tests.cli.cli_support import cli_env, run_cli
from tests.conftest import start_gateway
from tests.helpers import wait_until
from tests.services import PostgresServer, pg_url, postgres_server

__all__ = ["pg_url", "postgres_server"]


def pg_rows(url: str) -> list[UsageRecord]:
    with closing(usage_pg.connect(url)) as conn:
        return usage_db.fetch_records(conn, engine=POSTGRESQL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Forwarder:
    """A TCP relay on a fixed loopback port to PostgreSQL: stopping it is PostgreSQL going away."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port, self.target_port = port, target_port
        self.server: socketserver.ThreadingTCPServer | None = None
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                upstream = socket.create_connection(("127.0.0.1", relay.target_port))
                relay.sockets += [client, upstream]
                threading.Thread(target=relay.pump, args=(upstream, client), daemon=True).start()
                relay.pump(client, upstream)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for sock in self.sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()


@pytest.fixture
def relay(postgres_server: PostgresServer) -> Iterator[Forwarder]:
    forwarder = Forwarder(free_port(), postgres_server.port)
    yield forwarder
    forwarder.stop()


def through(url: str, port: int) -> str:
    """``url`` with its port replaced by ``port``."""
    head, _, tail = url.rpartition("@")
    _host_port, _, database = tail.partition("/")
    return f"{head}@127.0.0.1:{port}/{database}"


def record(number: int, **overrides: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "time": 1_700_000_000.0 + number * 6 * 3600,  # 2023-11-14 22:13 UTC + 6 h steps
        "model_requested": "gpt-5" if number % 2 else "gpt-5-mini",
        "key_name": "ci" if number % 3 else None,
        "account": "work",
        "input_tokens": 10 * number,
        "cached_tokens": number,
        "output_tokens": 5 * number,
        "ttft_ms": 100.0 * number,
        "duration_ms": 250.0,
    }
    values.update(overrides)
    return UsageRecord(**values)


# ---- migrations ------------------------------------------------------------------------------------


def columns_and_indexes(url: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(url) as conn:
        columns = {
            r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'usage'")
        }
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'usage'")}
    return columns, indexes


def test_migrations_from_empty_step_by_step(pg_url: str) -> None:
    with closing(usage_pg.connect(pg_url, upto=2)) as conn:
        assert usage_db.schema_version(conn, POSTGRESQL) == 2
    columns, indexes = columns_and_indexes(pg_url)
    assert "request_id" in columns and "account" not in columns
    assert "usage_time" in indexes and "usage_key_time" not in indexes

    with closing(usage_pg.connect(pg_url)) as conn:
        assert usage_db.schema_version(conn, POSTGRESQL) == SCHEMA_VERSION == 4
        assert usage_db.migrate(conn, engine=POSTGRESQL) == SCHEMA_VERSION  # nothing left to do
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    columns, indexes = columns_and_indexes(pg_url)
    assert columns == {"id", *usage_db.RECORD_COLUMNS}
    assert {"usage_time", "usage_key_time", "usage_status_time"} <= indexes


def test_instances_starting_together_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            usage_pg.connect(pg_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_database_from_a_newer_codexgate_is_refused(pg_url: str) -> None:
    usage_pg.connect(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(UsageDBError, match="newer"):
        usage_pg.connect(pg_url)


def test_sqlite_gets_the_same_schema_version_table(tmp_path: Path) -> None:
    with closing(usage_db.connect(tmp_path / "usage.db")) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)  # what older releases read


def test_summarize_gives_the_same_answer_on_both_engines(pg_url: str, tmp_path: Path) -> None:
    records = [record(n) for n in range(1, 8)] + [record(8, status=429, error_code="rate_limited", ttft_ms=None)]
    with closing(usage_pg.connect(pg_url)) as conn:
        usage_db.insert_records(conn, records, engine=POSTGRESQL)
    with closing(usage_db.connect(tmp_path / "usage.db")) as conn:
        usage_db.insert_records(conn, records)
    since = records[2].time
    on_postgres = usage_db.summarize(pg_url, since)
    on_sqlite = usage_db.summarize(tmp_path / "usage.db", since)
    assert on_postgres == on_sqlite
    assert on_postgres.totals.requests == 6 and on_postgres.totals.errors == 1
    assert [g.group for g in on_postgres.by_day] == ["2023-11-15", "2023-11-16"]
    assert pg_rows(pg_url) == records


# ---- a real gateway --------------------------------------------------------------------------------


def chat(base_url: str, count: int) -> None:
    import openai

    client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-anything", max_retries=0)
    for _ in range(count):
        answer = client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    assert wait_until(condition, timeout=timeout), "condition not met in time"


def test_a_gateway_writes_to_postgres_and_stats_reads_it(
    simulator: UpstreamSimulator, pg_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    for _ in range(3):
        simulator.enqueue(Scenario("text", text="hello there", usage={"input_tokens": 12, "output_tokens": 3}))
    settings, served_context = start_gateway(simulator, home, database_url=pg_url)
    with served_context as served:
        chat(served.base_url, 3)
        wait_for(lambda: len(pg_rows(pg_url)) == 3)
    rows = pg_rows(pg_url)
    assert {r.status for r in rows} == {200} and {r.endpoint for r in rows} == {"chat.completions"}
    assert sum(r.input_tokens for r in rows) == 36
    if settings.database_path.exists():  # nothing went to the embedded file
        with closing(sqlite3.connect(settings.database_path)) as conn:
            assert conn.execute("SELECT COUNT(*) FROM usage").fetchone() == (0,)

    done = run_cli(
        ["stats", "--json", "--since", "all"],
        cli_env(tmp_path, CODEXGATE_HOME=str(tmp_path / "other-home"), CODEXGATE_DATABASE_URL=pg_url),
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["totals"]["requests"] == 3
    assert document["totals"]["input_tokens"] == 36
    password = pg_url.split("@")[0].rsplit(":", 1)[1]
    assert password not in done.stdout and password not in done.stderr


def test_requests_go_on_while_postgres_is_away_and_rows_follow(
    simulator: UpstreamSimulator, pg_url: str, relay: Forwarder, tmp_path: Path
) -> None:
    for _ in range(6):
        simulator.enqueue(Scenario("text", text="still here"))
    _settings, served_context = start_gateway(simulator, tmp_path / "home", database_url=through(pg_url, relay.port))
    with served_context as served:
        writer: UsageWriter = served.server.config.app.state.gateway.usage_writer
        chat(served.base_url, 2)  # PostgreSQL unreachable from the start: the server still started and answers
        wait_for(lambda: writer.unreachable)
        relay.start()
        wait_for(lambda: len(pg_rows(pg_url)) == 2)

        relay.stop()  # gone mid-run: the open connection is cut
        chat(served.base_url, 2)
        wait_for(lambda: writer.unreachable)
        assert len(pg_rows(pg_url)) == 2
        relay.start()
        wait_for(lambda: len(pg_rows(pg_url)) == 4)
        assert writer.dropped == 0


def test_past_the_bound_rows_are_counted_as_dropped(
    pg_url: str, relay: Forwarder, caplog: pytest.LogCaptureFixture
) -> None:
    usage_pg.connect(pg_url).close()  # migrated; the writer then only sees the relay
    writer = UsageWriter(through(pg_url, relay.port), max_queue=3, outage_retry_max=0.2)
    writer.open()
    try:
        with caplog.at_level(logging.WARNING, logger="codexgate.usage"):
            assert writer.submit(record(1))
            wait_for(lambda: writer.unreachable and writer.pending == 0)  # the thread holds record 1
            accepted = [writer.submit(record(n)) for n in range(2, 8)]
            assert accepted == [True, True, True, False, False, False]
            assert writer.dropped == 3
            relay.start()
            assert writer.flush(15)
    finally:
        writer.close()
    assert pg_rows(pg_url) == [record(n) for n in range(1, 5)]
    assert writer.written == 4
    dropped_lines = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped_lines) == 1
    assert "1 dropped so far" in dropped_lines[0].getMessage()
    password = pg_url.split("@")[0].rsplit(":", 1)[1]
    assert any(":***@" in r.getMessage() for r in caplog.records)  # the outage line names the server...
    assert not any(password in r.getMessage() for r in caplog.records)  # ...without its password


def test_the_setting_takes_only_postgresql_urls_and_is_never_shown(tmp_path: Path) -> None:
    from codexgate.config import SettingsError, load_settings

    url = "postgresql://gate:pw-not-to-show-42@127.0.0.1:5432/usage"
    assert load_settings(flags={}, env={"CODEXGATE_DATABASE_URL": url}).settings.storage.database_url == url
    with pytest.raises(SettingsError, match="database_url"):
        load_settings(flags={}, env={"CODEXGATE_DATABASE_URL": "mysql://gate@127.0.0.1/usage"})
    shown = run_cli(
        ["config", "show"], cli_env(tmp_path, CODEXGATE_HOME=str(tmp_path / "h"), CODEXGATE_DATABASE_URL=url)
    )
    assert shown.returncode == 0, shown.stderr
    assert "database_url" in shown.stdout and "pw-not-to-show-42" not in shown.stdout + shown.stderr


def test_closing_during_an_outage_gives_up_after_the_grace(pg_url: str, relay: Forwarder) -> None:
    writer = UsageWriter(through(pg_url, relay.port), batch_size=1, outage_retry_max=0.1, outage_grace=0.5)
    writer.open()
    for n in range(1, 21):
        assert writer.submit(record(n))
    started = time.monotonic()
    writer.close(timeout=20)
    took = time.monotonic() - started
    assert 0.4 < took < 10  # waited the grace once, not once per batch
    assert writer.dropped == 20 and writer.written == 0
