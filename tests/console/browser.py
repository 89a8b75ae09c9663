"""Headless Chromium for the console's browser tests: Debian's chromium driven by Playwright (never a
browser of Playwright's own download), and the folder the screenshots go to."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "these tests need Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def screenshot_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """``$CODEXGATE_SCREENSHOTS`` or a fresh temporary folder, printed so that a person can look."""
    folder = Path(os.environ.get("CODEXGATE_SCREENSHOTS") or tmp_path_factory.mktemp(name))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\n{name}: {folder}")
    return folder


@contextmanager
def console_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) on ``base_url``, at the size the screenshots are taken."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, password: str) -> None:
    """Open the console, land on its sign-in page and post ``password``."""
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.fill("input[name=password]", password)
    page.click("#login button[type=submit]")
