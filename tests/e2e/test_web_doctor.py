"""A commune doctor in a real browser: log in, switch language, register and find patients."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.e2e.conftest import log_in, log_out, screenshot

PATIENT = {
    "full_name": "Nguyễn Thị Ánh Tuyết",
    "gender": "female",
    "birth_date": "1985-03-14",
    "national_id": "082185001234",
    "insurance_number": "GD4820123456789",
    "phone": "0912 345 678",
}


async def fill_patient(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        if name == "gender":
            await page.select_option(f"#f-{name}", value)
        else:
            await page.fill(f"#f-{name}", value)


async def test_login_in_vietnamese_then_english_then_logout(page: Page) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    await expect(page.locator("h1")).to_have_text("Đăng nhập")
    await expect(page.locator("html")).to_have_attribute("lang", "vi")
    await screenshot(page, "login")

    await log_in(page, "bs.xa1")
    await expect(page.locator("h1")).to_contain_text("Xin chào")
    await page.click("text=English")
    await expect(page.locator("h1")).to_contain_text("Hello")
    await expect(page.locator("nav.menu")).to_contain_text("Register a patient")
    await screenshot(page, "home-doctor")

    await log_out(page)
    await expect(page.locator("h1")).to_have_text("Log in")
    await page.goto("/patients")
    await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_wrong_password_then_lockout_is_explained(page: Page) -> None:
    for _ in range(5):
        await page.goto("/login")
        await page.fill("#f-username", "bs.xa3")
        await page.fill("#f-password", "not-the-password")
        await page.click("main button[type=submit]")
        await expect(page.locator("#form-message")).to_be_visible()
    await expect(page.locator("#form-message")).to_have_text("Sai tên đăng nhập hoặc mật khẩu.")
    await page.fill("#f-password", "telehealth-demo-only")
    await page.click("main button[type=submit]")
    await expect(page.locator("#form-message")).to_contain_text("Đăng nhập sai quá nhiều lần")
    await expect(page.locator("#f-username")).to_have_value("bs.xa3")


async def test_register_then_find_without_diacritics(page: Page) -> None:
    await log_in(page, "bs.xa1")
    await page.click("nav.menu >> text=Đăng ký bệnh nhân")
    await fill_patient(page, {**PATIENT, "national_id": "0821850"})
    # Checked as one types, before anything is sent.
    await expect(page.locator("#e-national_id")).to_have_text("Số CCCD phải gồm đúng 12 chữ số")
    await page.fill("#f-national_id", PATIENT["national_id"])
    await expect(page.locator("#e-national_id")).to_be_empty()
    await screenshot(page, "patient-form")
    await page.click("main button[type=submit]")

    await expect(page.locator("h1")).to_have_text(PATIENT["full_name"])
    await expect(page.locator("[role=status]").first).to_have_text("Đã lưu.")
    await expect(page.locator(".facts")).to_contain_text("+84912345678")
    await screenshot(page, "patient-view")

    await page.click("nav.menu >> text=Bệnh nhân")
    await page.fill("#f-q", "nguyen thi anh tuyet")
    await page.press("#f-q", "Enter")
    await expect(page.locator("table.table")).to_contain_text(PATIENT["full_name"])
    await screenshot(page, "patient-search")
    await page.click(f"text={PATIENT['full_name']}")
    await expect(page.locator(".facts")).to_contain_text("082185001234")


async def test_rejected_form_keeps_what_was_typed(page: Page) -> None:
    await log_in(page, "bs.xa1")
    await page.goto("/patients/new")
    await fill_patient(page, PATIENT)
    await page.click("main button[type=submit]")
    await expect(page.locator("h1")).to_have_text(PATIENT["full_name"])

    # The same citizen ID again: the server refuses, the form comes back as it was typed.
    await page.goto("/patients/new")
    second = {**PATIENT, "full_name": "Trần Văn Bình", "gender": "female"}
    second["insurance_number"] = "HN4820987654321"
    await fill_patient(page, second)
    await page.click("main button[type=submit]")
    await expect(page.locator("#form-message")).to_have_text(
        "Đã có bệnh nhân đăng ký với số CCCD này"
    )
    await expect(page.locator("#f-full_name")).to_have_value("Trần Văn Bình")
    await expect(page.locator("#f-insurance_number")).to_have_value("HN4820987654321")
    await expect(page.locator("#f-gender")).to_have_value("female")

    # A date the browser cannot check: the server's field message lands beside the field.
    await page.fill("#f-national_id", "")
    await page.fill("#f-birth_date", "2099-01-01")
    await page.click("main button[type=submit]")
    await expect(page.locator("#e-birth_date")).to_have_text("ở tương lai")
    await expect(page.locator("#f-full_name")).to_have_value("Trần Văn Bình")
    await screenshot(page, "patient-form-rejected")


async def test_other_facility_patient_url_is_refused(page: Page) -> None:
    await log_in(page, "bs.xa1")
    await page.goto("/patients/new")
    await fill_patient(page, PATIENT)
    await page.click("main button[type=submit]")
    await expect(page.locator("h1")).to_have_text(PATIENT["full_name"])
    patient_url = page.url.split("?")[0]
    await log_out(page)

    await log_in(page, "bs.xa2")
    response = await page.goto(patient_url)
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("Không tìm thấy")
    await expect(page.locator("main")).to_contain_text("bạn không có quyền xem bệnh nhân này")
    await expect(page.locator("main")).not_to_contain_text(PATIENT["full_name"])
    await screenshot(page, "refused-404")
    edit = await page.goto(patient_url + "/edit")
    assert edit is not None and edit.status == 404

    admin_page = await page.goto("/admin/accounts")
    assert admin_page is not None and admin_page.status == 403
    await expect(page.locator("h1")).to_have_text("Bạn không có quyền thực hiện việc này")


async def test_keyboard_alone_logs_in_and_reaches_the_search(page: Page) -> None:
    await page.goto("/login")
    # The username field takes the focus by itself (autofocus); wait for it before typing.
    await expect(page.locator("input[name=username]")).to_be_focused()
    await page.keyboard.type("bs.xa1")
    await page.keyboard.press("Tab")
    await page.keyboard.type("telehealth-demo-only")
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_contain_text("Xin chào")
    await page.keyboard.press("Tab")
    await expect(page.locator("a.skip")).to_be_focused()
    await page.keyboard.press("Enter")
    for _ in range(12):  # past the header and menu, to the first tile
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.classList.contains('tile')"):
            break
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Tìm bệnh nhân")
    await expect(page.locator("#f-q")).to_have_attribute("aria-describedby", re.compile("e-q"))
