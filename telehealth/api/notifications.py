"""/api routes: a person's in-app notifications (listed, marked read, pushed live over a
WebSocket), webhook subscriptions and timer figures for administrators."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from telehealth.api.directory import Limit, Offset
from telehealth.auth.principal import Principal
from telehealth.http.dependencies import CallerDep, ChannelsDep, SessionDep, SettingsDep
from telehealth.http.guards import administrators
from telehealth.notifications import service
from telehealth.pubsub import user_channel


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    subject_id: uuid.UUID | None
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=500)
    kinds: list[Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z_.]+$", max_length=40)]] = Field(
        default_factory=list, max_length=50, description="event kinds wanted; empty: all"
    )


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    url: str
    kinds: list[str]
    active: bool


class WebhookCreated(WebhookRead):
    secret: str = Field(description="HMAC-SHA256 signing secret; shown once, store it now")


class NotificationController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get("/")
    async def list_mine(
        self,
        session: SessionDep,
        caller: CallerDep,
        unread: Annotated[bool, QueryParameter(description="only those not read yet")] = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[NotificationRead]:
        rows = await service.list_notifications(
            session, caller, unread_only=unread, limit=limit, offset=offset
        )
        return [NotificationRead.model_validate(row) for row in rows]

    @post("/{notification_id:uuid}/read", status_code=204)
    async def mark_read(
        self, notification_id: FromPath[uuid.UUID], session: SessionDep, caller: CallerDep
    ) -> None:
        await service.mark_read(session, caller, notification_id)


@websocket("/api/notifications/live", tags=["notifications"])
async def live_notifications(socket: WebSocket[Principal, Any, Any], channels: ChannelsDep) -> None:
    """Pushes ``{"kind", "id"}`` for each new in-app notification of the connected person
    (authenticate with ``?access_token=``); the page then fetches /api/notifications."""
    async with channels.start_subscription([user_channel(socket.user.id)]) as subscriber:
        await socket.accept()  # subscribed first: nothing published after the accept is lost
        async with subscriber.run_in_background(socket.send_data):
            try:
                while True:
                    await socket.receive_text()
            except WebSocketDisconnect:
                pass


class TimerAdminController(Controller):
    path = "/api/admin"
    tags = ["administration"]
    guards = [administrators]

    @post("/webhooks")
    async def create_webhook(
        self,
        data: JSONBody[WebhookCreate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> WebhookCreated:
        subscription = await service.create_webhook_subscription(
            session,
            caller,
            name=data.name,
            url=data.url,
            kinds=data.kinds,
            allow_hosts=settings.webhook_allow_hosts,
        )
        return WebhookCreated.model_validate(subscription)

    @get("/webhooks")
    async def list_webhooks(self, session: SessionDep, caller: CallerDep) -> list[WebhookRead]:
        rows = await service.list_webhook_subscriptions(session, caller)
        return [WebhookRead.model_validate(row) for row in rows]

    @get("/timers/metrics")
    async def metrics(
        self, request: Request[Principal, Any, Any], session: SessionDep, caller: CallerDep
    ) -> dict[str, Any]:
        loops = request.app.state.get("timers")
        return await service.timer_metrics(
            session,
            caller,
            loops.timer_metrics if loops else None,
            loops.delivery_metrics if loops else None,
        )
