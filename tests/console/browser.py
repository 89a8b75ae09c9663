"""Headless Chromium for the console's browser tests: Debian's chromium driven by Playwright (never a
browser of Playwright's own download), and the folder the screenshots go to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

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
