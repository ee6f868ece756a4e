"""The pages run under the Content-Security-Policy: nothing of theirs is blocked by it (the
``page`` fixture fails a test on any violation) and their own styles still apply."""

from __future__ import annotations

from playwright.async_api import Page

ROOM = "00000000-0000-4000-8000-000000000001"


async def test_room_page_styles_load_under_the_policy(page: Page) -> None:
    await page.goto(f"/room/{ROOM}")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(16, 24, 31)"  # room.css, no longer an inline <style>
    colour = await page.evaluate("getComputedStyle(document.getElementById('lang')).color")
    assert colour == "rgb(153, 204, 255)"


async def test_login_page_under_the_policy(page: Page) -> None:
    await page.goto("/login")
    assert await page.locator("form[action='/login']").count() == 1
