"""E-mail over SMTP (aiosmtplib), configured by ``TELEHEALTH_SMTP_*``."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from telehealth.notifications.messages import Message
from telehealth.settings import Settings


def email_enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


async def send_email(settings: Settings, to: str, message: Message) -> None:
    """Send one plain-text UTF-8 message; raises on any SMTP error (retried by the caller)."""
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = to
    email["Subject"] = message.subject
    email.set_content(message.body)
    await aiosmtplib.send(
        email,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user or None,
        password=settings.smtp_password or None,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_s,
    )
