"""The console as an operator meets it: the real gateway (``create_app`` served by uvicorn on 127.0.0.1,
in front of the upstream simulator), its dashboard driven in headless Chromium, its API driven by the
openai SDK.

Screenshots of every page go to a folder printed at the start (``CODEXGATE_SCREENSHOTS`` chooses it).
With ``CODEXGATE_README_SCREENSHOT=1`` the overview after the simulated traffic is also written to
``docs/console-overview.png``: the README's picture, made from simulator data only.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from codexgate.testing import UpstreamSimulator
from tests.conftest import start_gateway
from tests.console.browser import chromium, console_page, screenshot_folder, sign_in
from tests.helpers import ServedApp

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "console-overview.png"


@dataclass
class RunningGateway:
    served: ServedApp
    simulator: UpstreamSimulator

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def sdk(self, api_key: str = "sk-anything") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key=api_key, max_retries=0, timeout=10.0)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_folder(tmp_path_factory, "gateway-console-screenshots")


@pytest.fixture
def running(simulator: UpstreamSimulator, tmp_path: Path) -> Iterator[RunningGateway]:
    _settings, served_context = start_gateway(simulator, tmp_path / "home", admin_password=PASSWORD)
    with served_context as served:
        yield RunningGateway(served=served, simulator=simulator)


@pytest.fixture
def page(browser: Browser, running: RunningGateway) -> Iterator[Page]:
    with console_page(browser, running.base_url) as opened:
        yield opened


def log_in(page: Page, password: str = PASSWORD) -> None:
    sign_in(page, password)


def chat(client: openai.OpenAI, text: str) -> str:
    completion = client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


def stream_chat(client: openai.OpenAI, text: str) -> str:
    chunks = client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": text}], stream=True)
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def create_key(page: Page, name: str) -> str:
    page.goto("/dashboard/keys")
    form = page.locator("#create-key")
    form.locator("input[name=name]").fill(name)
    form.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key strong")).to_have_text(name)
    secret = page.locator("#new-key-value").inner_text().strip()
    assert secret.startswith("cg-")
    return secret


def test_an_operator_steers_the_real_gateway_from_the_console(page: Page, running: RunningGateway, shots: Path) -> None:
    # simulated traffic first: no key yet, so a loopback gateway takes any client
    anonymous = running.sdk()
    for i in range(3):
        assert chat(anonymous, f"hello {i}")
    for i in range(2):
        assert stream_chat(anonymous, f"stream {i}")
    limits = running.simulator.rate_limits

    # 1. log in; the overview counts the traffic, the accounts page shows the account's windows
    log_in(page)
    expect(page.locator("h1")).to_have_text("Overview")
    page.goto("/dashboard/?range=1h")
    expect(page.locator(".tile-value").first).to_have_text("5")
    expect(page.locator(".tile-value").nth(3)).to_contain_text("ms")  # the streams' time to first token
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    if os.environ.get("CODEXGATE_README_SCREENSHOT") == "1":
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOT), full_page=True)

    page.click("header nav >> text=Accounts")
    account = page.locator("#accounts tbody tr")
    expect(account).to_have_count(1)
    cells = account.locator("td")
    expect(cells.nth(0)).to_contain_text("dev@example.com")
    expect(cells.nth(1)).to_have_text(limits.plan_type)
    expect(cells.nth(2)).to_contain_text(f"{limits.primary_used_percent:.0f}%")
    expect(cells.nth(2)).to_contain_text("resets")
    expect(cells.nth(3)).to_contain_text(f"{limits.secondary_used_percent:.0f}%")
    expect(cells.nth(3)).to_contain_text("resets")
    page.screenshot(path=str(shots / "accounts.png"), full_page=True)

    # 2. a key created in the page (shown once) works from the SDK; a second key keeps keys required
    secret = create_key(page, "laptop")
    page.screenshot(path=str(shots / "key-created.png"), full_page=True)
    create_key(page, "ci")
    assert secret not in page.content()  # shown once
    with pytest.raises(openai.AuthenticationError):
        chat(anonymous, "no key now")
    laptop = running.sdk(secret)
    assert chat(laptop, "with my new key")

    # 3. a tiny token budget set in the page: the next request is refused with 429 budget_exceeded
    page.goto("/dashboard/keys")
    page.locator("#keys tbody tr").filter(has_text="laptop").get_by_role("link", name="Limits").click()
    expect(page.locator("#edit-limits h2")).to_have_text("Limits of laptop")
    page.screenshot(path=str(shots / "key-limits.png"), full_page=True)
    page.locator("#edit-limits input[name=tokens_per_day]").fill("10")
    page.locator("#edit-limits").get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/dashboard/keys$"))
    laptop_row = page.locator("#keys tbody tr").filter(has_text="laptop")
    expect(laptop_row.locator(".over")).to_contain_text("/ 10")
    page.screenshot(path=str(shots / "keys.png"), full_page=True)
    with pytest.raises(openai.RateLimitError) as refused:
        chat(laptop, "over budget")
    assert refused.value.status_code == 429
    assert refused.value.code == "budget_exceeded"
    assert refused.value.response.headers.get("retry-after")

    page.goto("/dashboard/requests")
    newest = page.locator("#requests tbody tr").first
    expect(newest.locator("td").nth(4)).to_have_text("429")
    expect(newest.locator("td").last).to_have_text("The key is over its budget")
    expect(newest).to_contain_text("laptop")
    page.screenshot(path=str(shots / "requests.png"), full_page=True)

    # 4. revoked in the page: the SDK is refused (401) within a second
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto("/dashboard/keys")
    page.locator("#keys tbody tr").filter(has_text="laptop").get_by_role("button", name="Revoke").click()
    expect(page.locator("#keys tbody tr").filter(has_text="laptop")).to_have_count(0)
    revoked_at = time.monotonic()
    assert dialogs == ["Revoke laptop?"]
    outcome: Exception | None = None
    while time.monotonic() - revoked_at < 1.0:
        try:
            chat(laptop, "after the revoke")
        except openai.AuthenticationError as exc:
            outcome = exc
            break
        except openai.RateLimitError:
            continue  # still the old key, still over its budget: not yet refused as unknown
    assert isinstance(outcome, openai.AuthenticationError), "the revoked key was still accepted after 1 s"
    assert outcome.status_code == 401
    expect(page.locator("#keys tbody tr").filter(has_text="ci")).to_have_count(1)


def test_a_change_posted_without_the_csrf_token_is_refused(page: Page, running: RunningGateway) -> None:
    log_in(page)
    expect(page.locator("h1")).to_have_text("Overview")
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    assert cookies, "logging in set no session cookie"
    origin = {"origin": running.base_url}
    with httpx.Client(base_url=running.base_url, cookies=cookies, timeout=10.0) as client:
        refused = client.post("/dashboard/keys", data={"name": "forged"}, headers=origin)
        assert refused.status_code == 403
        assert "refused" in refused.text.lower()
        wrong = client.post("/dashboard/keys", data={"name": "forged", "csrf_token": "not-it"}, headers=origin)
        assert wrong.status_code == 403
        # only the dashboard takes form bodies (guarded as above); the API still wants JSON
        api = client.post("/v1/chat/completions", data={"model": "gpt-5"}, headers=origin)
        assert api.status_code == 415 and api.json()["error"]["code"] == "unsupported_media_type"
    page.goto("/dashboard/keys")
    expect(page.locator("#keys tbody tr").filter(has_text="forged")).to_have_count(0)
    # the same session with its token does change things: the refusal was the token's doing
    create_key(page, "genuine")


def test_five_wrong_passwords_slow_the_login_down(page: Page) -> None:
    for attempt in range(5):
        log_in(page, f"wrong-{attempt}")
        expect(page.locator(".error")).to_contain_text("Wrong password")
    expect(page.locator(".error")).to_contain_text("wait")
    log_in(page)  # the right password, too soon
    expect(page.locator(".error")).to_contain_text("Too many wrong passwords")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
