"""A console mounted at /dashboard over a temporary home, a fake account pool and a usage database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from codexgate.console import ConsoleConfig, create_console
from codexgate.console.app import ConsoleApp
from codexgate.pool import AccountState, AccountStatus, UsageWindow
from codexgate.storage.api_keys import KeyStore
from codexgate.storage.budgets import BudgetTracker
from codexgate.storage.usage_writer import UsageRecord, UsageWriter

PASSWORD = "correct horse battery"


@dataclass
class FakePool:
    """Two accounts, as the registry would hand them over (``AccountState.to_dict``)."""

    accounts: list[AccountState] = field(default_factory=list)
    calls: list[tuple[str, bool]] = field(default_factory=list)

    def snapshot(self) -> list[dict[str, Any]]:
        return [account.to_dict() for account in self.accounts]

    def set_paused(self, key: str, paused: bool) -> None:
        self.calls.append((key, paused))
        for account in self.accounts:
            if account.key == key:
                account.status = AccountStatus.PAUSED if paused else AccountStatus.ACTIVE


def make_pool(now: float) -> FakePool:
    alice = AccountState("acct_1", "user_1", "alice", email="alice@example.com", plan="pro")
    alice.primary = UsageWindow(used_percent=42.0, reset_at=now + 2 * 3600, window_minutes=300)
    alice.secondary = UsageWindow(used_percent=91.0, reset_at=now + 3 * 86400, window_minutes=10080)
    bob = AccountState("acct_2", "user_2", "bob", email="bob@example.com", plan="plus")
    bob.status = AccountStatus.COOLING
    bob.cooling_until = now + 1800
    bob.primary = UsageWindow(used_percent=100.0, reset_at=now + 1800, window_minutes=300)
    return FakePool([alice, bob])


@dataclass
class ConsoleSetup:
    home: Path
    app: Starlette
    console: ConsoleApp
    keys: KeyStore
    budgets: BudgetTracker
    pool: FakePool
    db: Path


def write_usage(db: Path, records: list[UsageRecord]) -> None:
    writer = UsageWriter(db)
    writer.open()
    for record in records:
        writer.submit(record)
    writer.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[ConsoleSetup]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    keys = KeyStore(home / "keys.json")
    budgets = BudgetTracker()
    pool = make_pool(time.time())
    db = home / "usage.db"
    config = ConsoleConfig(home=home, admin_password=PASSWORD, poll_interval_seconds=1.0)
    console = create_console(config, keys, db, pool.snapshot, None, budgets=budgets, pause_account=pool.set_paused)
    app = Starlette(routes=[Mount("/dashboard", app=console)])
    yield ConsoleSetup(home=home, app=app, console=console, keys=keys, budgets=budgets, pool=pool, db=db)
