"""A reminder written by its timer arrives by e-mail (aiosmtpd on loopback) in each
participant's language, with the time in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import update
from sqlmodel import col

from telehealth.auth.models import UserAccount
from telehealth.db import Database
from telehealth.notifications.delivery import NotificationDelivery
from telehealth.settings import Settings
from telehealth.timeutil import local
from tests.handler_support import booked, fire
from tests.receivers import smtp_server


async def test_reminder_email_in_vietnamese_and_english(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    async with db.unit_of_work() as session:
        for username, email, language in (
            ("bs.xa1", "xa1@tyt.example.vn", "vi"),
            ("bs.tim", "tim@bvdk.example.vn", "en"),
        ):
            await session.exec(
                update(UserAccount)
                .where(col(UserAccount.username) == username)
                .values(email=email, language=language)
            )
    made = await booked(client)
    start = datetime.fromisoformat(made["appointment"]["starts_at"])
    assert (
        len(await fire(db, settings, ["appointment.reminder"], start - timedelta(minutes=15))) >= 1
    )

    loop_settings = settings.model_copy(update={"smtp_host": "127.0.0.1"})
    async with smtp_server() as (inbox, port):
        delivery = NotificationDelivery(db, loop_settings.model_copy(update={"smtp_port": port}))
        await delivery.run_due()
    shown = local(start, settings.tz)
    reminders = [
        m for m in inbox.messages if m["Subject"] in ("Nhắc lịch hội chẩn", "Consult reminder")
    ]
    by_address = {m["To"]: m for m in reminders}
    assert set(by_address) == {"xa1@tyt.example.vn", "tim@bvdk.example.vn"}
    vietnamese = by_address["xa1@tyt.example.vn"]
    assert vietnamese["Subject"] == "Nhắc lịch hội chẩn"
    assert shown.strftime("%H:%M ngày %d/%m/%Y") in vietnamese.get_content()
    english = by_address["tim@bvdk.example.vn"]
    assert english["Subject"] == "Consult reminder"
    assert shown.strftime("%d/%m/%Y %H:%M") in english.get_content()
