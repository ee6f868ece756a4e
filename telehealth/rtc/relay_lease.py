"""One process hosts each room's media relay: a lease row says which, Channels carry the rest.

The first process asked to relay in a room takes its ``relay_lease`` row (one conditional
upsert: insert, or take over a lease that expired or is already ours). A participant whose
signalling connection is on another process has their ``relay_offer`` forwarded to the owner
on its process channel ``media.<owner>``; the owner builds the leg (media then flows between the
participant and the owner, directly) and replies on the asker's channel. The owner renews its
leases while it holds relay legs in the room and deletes them when it holds none. A process
that dies (even SIGKILL) stops renewing: forwarded offers go unanswered and are refused with
``relay_unavailable`` until the lease expires, then the next offer takes the relay over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.db import Database, dialect_insert
from telehealth.pubsub import Broadcast
from telehealth.rtc.media import MediaPeers, MediaRefused
from telehealth.rtc.models import RelayLease
from telehealth.settings import Settings
from telehealth.timers.claims import worker_name
from telehealth.timeutil import utcnow

log = logging.getLogger("telehealth.rtc")


def relay_moving() -> MediaRefused:
    return MediaRefused(
        "relay_unavailable",
        "Máy chủ chuyển tiếp đang đổi; hãy thử lại sau vài giây. / "
        "The relay is moving to another server; retry in a few seconds.",
    )


async def claim_relay(
    session: AsyncSession,
    room_id: uuid.UUID,
    owner: str,
    lease_s: float,
    clock: Callable[[], datetime] = utcnow,
) -> str:
    """The process hosting the room's relay: ``owner`` when the room has no live lease (or
    ``owner`` holds it), otherwise the current holder."""
    now = clock()
    for _ in range(3):  # the holder may delete its row between our two statements
        stmt = dialect_insert(session, RelayLease).values(
            room_id=room_id, owner=owner, expires_at=now + timedelta(seconds=lease_s)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["room_id"],
            set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
            where=(col(RelayLease.expires_at) < now) | (col(RelayLease.owner) == owner),
        ).returning(col(RelayLease.owner))
        taken = (await session.exec(stmt)).scalar_one_or_none()
        if taken is not None:
            return str(taken)
        holder = (
            await session.exec(select(RelayLease.owner).where(RelayLease.room_id == room_id))
        ).one_or_none()
        if holder is not None:
            return holder
    raise relay_moving()


async def keep_leases(
    session: AsyncSession,
    owner: str,
    rooms: set[uuid.UUID],
    lease_s: float,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Renew ``owner``'s leases of ``rooms``; give up its others."""
    until = clock() + timedelta(seconds=lease_s)
    mine = col(RelayLease.owner) == owner
    if rooms:
        await session.exec(
            update(RelayLease)
            .where(mine, col(RelayLease.room_id).in_(rooms))
            .values(expires_at=until)
        )
    await session.exec(delete(RelayLease).where(mine, col(RelayLease.room_id).not_in(rooms)))


class RelayRouter:
    """Sends each relay offer to the process holding the room's lease (perhaps this one)."""

    def __init__(
        self, db: Database, settings: Settings, channels: Broadcast, media: MediaPeers
    ) -> None:
        self.db, self.settings, self.channels, self.media = db, settings, channels, media
        self.me = worker_name()
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.elsewhere: dict[str, str] = {}  # connection id -> owner hosting its leg
        self.claiming: set[uuid.UUID] = set()
        self.hosting: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = asyncio.Lock()

    @staticmethod
    def channel_of(owner: str) -> str:
        return f"media.{owner}"

    def _hosted(self) -> set[uuid.UUID]:
        legs = self.media.legs.values()
        return {leg.room_id for leg in legs if leg.kind == "relay" and leg.room_id} | self.claiming

    async def _start(self) -> None:
        """Listen on this process's channel and keep its leases (on first use: a process that
        never relays never subscribes)."""
        async with self._started:
            if self._tasks:
                return
            subscriber = await self.channels.subscribe([self.channel_of(self.me)])
            self._tasks = [
                asyncio.create_task(self._serve(subscriber.iter_events())),
                asyncio.create_task(self._keep()),
            ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def offer(
        self,
        connection_id: str,
        room_id: uuid.UUID,
        user_id: uuid.UUID,
        others: list[uuid.UUID],
        sdp: str,
    ) -> str:
        """The answer to a participant's relay offer, from whichever process hosts the relay."""
        await self._start()
        self.claiming.add(room_id)
        try:
            async with self.db.unit_of_work() as session:
                owner = await claim_relay(session, room_id, self.me, self.settings.relay_lease_s)
            if owner == self.me:
                return await self.media.relay_leg(connection_id, room_id, user_id, others, sdp)
        finally:
            self.claiming.discard(room_id)
        request = secrets.token_hex(8)
        reply = asyncio.get_running_loop().create_future()
        self.waiting[request] = reply
        try:
            await self._send(
                owner,
                {
                    "op": "offer",
                    "request": request,
                    "reply_to": self.me,
                    "connection": connection_id,
                    "room": str(room_id),
                    "user": str(user_id),
                    "others": [str(o) for o in others],
                    "sdp": sdp,
                },
            )
            async with asyncio.timeout(self.settings.relay_forward_timeout_s):
                answer = await reply
        except TimeoutError:
            raise relay_moving() from None
        finally:
            self.waiting.pop(request, None)
        if answer["op"] == "refused":
            raise MediaRefused(answer["reason"], answer["message"])
        self.elsewhere[connection_id] = owner
        return str(answer["sdp"])

    async def release(self, connection_id: str) -> None:
        """The participant's connection ended: end its legs here and at the relay's host."""
        await self.media.release(connection_id)
        owner = self.elsewhere.pop(connection_id, None)
        if owner is not None:
            with contextlib.suppress(Exception):
                await self._send(owner, {"op": "release", "connection": connection_id})

    async def _send(self, owner: str, message: dict[str, Any]) -> None:
        await self.channels.wait_published(json.dumps(message).encode(), [self.channel_of(owner)])

    async def _serve(self, events: Any) -> None:
        async for raw in events:
            message = json.loads(raw)
            with contextlib.suppress(Exception):
                if message["op"] in ("answer", "refused"):
                    waiting = self.waiting.get(message["request"])
                    if waiting is not None and not waiting.done():
                        waiting.set_result(message)
                elif message["op"] == "offer":
                    hosting = asyncio.create_task(self._host(message))
                    self.hosting.add(hosting)
                    hosting.add_done_callback(self.hosting.discard)
                elif message["op"] == "release":
                    await self.media.release(message["connection"])

    async def _host(self, message: dict[str, Any]) -> None:
        """Build a leg asked for by another process; reply on its channel."""
        reply: dict[str, Any] = {"request": message["request"]}
        room_id = uuid.UUID(message["room"])
        self.claiming.add(room_id)
        try:
            # Still ours? (Our last leg may have ended, and the lease with it, meanwhile.)
            async with self.db.unit_of_work() as session:
                owner = await claim_relay(session, room_id, self.me, self.settings.relay_lease_s)
            if owner != self.me:
                raise relay_moving()
            sdp = await self.media.relay_leg(
                message["connection"],
                room_id,
                uuid.UUID(message["user"]),
                [uuid.UUID(o) for o in message["others"]],
                message["sdp"],
            )
            reply |= {"op": "answer", "sdp": sdp}
        except MediaRefused as exc:
            reply |= {"op": "refused", "reason": exc.reason, "message": str(exc)}
        except Exception:
            log.exception("relay: a forwarded offer failed")
            reply |= {"op": "refused", "reason": "internal", "message": "That did not work."}
        finally:
            self.claiming.discard(room_id)
        await self._send(message["reply_to"], reply)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.relay_lease_s / 3)
            try:
                async with self.db.unit_of_work() as session:
                    await keep_leases(session, self.me, self._hosted(), self.settings.relay_lease_s)
            except Exception:
                log.exception("relay: renewing leases failed; retrying")
