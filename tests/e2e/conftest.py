"""A real browser for the web tests: Debian's headless chromium driven by Playwright.

Chromium comes from the system package (``apt-get install chromium``; ``.ci/run`` does it),
never from ``playwright install``. Screenshots go to ``artifacts/screenshots/`` (not committed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from telehealth.demo import DEMO_PASSWORD
from tests.conftest import RunningServer
from tests.helpers import AUTHENTICATORS, Authenticator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Tests that each keep both cores busy (a browser with a fake camera, several service processes)
# while they count frames or wait out leases: under pytest-xdist they run one after another
# in one worker, beside the lighter tests, rather than against each other.
ONE_AT_A_TIME = pytest.mark.xdist_group("one_at_a_time")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, server: RunningServer) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) on a phone-sized screen."""
    made = await browser.new_context(base_url=server.url, viewport=PHONE, locale="vi-VN")
    made.set_default_timeout(15_000)
    yield made
    await made.close()


def policy_violations(page: Page) -> list[str]:
    """What the page's Content-Security-Policy blocked (chromium reports it on the console),
    collected from now on: an inline script or style, a foreign origin."""
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    return blocked


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A page in the fresh profile; the test fails if the security policy blocked anything."""
    opened = await context.new_page()
    blocked = policy_violations(opened)
    yield opened
    assert not blocked, blocked


UNLABELLED_FIELDS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(f => f.type !== 'hidden')
  .filter(f => !(f.labels && f.labels.length) && !f.getAttribute('aria-label'))
  .map(f => f.name || f.id)"""


async def screenshot(page: Page, name: str) -> None:
    """The page at phone and desktop width, for a person to look at; on the way, every
    field must have a label and nothing may be wider than a 360-px phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert await page.evaluate(UNLABELLED_FIELDS) == [], f"unlabelled fields on {page.url}"
    original = page.viewport_size or PHONE
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        if size is PHONE:
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{page.url} is {width} px wide on a phone"
        # Written whole and renamed: both backends' runs of a test may save it at once.
        target = SCREENSHOTS / f"{name}-{label}.png"
        partial = target.with_name(f"{target.name}.{os.getpid()}")
        partial.write_bytes(await page.screenshot(full_page=True))
        partial.replace(target)
    await page.set_viewport_size(original)


async def log_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in as a person does: the password, then the code from the phone where the account
    has an authenticator; where the role must have one and has none, enrol it first (reading
    the key printed under the QR code, as someone whose camera fails would) and sign in again."""
    await page.goto("/login")
    await page.fill("#f-username", username)
    await page.fill("#f-password", password)
    async with page.expect_navigation():
        await page.click("main button[type=submit]")
    if await page.locator("form[action='/login/second-factor']").count():
        await page.fill("#f-code", AUTHENTICATORS[username].next_code())
        await page.click("main button[type=submit]")
        await page.wait_for_url(lambda url: "/login" not in url)
    elif "/account/two-factor" in page.url:
        await enrol_in_page(page, username)
        await log_in(page, username, password)
    else:
        await page.wait_for_url(lambda url: "/login" not in url)


async def enrol_in_page(page: Page, username: str) -> list[str]:
    """On the enrolment page: add the key to an authenticator, confirm with its code, keep
    the recovery codes shown; ends on the login page."""
    secret = "".join((await page.locator("#totp-secret").inner_text()).split())
    app = Authenticator(secret, [])
    await page.fill("#f-code", app.next_code())
    await page.click("main form button[type=submit]")
    await page.wait_for_selector("#recovery-codes")
    app.recovery_codes = [
        text.strip() for text in await page.locator("#recovery-codes code").all_inner_texts()
    ]
    AUTHENTICATORS[username] = app
    await page.click("main a.button.primary")
    await page.wait_for_url("**/login?**")
    return list(app.recovery_codes)


async def log_out(page: Page) -> None:
    await page.click("nav.menu form button")
    await page.wait_for_url("**/login")
