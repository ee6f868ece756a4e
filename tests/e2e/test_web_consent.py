"""The commune doctor records the patient's consent in a real browser: nothing ticked in
advance, the evidence each way needs, withdrawal kept as history, and a request that cannot
be sent without consent to remote consultation."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.consult_support import CARDIOLOGY
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.test_web_doctor import fill_patient

PATIENT = {"full_name": "Lê Văn Đồng", "gender": "male", "birth_date": "1958-09-21"}
PURPOSES = ("remote_consultation", "session_recording", "record_sharing")


async def test_doctor_records_and_withdraws_consent_and_a_request_needs_it(page: Page) -> None:
    await log_in(page, "bs.xa1")
    await page.goto("/patients/new")
    await fill_patient(page, PATIENT)
    await page.click("main button[type=submit]")
    await expect(page.locator("h1")).to_have_text(PATIENT["full_name"])
    patient_url = page.url.split("?")[0]
    consent = page.locator("#consent")
    await expect(consent.locator("h2")).to_have_text("Sự đồng ý của người bệnh")
    await expect(consent).to_contain_text("Chưa ghi nhận sự đồng ý nào")
    for purpose in PURPOSES:
        await expect(page.locator(f"#f-purpose_{purpose}")).not_to_be_checked()
    await screenshot(page, "consent-form")

    # Nothing ticked: nothing is assumed, the form says so.
    await page.select_option("#f-method", "electronic")
    await page.click("#record-consent")
    await expect(page.locator("[data-error-for=purposes]")).to_have_text("là bắt buộc")
    # Spoken consent needs its witness.
    await page.check("#f-purpose_remote_consultation")
    await page.check("#f-purpose_record_sharing")
    await page.select_option("#f-method", "spoken_before_witness")
    await page.click("#record-consent")
    await expect(page.locator("#e-witness_name")).to_have_text(
        "ghi tên người làm chứng cho sự đồng ý bằng lời"
    )
    await expect(page.locator("#f-purpose_record_sharing")).to_be_checked()
    await expect(page.locator("#f-purpose_session_recording")).not_to_be_checked()
    await page.fill("#f-witness_name", "Điều dưỡng Lê Thị Hoa")
    await page.click("#record-consent")
    await expect(page.locator(".consent.active")).to_have_count(2)
    given = page.locator(".consent[data-purpose=remote_consultation]")
    await expect(given).to_contain_text("Hội chẩn, tư vấn từ xa")
    await expect(given).to_contain_text("Điều dưỡng Lê Thị Hoa")
    await screenshot(page, "consent-recorded")

    # The patient changes their mind: withdrawn, and kept.
    await given.locator("input[name=reason]").fill("Người bệnh đổi ý")
    await given.locator("button").click()
    withdrawn = page.locator(".consent.withdrawn[data-purpose=remote_consultation]")
    await expect(withdrawn).to_contain_text("Đã rút lại lúc")
    await expect(withdrawn).to_contain_text("Người bệnh đổi ý")

    # Without consent to remote consultation the request is not sent.
    patient_id = patient_url.rsplit("/", 1)[1]
    await page.goto(f"/consults/new?patient_id={patient_id}")
    await page.select_option("#f-specialty_code", CARDIOLOGY)
    await page.fill("#f-reason", "Đau ngực khi gắng sức")
    await page.fill("#f-clinical_summary", "Nam 68 tuổi, đau ngực trái 2 ngày.")
    await page.click("main button[type=submit]")
    await expect(page.locator("#form-message")).to_contain_text(
        "record the patient's consent to remote consultation first"
    )
    await screenshot(page, "consult-refused-without-consent")
