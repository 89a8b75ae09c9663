"""Fixtures of the several-instances tests: real Redis and PostgreSQL (tests/services.py), the simulator and
three ``codexgate serve`` processes (tests/cluster/harness.py).

``make_cluster(**options)`` starts a cluster of this test alone, with a Redis of its own (``own_redis``: the
test may stop and start it); ``shared_cluster`` is one cluster shared by the tests of this folder that leave it
running (three instances, three accounts with valid tokens, copies of them in every home, no API key unless a
test makes one and revokes it again). A failing test's report gets the end of every instance's log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import GatewayCluster, start_cluster
from tests.services import PostgresServer, RedisServer, ServiceMissing, own_redis, postgres_server

__all__ = ["make_cluster", "own_redis", "postgres_server", "shared_cluster"]


@pytest.fixture
def make_cluster(
    tmp_path: Path, own_redis: RedisServer, postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., GatewayCluster]]:
    """Start this test's cluster: ``cluster = make_cluster(accounts=3, expired=True)`` (once per test)."""
    with contextlib.ExitStack() as stack:
        started: list[GatewayCluster] = []

        def make(**options: Any) -> GatewayCluster:
            assert not started, "one cluster per test"
            cluster = stack.enter_context(start_cluster(tmp_path / "cluster", own_redis, postgres_server, **options))
            started.append(cluster)
            request.node.cluster_under_test = cluster
            return cluster

        yield make


@pytest.fixture(scope="package")
def shared_cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[GatewayCluster]:
    try:
        redis = RedisServer(tmp_path_factory.mktemp("shared-redis"))
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    redis.start()
    try:
        with start_cluster(tmp_path_factory.mktemp("shared-cluster"), redis, postgres_server, accounts_on="all") as c:
            yield c
    finally:
        redis.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    cluster = getattr(item, "cluster_under_test", None) or funcargs.get("shared_cluster")
    if isinstance(cluster, GatewayCluster):
        report.sections.append(("cluster logs", cluster.logs()))
