"""An administrator in a real browser: accounts, facilities, clients, audit; live updates."""

from __future__ import annotations

import re

import httpx
from litestar.channels import ChannelsPlugin
from playwright.async_api import Page, expect

from tests.conftest import RunningServer
from tests.e2e.conftest import log_in, log_out, screenshot
from tests.helpers import login


async def test_admin_creates_a_user_who_then_logs_in(page: Page) -> None:
    await log_in(page, "quantri")
    await screenshot(page, "home-admin")
    await page.click("nav.menu >> text=Tài khoản")
    await page.click("details.card > summary")
    await page.fill("#f-username", "bs.xa7")
    await page.fill("#f-display_name", "BS. Đoàn Thị Mai")
    await page.fill("#f-password", "mat-khau-moi-cua-ban-2026")
    await page.select_option("#f-role", "requester")
    await page.select_option("#f-organization_id", label="Trạm Y tế phường Mỹ Phong")
    await screenshot(page, "accounts-create")
    await page.click("details.card form button[type=submit]")
    await expect(page.locator("#account-bs\\.xa7")).to_contain_text("BS. Đoàn Thị Mai")
    await log_out(page)

    # The administrator chose the password: the first login leads to changing it, and only then
    # (logged in again with one's own) to the pages.
    await log_in(page, "bs.xa7", "mat-khau-moi-cua-ban-2026")
    await page.wait_for_url("**/account/password")
    await page.goto("/patients")
    await expect(page).to_have_url(re.compile(r"/account/password$"))
    await page.fill("#f-current_password", "mat-khau-moi-cua-ban-2026")
    await page.fill("#f-new_password", "mat-khau-cua-chinh-toi-7")
    await page.fill("#f-confirm_password", "mat-khau-cua-chinh-toi-7")
    await page.click("main button[type=submit]")
    await page.wait_for_url("**/login?changed=1")
    await log_in(page, "bs.xa7", "mat-khau-cua-chinh-toi-7")
    await expect(page.locator("h1")).to_have_text("Xin chào, BS. Đoàn Thị Mai")
    await expect(page.locator("main")).to_contain_text("Trạm Y tế phường Mỹ Phong")


async def test_admin_refusal_keeps_input_and_deactivation_ends_logins(page: Page) -> None:
    await log_in(page, "quantri")
    await page.goto("/admin/accounts")
    await page.click("details.card > summary")
    await page.fill("#f-username", "bs.xa1")  # taken
    await page.fill("#f-display_name", "Someone")
    await page.fill("#f-password", "whatever-123")
    await page.select_option("#f-role", "requester")
    await page.select_option("#f-organization_id", label="Trạm Y tế phường Mỹ Phong")
    await page.click("details.card form button[type=submit]")
    await expect(page.locator("#form-message")).to_have_text(
        "Tên đăng nhập 'bs.xa1' đã có người dùng"
    )
    await expect(page.locator("#f-display_name")).to_have_value("Someone")

    await page.click("#account-bs\\.xa6 >> text=Vô hiệu hóa")
    await expect(page.locator("#account-bs\\.xa6")).to_contain_text("ngừng hoạt động")
    await log_out(page)
    await page.goto("/login")
    await page.fill("#f-username", "bs.xa6")
    await page.fill("#f-password", "telehealth-demo-only")
    await page.click("main button[type=submit]")
    await expect(page.locator("#form-message")).to_have_text("Sai tên đăng nhập hoặc mật khẩu.")


async def test_admin_facilities_clients_and_audit(page: Page) -> None:
    await log_in(page, "quantri")
    await page.goto("/admin/facilities")
    await expect(page.locator(".tree")).to_contain_text("Trạm Y tế phường Mỹ Phong")
    await screenshot(page, "facilities")
    await page.click("text=Thêm cơ sở y tế")
    await page.fill("#f-name", "Trạm Y tế phường Mới")
    await page.select_option("#f-level", "commune")
    await page.select_option("#f-parent_id", label="Trung tâm Y tế khu vực Cai Lậy")
    await page.fill("#f-moh_code", "82199")
    await page.click("main button[type=submit]")
    await expect(page.locator(".tree")).to_contain_text("Trạm Y tế phường Mới")

    await page.goto("/admin/clients")
    await page.fill("#f-client_id", "his-test")
    await page.fill("#f-name", "HIS thử nghiệm")
    await page.fill("#f-scopes", "system/Patient.rs")
    await page.click("main button[type=submit]")
    secret = await page.text_content("#client-secret")
    assert secret and len(secret) >= 32
    await page.reload()  # shown once: a reload does not post again
    await expect(page.locator("#client-secret")).to_have_count(0)

    await page.goto("/admin/audit?action=login&outcome=success")
    await expect(page.locator("table.table tbody")).to_contain_text("login")
    await expect(page.locator("table.table tbody")).not_to_contain_text("bị từ chối")
    await screenshot(page, "audit")


async def test_live_update_reaches_an_open_page(
    page: Page, server: RunningServer, client: httpx.AsyncClient
) -> None:
    await log_in(page, "bs.xa1")
    await expect(page.locator("body[data-live-ready]")).to_have_count(1)
    me = (await client.get("/api/auth/me", headers=await login(client, "bs.xa1"))).json()
    assert server.app is not None
    channels = server.app.plugins.get(ChannelsPlugin)
    channels.publish({"kind": "reminder", "id": "consult-1"}, f"user.{me['id']}")
    channels.publish({"kind": "reminder", "id": "someone-else"}, "user.not-this-one")
    await expect(page.locator(".toast")).to_contain_text("Có cập nhật mới")
    await expect(page.locator("#live-badge")).to_have_text("1")
