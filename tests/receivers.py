"""Real loopback stand-ins for what lives outside the machine: an SMTP server (aiosmtpd) and
an HTTP webhook receiver (uvicorn serving a tiny ASGI app)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller

from tests.conftest import free_port

LOOPBACK = "127.0.0.1"  # where the receivers listen; tests allow it in webhook_allow_hosts


@dataclass
class SmtpInbox:
    """Collects every message the SMTP server accepts."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


@asynccontextmanager
async def smtp_server(port: int | None = None) -> AsyncIterator[tuple[SmtpInbox, int]]:
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port())
    await asyncio.to_thread(controller.start)
    try:
        yield inbox, controller.port
    finally:
        await asyncio.to_thread(controller.stop)


@dataclass
class WebhookReceiver:
    """Answers each POST with the next status of ``statuses`` (the last one repeats)."""

    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def webhook_receiver(statuses: list[int]) -> AsyncIterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver(statuses)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(receiver, host=LOOPBACK, port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield receiver, f"http://{LOOPBACK}:{port}/hooks/telehealth"
    finally:
        server.should_exit = True
        await task
