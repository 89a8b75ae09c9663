"""The console driven in headless Chromium (Debian's package, through Playwright), as an operator would.

Each test serves a fresh console (mounted at /dashboard, as the gateway mounts it) with uvicorn on
127.0.0.1. Screenshots of every page go to a folder printed at the start (``CODEXGATE_SCREENSHOTS``
chooses it; the README's screenshot is made this way).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect
from starlette.applications import Starlette

from codexgate.storage.budgets import KeyLimits
from codexgate.storage.usage_writer import UsageRecord
from tests.console.browser import chromium, console_page, screenshot_folder, sign_in
from tests.helpers import ServedApp, serve_in_thread

from .conftest import PASSWORD, ConsoleSetup, write_usage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_folder(tmp_path_factory, "console-screenshots")


@pytest.fixture
def served(setup: ConsoleSetup) -> Iterator[ServedApp]:
    app: Starlette = setup.app
    with serve_in_thread(app) as running:
        yield running


@pytest.fixture
def page(browser: Browser, served: ServedApp) -> Iterator[Page]:
    with console_page(browser, served.base_url) as opened:
        yield opened


def log_in(page: Page, password: str = PASSWORD) -> None:
    sign_in(page, password)


def test_log_in_and_see_the_accounts_windows(page: Page, setup: ConsoleSetup, shots: Path) -> None:
    write_usage(
        setup.db,
        [
            UsageRecord(
                endpoint="/v1/chat/completions",
                status=200,
                time=time.time() - 30 * i,
                key_name="ci",
                model_requested="gpt-5",
                input_tokens=1200 + 7 * i,
                output_tokens=300,
                ttft_ms=250.0 + 3 * i,
                duration_ms=1800.0,
            )
            for i in range(100)
        ],
    )
    log_in(page)
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("figure.chart")).to_have_count(4)
    page.goto("/dashboard/?range=1h")
    expect(page.locator(".tile-value").first).to_have_text("100")
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    page.click("header nav >> text=Accounts")
    rows = page.locator("#accounts tbody tr")
    expect(rows).to_have_count(2)
    alice = rows.filter(has_text="alice")
    expect(alice.locator("td").nth(2)).to_contain_text("42%")
    expect(alice.locator("td").nth(2)).to_contain_text("resets")
    expect(alice.locator("td").nth(3)).to_contain_text("91%")
    expect(rows.filter(has_text="bob").locator(".state")).to_have_text("cooling")
    page.screenshot(path=str(shots / "accounts.png"), full_page=True)

    alice.get_by_role("button", name="Pause").click()
    expect(page.locator("#accounts tbody tr").filter(has_text="alice").locator(".state")).to_have_text("paused")
    assert setup.pool.calls == [(setup.pool.accounts[0].key, True)]


def test_create_a_key_in_the_page_then_revoke_it(page: Page, setup: ConsoleSetup, shots: Path) -> None:
    log_in(page)
    page.goto("/dashboard/keys")
    form = page.locator("#create-key")
    form.locator("input[name=name]").fill("laptop")
    form.locator("input[name=tokens_per_day]").fill("50000")
    form.locator("input[name=allowed_models]").fill("gpt-5*")
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-value").inner_text()
    assert secret.startswith("cg-")
    info = setup.keys.verify(secret)
    assert info is not None and info.name == "laptop" and info.limits.tokens_per_day == 50000
    assert info.limits.allowed_models == ("gpt-5*",)
    page.screenshot(path=str(shots / "key-created.png"), full_page=True)

    setup.budgets.record(info, 12_345, time.time())
    page.goto("/dashboard/keys")
    assert secret not in page.content()  # shown once
    row = page.locator("#keys tbody tr").filter(has_text="laptop")
    expect(row).to_contain_text("12,345 / 50,000")
    page.screenshot(path=str(shots / "keys.png"), full_page=True)

    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#keys tbody tr").filter(has_text="laptop")).to_have_count(0)
    assert dialogs == ["Revoke laptop?"]
    assert setup.keys.verify(secret) is None


def test_a_change_without_the_csrf_token_is_refused(page: Page, setup: ConsoleSetup) -> None:
    log_in(page)
    page.goto("/dashboard/keys")
    page.locator("#create-key input[name=csrf_token]").evaluate("element => element.remove()")
    page.locator("#create-key input[name=name]").fill("forged")
    page.locator("#create-key").get_by_role("button", name="Create key").click()
    expect(page.locator("h1")).to_have_text("Refused")
    assert setup.keys.list() == []


def test_five_wrong_passwords_slow_the_login_down(page: Page) -> None:
    for attempt in range(5):
        log_in(page, f"wrong-{attempt}")
        expect(page.locator(".error")).to_contain_text("Wrong password")
    expect(page.locator(".error")).to_contain_text("wait 30 s")
    log_in(page)  # the right password, too soon
    expect(page.locator(".error")).to_contain_text("Too many wrong passwords")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))


def test_request_log_shows_a_429_with_its_reason_and_updates_live(page: Page, setup: ConsoleSetup, shots: Path) -> None:
    now = time.time()
    setup.keys.create("ci", KeyLimits(tokens_per_day=5000))
    write_usage(
        setup.db,
        [
            UsageRecord(
                endpoint="/v1/chat/completions",
                status=200,
                time=now - 120,
                key_name="ci",
                model_requested="gpt-5",
                input_tokens=4000,
                cached_tokens=1000,
                output_tokens=1200,
                ttft_ms=420.0,
                duration_ms=2500.0,
                stream=True,
            ),
            UsageRecord(
                endpoint="/v1/chat/completions",
                status=429,
                time=now - 60,
                key_name="ci",
                model_requested="gpt-5",
                error_code="budget_exceeded",
            ),
        ],
    )
    log_in(page)
    page.goto("/dashboard/requests")
    rows = page.locator("#requests tbody tr")
    expect(rows).to_have_count(2)
    refused = rows.nth(0)
    expect(refused).to_have_class(re.compile(r"\berr\b"))
    expect(refused.locator("td").nth(4)).to_have_text("429")
    expect(refused.locator("td").last).to_have_text("The key is over its budget")
    expect(rows.nth(1).locator("td").nth(8)).to_have_text("25%")  # cached share of the input
    page.screenshot(path=str(shots / "requests.png"), full_page=True)

    page.select_option("#filters select[name=status]", "errors")
    page.click("#filters button[type=submit]")
    expect(page.locator("#requests tbody tr")).to_have_count(1)

    page.goto("/dashboard/requests")
    write_usage(
        setup.db,
        [
            UsageRecord(
                endpoint="/v1/messages",
                status=502,
                time=time.time(),
                key_name="ci",
                model_requested="claude-x",
                error_code="upstream_unreachable",
            )
        ],
    )
    fresh = page.locator("#requests tbody tr").first
    expect(fresh.locator("td").last).to_have_text("The backend could not be reached", timeout=10_000)
    expect(page.locator("#requests tbody tr")).to_have_count(3)
