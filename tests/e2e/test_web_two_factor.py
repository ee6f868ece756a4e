"""Two-factor sign-in in a real browser, on a phone: a coordinator is led to enrol before any
page, scans (here: types) the key, keeps the recovery codes, and signs in with a code; a
wrong code is refused in Vietnamese; a recovery code works when the phone is lost."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from telehealth.demo import DEMO_PASSWORD
from tests.e2e.conftest import enrol_in_page, screenshot
from tests.helpers import AUTHENTICATORS


async def _password(page: Page, username: str) -> None:
    await page.goto("/login")
    await page.fill("#f-username", username)
    await page.fill("#f-password", DEMO_PASSWORD)
    async with page.expect_navigation():
        await page.click("main button[type=submit]")


async def test_a_coordinator_enrols_on_the_phone_then_signs_in_with_a_code(page: Page) -> None:
    await _password(page, "dieuphoi")
    await expect(page).to_have_url(re.compile(r"/account/two-factor$"))
    await expect(page.locator("h1")).to_have_text("Xác thực hai lớp")
    await expect(page.locator(".qr svg")).to_be_visible()
    await screenshot(page, "two-factor-enrol")
    # Any other page leads back here until it is done.
    await page.goto("/patients")
    await expect(page).to_have_url(re.compile(r"/account/two-factor$"))

    await page.fill("#f-code", "000000")
    await page.click("main form button[type=submit]")
    await expect(page.locator("#e-code")).to_contain_text("không phải mã ứng dụng đang hiển thị")

    codes = await enrol_in_page(page, "dieuphoi")
    assert len(codes) == 10
    await expect(page.locator("main")).to_contain_text("Đã bật xác thực hai lớp")

    await _password(page, "dieuphoi")
    await expect(page.locator("h1")).to_have_text("Mã từ ứng dụng")
    await screenshot(page, "two-factor-code")
    await page.fill("#f-code", "123456")
    async with page.expect_navigation():
        await page.click("main button[type=submit]")
    await expect(page.locator("main")).to_contain_text("Mã sai hoặc đã được dùng")
    await page.fill("#f-code", AUTHENTICATORS["dieuphoi"].next_code())
    async with page.expect_navigation():
        await page.click("main button[type=submit]")
    await expect(page).not_to_have_url(re.compile(r"/login"))
    await page.goto("/account/two-factor")
    await expect(page.locator("main")).to_contain_text("Số mã khôi phục còn lại: 10")
    await screenshot(page, "two-factor-on")


async def test_a_lost_phone_a_recovery_code_signs_in_once(page: Page) -> None:
    await _password(page, "quantri")
    codes = await enrol_in_page(page, "quantri")
    await _password(page, "quantri")
    await page.fill("#f-code", codes[0])
    async with page.expect_navigation():
        await page.click("main button[type=submit]")
    await page.goto("/account/two-factor")
    await expect(page.locator("main")).to_contain_text("Số mã khôi phục còn lại: 9")
    async with page.expect_navigation():
        await page.click("nav.menu form button")  # log out
    await _password(page, "quantri")
    await page.fill("#f-code", codes[0])  # spent
    async with page.expect_navigation():
        await page.click("main button[type=submit]")
    await expect(page.locator("main")).to_contain_text("Mã sai hoặc đã được dùng")
