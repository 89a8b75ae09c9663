"""The PostgreSQL the harness starts is real, on loopback, and not run as root."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from tests.services import PostgresServer


async def test_create_insert_select(postgres_server: PostgresServer) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as connection:
        await connection.execute("CREATE TABLE harness_smoke (id SERIAL PRIMARY KEY, model TEXT, tokens INTEGER)")
        try:
            async with connection.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO harness_smoke (model, tokens) VALUES (%s, %s)", [("gpt-a", 10), ("gpt-b", 32)]
                )
                await cursor.execute("SELECT model, tokens FROM harness_smoke ORDER BY id")
                assert await cursor.fetchall() == [("gpt-a", 10), ("gpt-b", 32)]
                await cursor.execute("SELECT sum(tokens) FROM harness_smoke")
                assert await cursor.fetchone() == (42,)
        finally:
            await connection.execute("DROP TABLE harness_smoke")


def test_the_server_listens_on_loopback_as_an_unprivileged_user(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url) as connection:
        assert connection.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    assert postgres_server.process is not None
    status = Path(f"/proc/{postgres_server.process.pid}/status").read_text()
    real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert real_uid != 0
    if os.geteuid() != 0:
        assert real_uid == os.geteuid()


def test_a_wrong_password_is_refused(postgres_server: PostgresServer) -> None:
    wrong = postgres_server.url.replace(postgres_server.password, "not-the-password")
    try:
        psycopg.connect(wrong, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("connected with a wrong password")
