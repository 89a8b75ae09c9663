"""Three codexgate processes against one Redis, one PostgreSQL and one simulator: they start, serve, are
counted whole by ``stats``, report the shared state in ``/health``; and the settings' guard rails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.cluster.harness import CLI, GatewayCluster, Instance
from tests.helpers import wait_until

REQUEST = {"model": "gpt-5", "input": "hello", "stream": False}


async def test_three_instances_serve_against_redis_and_postgres(shared_cluster: GatewayCluster) -> None:
    for index in (1, 2, 3):
        health = shared_cluster.health(index)
        assert health["shared_state"] == "ok" and health["credentials"] is True
    before = len(shared_cluster.simulator.control.requests())
    async with shared_cluster.client() as client:
        answers = [await client.post("/v1/responses", json=REQUEST) for _ in range(9)]
        assert [answer.status_code for answer in answers] == [200] * 9
        assert all(answer.json()["status"] == "completed" for answer in answers)
        assert sorted(outcome.tried[0] for outcome in client.outcomes) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
        assert client.retried == 0
    assert len(shared_cluster.simulator.control.requests()) == before + 9


def stats_requests(cluster: GatewayCluster) -> int:
    requests: int = cluster.stats()["totals"]["requests"]
    return requests


def usage_rows(cluster: GatewayCluster) -> int:
    """The usage rows in the cluster's PostgreSQL database, read directly (quicker than a CLI run per poll)."""
    import psycopg

    with psycopg.connect(cluster.database_url, connect_timeout=5) as connection:
        row = connection.execute("SELECT count(*) FROM usage").fetchone()
    assert row is not None
    return int(row[0])


async def test_stats_counts_every_request_of_all_three(shared_cluster: GatewayCluster) -> None:
    before, rows_before = stats_requests(shared_cluster), usage_rows(shared_cluster)
    async with shared_cluster.client() as client:
        for index in (1, 2, 3):
            for _ in range(index + 1):  # 2, 3 and 4 requests: each instance's rows are told apart by the total
                assert (await client.post("/v1/responses", json=REQUEST, instance=index)).status_code == 200
    assert wait_until(lambda: usage_rows(shared_cluster) >= rows_before + 9, timeout=15, interval=0.1)
    time.sleep(0.3)
    document = shared_cluster.stats()
    assert document["totals"]["requests"] == before + 9  # every request of the three, none twice
    assert document["database"].startswith("postgresql://")
    assert shared_cluster.redis.password not in json.dumps(document)


def test_serve_refuses_state_url_without_secret_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEXGATE_", "CODEX_"))}
    env |= {"CODEXGATE_HOME": str(tmp_path), "HOME": str(tmp_path), "CODEXGATE_PORT": "0"}
    env["CODEXGATE_STATE_URL"] = "redis://127.0.0.1:9/0"
    done = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "state_url is set but secret_key is not" in message and "CODEXGATE_SECRET_KEY" in message


EMBEDDED_PROBE = """
import asyncio, json, sys
import httpx, uvicorn
from codexgate.config import load_settings
from codexgate.server.app import create_app
from codexgate.testing.simulator_process import simulator_thread
home = sys.argv[1]

async def main(base_url):
    flags = {"home": home, "codex_home": home + "/codex", "upstream_url": base_url, "auth_issuer": base_url}
    app = create_app(load_settings(flags=flags, env={}).settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        health = await client.get("/health")
        answer = await client.post("/v1/responses", json={"model": "gpt-5", "input": "hi", "stream": False})
    server.should_exit = True
    await asyncio.wait_for(serving, 20)
    return health.json(), answer.status_code

with simulator_thread() as simulator:
    health, status = asyncio.run(main(simulator.base_url))
print(json.dumps({"health": health, "status": status, "modules": sorted(sys.modules)}))
"""


def test_the_embedded_default_loads_no_redis_cryptography_or_psycopg(tmp_path: Path) -> None:
    from codexgate.testing.demo_auth import write_pool_accounts

    write_pool_accounts(tmp_path, 1, expires_in=3600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEXGATE_", "CODEX_"))}
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDED_PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 200 and "shared_state" not in report["health"]
    modules: list[str] = report["modules"]
    assert "codexgate.server.app" in modules  # the probe did load the gateway
    for forbidden in ("redis", "cryptography", "psycopg", "psycopg_binary", "codexgate.state"):
        loaded = [name for name in modules if name == forbidden or name.startswith(forbidden + ".")]
        assert not loaded, f"{forbidden} loaded on the embedded path: {loaded[:5]}"


GONE = "shared state (Redis) unreachable"
BACK = "shared state (Redis) reachable again"


def reports(cluster: GatewayCluster, index: int, shared_state: str) -> bool:
    return cluster.health(index)["shared_state"] == shared_state


def logged(instance: Instance, text: str) -> bool:
    return text in instance.log_text(1_000_000)


async def test_health_reports_the_shared_state_while_redis_stops_and_returns_then_one_instance_is_killed(
    make_cluster: Callable[..., GatewayCluster],
) -> None:
    cluster = make_cluster(instances=2, accounts=1, accounts_on="all")
    assert [cluster.health(index)["shared_state"] for index in (1, 2)] == ["ok", "ok"]
    cluster.redis.stop()
    for index in (1, 2):
        assert wait_until(partial(reports, cluster, index, "unavailable"), timeout=5)
    async with cluster.client() as client:  # an account with a valid token keeps serving
        answers = [await client.post("/v1/responses", json=REQUEST) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200] * 4
    cluster.redis.start()
    started = time.monotonic()
    for index in (1, 2):
        assert wait_until(partial(reports, cluster, index, "ok"), timeout=10, interval=0.1)
    assert time.monotonic() - started < 5
    for instance in cluster.instances:
        assert wait_until(partial(logged, instance, BACK), timeout=5)
        during = instance.log_text(1_000_000).partition(BACK)[0]  # up to the first line saying it is back
        assert during.count(GONE) == 1, "one line for the outage (not one per request)"

    # the harness itself: a killed instance's requests go to the next one, and it restarts on its port
    cluster.kill_9(2)
    assert not cluster.instance(2).running
    async with cluster.client() as client:
        answers = [await client.post("/v1/responses", json=REQUEST) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200] * 4
        assert [outcome.tried for outcome in client.outcomes] == [[1], [2, 1], [1], [2, 1]]
    assert cluster.restart(2)["shared_state"] == "ok"
    async with cluster.client() as client:
        assert (await client.post("/v1/responses", json=REQUEST, instance=2)).status_code == 200
        assert client.retried == 0
    assert cluster.instance(2).log_text(1_000_000).count("--- start") == 2  # the whole log, not its tail
