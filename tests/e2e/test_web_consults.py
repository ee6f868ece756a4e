"""The consult flows in a real browser, each role in its own browser profile: the commune
doctor asks and books, the specialist publishes hours (and takes back a day off), accepts and
writes the conclusion, the coordinator assigns; open pages follow along without reload; other
facilities, and others than the assigned specialist, are refused."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from litestar.channels import ChannelsPlugin
from playwright.async_api import Browser, BrowserContext, Page, expect

from telehealth.demo import DEMO_PASSWORD
from tests.conftest import RunningServer
from tests.e2e.conftest import PHONE, log_in, screenshot
from tests.e2e.page_support import wait_until

CARDIOLOGY = "394579002"
# Live updates cross a socket and a page reload; on a loaded 2-core machine, wait up to 15 s.
expect.set_options(timeout=15_000)
# The smallest valid PNG: a phone photo stands in for an ECG strip.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)


# The toast shows until the page reloads itself (300 ms later): keep what toasts said.
KEEP_TOASTS = """new MutationObserver(() => {
  const toasts = document.getElementById("toasts");
  if (toasts && toasts.textContent) sessionStorage.setItem("toasts", toasts.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true});"""


async def person(browser: Browser, server: RunningServer, username: str) -> Page:
    context: BrowserContext = await browser.new_context(
        base_url=server.url, viewport=PHONE, locale="vi-VN"
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await log_in(page, username)
    return page


async def live(page: Page) -> None:
    """Wait until the page's live-updates socket is connected (on the page now shown)."""
    await page.wait_for_load_state()
    await expect(page.locator("body[data-live-ready='1']")).to_have_count(1)


async def pick_icd(page: Page, words: str) -> None:
    """ICD-10 by words of its name: the picker suggests, choosing a suggestion adds the code."""
    await page.fill("#f-icd", words)
    option = page.locator("#icd-options option").first
    await expect(option).to_have_count(1)
    await page.fill("#f-icd", await option.get_attribute("value") or "")


async def ask_for_consult(page: Page, reason: str, *, screenshots: bool = False) -> str:
    """The commune doctor's request form, filled as a person would; returns the request id."""
    await page.goto("/")
    await page.click("nav.menu >> text=Yêu cầu hội chẩn")
    await page.select_option("#f-patient_id", index=1)
    await page.select_option("#f-specialty_code", CARDIOLOGY)
    await page.select_option("#f-priority", "routine")
    await page.fill("#f-reason", reason)
    await page.fill(
        "#f-clinical_summary", "Đau ngực 2 giờ, vã mồ hôi. ECG: ST chênh lên DII, DIII."
    )
    await page.fill("#f-vs_heart_rate", "112")
    await page.fill("#f-vs_systolic_bp", "90")
    await page.fill("#f-vs_temperature_c", "37,2")
    await pick_icd(page, "myocardial infarction")
    await expect(page.locator("#f-diagnoses")).to_have_value(re.compile(r"^I2\d"))
    await page.set_input_files(
        "#f-camera", files=[{"name": "ecg.png", "mimeType": "image/png", "buffer": PNG}]
    )
    if screenshots:
        await screenshot(page, "consult-form")
    await page.click("main form[data-form=consult] button[type=submit]")
    await expect(page.locator("#consult-status")).to_have_text("Chờ bác sĩ chuyên khoa")
    return page.url.split("/consults/")[1].split("?")[0]


async def test_doctor_requests_specialist_accepts_doctor_books_joins_specialist_concludes(
    browser: Browser, server: RunningServer
) -> None:
    tz = ZoneInfo(server.settings.timezone)
    specialist = await person(browser, server, "bs.tim")
    await expect(specialist).to_have_url(re.compile(r"/queue$"))

    # Weekly hours, and extra hours starting in a few minutes (so the room can open today).
    await specialist.click("nav.menu >> text=Lịch làm việc")
    form = specialist.locator("#rule-form")
    # Weekly hours on the weekday two days ahead: within the page's 7-day count, whatever today.
    rule_day = (datetime.now(tz) + timedelta(days=2)).replace(hour=0, minute=0)
    await form.locator("#f-weekday").select_option(str(rule_day.weekday()))
    await form.locator("#f-start_time").fill("08:00")
    await form.locator("#f-end_time").fill("11:00")
    await form.locator("#f-slot_minutes").fill("30")
    await form.locator("button[type=submit]").click()
    await expect(specialist.locator(".week")).to_contain_text("08:00–11:00")
    start = (datetime.now(tz) + timedelta(minutes=7)).replace(second=0, microsecond=0)
    extra = specialist.locator("#exception-form")
    await extra.locator("#f-x-kind").select_option("extra")
    await extra.locator("#f-x-starts_at").fill(f"{start:%Y-%m-%dT%H:%M}")
    await extra.locator("#f-x-ends_at").fill(f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M}")
    await extra.locator("#f-x-slot_minutes").fill("30")
    await extra.locator("button[type=submit]").click()
    await expect(specialist.locator("[role=status]").first).to_have_text("Đã lưu.")
    await expect(specialist.locator("main")).to_contain_text("Giờ làm thêm")
    # A day off added by mistake, then taken back: its slots come back.
    free = int(await specialist.locator("#free-1").inner_text())
    day_off = rule_day
    await extra.locator("#f-x-kind").select_option("unavailable")
    await extra.locator("#f-x-starts_at").fill(f"{day_off:%Y-%m-%dT%H:%M}")
    await extra.locator("#f-x-ends_at").fill(f"{day_off + timedelta(days=1):%Y-%m-%dT%H:%M}")
    await extra.locator("#f-x-slot_minutes").fill("")
    await extra.locator("#f-x-reason").fill("Nhầm ngày")
    await extra.locator("button[type=submit]").click()
    mistake = specialist.locator(".exceptions li", has_text="Nhầm ngày")
    await expect(mistake).to_have_count(1)
    await expect(specialist.locator("#free-1")).to_have_text(str(free - 6))  # 08:00-11:00 gone
    await screenshot(specialist, "availability")
    await mistake.locator("button").click()
    await expect(specialist.locator(".exceptions li", has_text="Nhầm ngày")).to_have_count(0)
    await expect(specialist.locator("#free-1")).to_have_text(str(free))

    # The queue in the same tab: the availability page's socket closes as the queue's opens
    # (the late unsubscribe used to silence the channel on PostgreSQL).
    await specialist.goto("/queue")
    await live(specialist)

    doctor = await person(browser, server, "bs.xa1")
    request_id = await ask_for_consult(doctor, "Nghi nhồi máu cơ tim cấp", screenshots=True)
    await expect(doctor.locator("main")).to_contain_text("ecg.png")
    await expect(doctor.locator("#consult-facts")).to_contain_text("112")
    await screenshot(doctor, "consult-requested")

    # The specialist's open queue shows the new request without a reload.
    await expect(specialist.locator("#queue")).to_contain_text("Nghi nhồi máu cơ tim cấp")
    await screenshot(specialist, "specialist-queue")
    await live(doctor)
    await specialist.click("#queue >> text=Nghi nhồi máu cơ tim cấp")
    await expect(specialist.locator("main")).to_contain_text("I2")
    await specialist.click("#accept")
    await expect(specialist.locator("#consult-status")).to_have_text("Đã nhận")

    # The doctor's open page follows: accepted, with the earliest fitting slots.
    await expect(doctor.locator("#consult-status")).to_have_text("Đã nhận")
    first_slot = doctor.locator("#slots label.slot").first
    await expect(first_slot).to_contain_text(f"{start:%d/%m/%Y %H:%M}")
    await screenshot(doctor, "consult-slots")
    await doctor.click("#book")
    await expect(doctor.locator("#consult-status")).to_have_text("Đã lên lịch")
    await expect(doctor.locator("#appointment")).to_contain_text(f"{start:%H:%M}")
    await expect(doctor.locator("#history")).to_contain_text("Đã đặt lịch")
    await screenshot(doctor, "consult-booked")

    await doctor.click("nav.menu >> text=Thông báo")
    await expect(doctor.locator("main")).to_contain_text("Thông báo")
    await screenshot(doctor, "notifications")

    # Join: the room page, with a join token in the fragment.
    await doctor.goto(f"/consults/{request_id}")
    await doctor.click("#join")
    await expect(doctor).to_have_url(re.compile(r"/room/[0-9a-f-]{36}#token=.+"))

    # Only the assigned specialist may conclude: the doctor is refused the form.
    await doctor.goto(f"/consults/{request_id}")
    appointment_url = await doctor.locator("#join").get_attribute("href") or ""
    conclude_url = appointment_url.replace("/join", "/conclude")
    refused = await doctor.goto(conclude_url)
    assert refused is not None and refused.status == 403
    await doctor.context.add_init_script(KEEP_TOASTS)
    await doctor.goto(f"/consults/{request_id}")
    await live(doctor)

    # After the call, the specialist writes the conclusion from the request's page.
    await specialist.reload()
    await expect(specialist.locator("#consult-status")).to_have_text("Đã lên lịch")
    await screenshot(specialist, "consult-specialist-booked")
    await specialist.click("#conclude")
    await expect(specialist.locator("h1")).to_contain_text("Kết luận hội chẩn")
    await expect(specialist.locator("#f-diagnoses")).to_have_value(re.compile(r"^I2\d"))
    await screenshot(specialist, "conclusion-form")
    await specialist.fill("#f-diagnoses", "I21.0, Z99.99X")
    await specialist.check("#f-recommendation-transfer")
    await specialist.fill("#f-advice", "Chuyển Bệnh viện Đa khoa tỉnh, can thiệp mạch vành.")
    await specialist.click("#save-conclusion")
    await expect(specialist.locator("#e-diagnoses")).to_contain_text("Z99.99X")
    await expect(specialist.locator("#f-advice")).to_have_value(re.compile("can thiệp"))
    await expect(specialist.locator("#f-recommendation-transfer")).to_be_checked()
    await screenshot(specialist, "conclusion-form-rejected")
    await specialist.fill("#f-diagnoses", "I21.0")
    await pick_icd(specialist, "hypertension")
    await expect(specialist.locator("#f-diagnoses")).to_have_value(re.compile(r"^I21\.0, I1\d"))
    await specialist.fill("#f-follow_up_on", f"{start + timedelta(days=14):%Y-%m-%d}")
    await specialist.click("#save-conclusion")
    await expect(specialist.locator("#consult-status")).to_have_text("Đã hoàn thành")

    # The doctor's open page: a toast, then the conclusion without a reload by hand.
    await expect(doctor.locator("#conclusion")).to_contain_text("Chuyển tuyến trên")
    await wait_until(
        doctor, "(sessionStorage.getItem('toasts') || '').includes('Đã có kết luận hội chẩn')"
    )
    await expect(doctor.locator("#conclusion")).to_contain_text("can thiệp mạch vành")
    await expect(doctor.locator("#conclusion-follow-up")).to_have_text(
        f"{start + timedelta(days=14):%d/%m/%Y}"
    )
    await screenshot(doctor, "consult-concluded")


async def test_specialist_declines_with_a_reason_and_the_doctor_sees_why(
    browser: Browser, server: RunningServer
) -> None:
    doctor = await person(browser, server, "bs.xa2")
    await ask_for_consult(doctor, "Khó thở khi gắng sức")
    specialist = await person(browser, server, "bs.tim")
    await specialist.click("#queue >> text=Khó thở khi gắng sức")
    await specialist.click("#decline")  # no reason: the browser asks for one first
    await expect(specialist.locator("#consult-status")).to_have_text("Chờ bác sĩ chuyên khoa")
    await specialist.fill("#r-decline", "Cần siêu âm tim trước")
    await specialist.select_option("select[name=return_to]", "requester")
    await specialist.click("#decline")
    await expect(specialist.locator("#consult-status")).to_have_text("Đã từ chối")
    # The doctor's open page follows by itself (a live update reloads it); a reload by hand
    # here raced with that one.
    await expect(doctor.locator("#consult-status")).to_have_text("Đã từ chối")
    await expect(doctor.locator("#history")).to_contain_text("Cần siêu âm tim trước")


async def test_coordinator_sees_unassigned_first_and_assigns(
    browser: Browser, server: RunningServer
) -> None:
    doctor = await person(browser, server, "bs.xa3")
    await ask_for_consult(doctor, "Tăng huyết áp kháng trị")
    coordinator = await person(browser, server, "dieuphoi")
    await expect(coordinator).to_have_url(re.compile(r"/queue$"))
    await expect(coordinator.locator("h1")).to_have_text("Bảng điều phối")
    row = coordinator.locator("#queue tbody tr").first
    await expect(row).to_contain_text("Tăng huyết áp kháng trị")
    await expect(row).to_contain_text("Chưa phân công")
    await screenshot(coordinator, "triage-board")
    await row.locator("a").click()
    await coordinator.select_option("#f-assign", label="BS.CKII Trần Quốc Bảo")
    await coordinator.click("#assign")
    await expect(coordinator.locator("#consult-status")).to_have_text("Đã nhận")
    await expect(coordinator.locator("#history")).to_contain_text("Đã phân công")
    await screenshot(coordinator, "consult-assigned")

    specialist = await person(browser, server, "bs.tim")
    await expect(specialist.locator("#queue")).to_contain_text("Tăng huyết áp kháng trị")


async def test_a_doctor_cannot_open_another_facility_s_request(
    browser: Browser, server: RunningServer
) -> None:
    owner = await person(browser, server, "bs.xa1")
    request_id = await ask_for_consult(owner, "Sốt kéo dài")
    for outsider in ("bs.xa2", "bs.nhi"):
        other = await person(browser, server, outsider)
        response = await other.goto(f"/consults/{request_id}")
        assert response is not None and response.status == 404
        await expect(other.locator("main")).not_to_contain_text("Sốt kéo dài")
        token = await other.locator("input[name=_csrf_token]").first.get_attribute("value")
        refused = await other.request.post(
            f"/consults/{request_id}/act/cancel",
            form={"_csrf_token": token or "", "reason": "không phải của tôi"},
        )
        assert refused.status == 404
    await screenshot(other, "consult-refused")
    # Nothing changed for the owner.
    await owner.reload()
    await expect(owner.locator("#consult-status")).to_have_text("Chờ bác sĩ chuyên khoa")


async def test_a_reminder_published_for_a_person_shows_as_a_toast_and_refreshes_the_queue(
    browser: Browser, server: RunningServer
) -> None:
    """What the notification delivery loop publishes (docs/timers.md) reaches open pages."""
    specialist = await person(browser, server, "bs.tim")
    await live(specialist)
    me = await specialist.request.get("/api/auth/me")  # the cookie is refused under /api
    assert me.status == 401
    async with httpx.AsyncClient(base_url=server.url) as api:
        login = await api.post(
            "/api/auth/login", json={"username": "bs.tim", "password": DEMO_PASSWORD}
        )
        token = login.json()["access_token"]
        who = await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    user_id = who.json()["id"]
    await specialist.evaluate("window.__kept = 1")  # gone once the page reloads
    assert server.app is not None
    channels = server.app.plugins.get(ChannelsPlugin)
    await channels.wait_published({"kind": "appointment.reminder", "id": "x"}, [f"user.{user_id}"])
    await expect(specialist.locator("#toasts")).to_contain_text("Nhắc lịch hội chẩn")
    await wait_until(specialist, "window.__kept === undefined")
    await expect(specialist.locator("h1")).to_have_text("Hàng chờ của tôi")
