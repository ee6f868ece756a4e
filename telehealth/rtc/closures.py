"""A room that closes lets go of everyone in it, in every process.

``service.close_room`` announces the room (``telehealth.notices``) in the transaction that ends
it; once that commits, each process's :class:`RoomClosures` hears it and sets the event of
every signalling connection it holds in the room, which then tells its participant and closes
(``signalling.RoomConnection``). Notices sent while a process's listener was away are lost:
when it is back, the rooms it holds connections in are read again, and the ended ones let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.db import Database
from telehealth.notices import CatchingUp, announce
from telehealth.rtc.models import Room, RoomState
from telehealth.settings import Settings

log = logging.getLogger("telehealth.rtc.closures")

CHANNEL = "rooms_closed"
LISTENER_NAME = "telehealth-rooms-listener"


async def announce_closed(session: AsyncSession, room_id: uuid.UUID) -> None:
    """Once this transaction commits, every process ends its connections to the room."""
    await session.run_sync(announce, CHANNEL, str(room_id))


class RoomClosures(CatchingUp):
    """This process's signalling connections, by room, each waiting on its room's closing."""

    def __init__(self, settings: Settings, db: Database) -> None:
        super().__init__(settings.resolved_database_url, CHANNEL, name=LISTENER_NAME)
        self._db = db
        self._held: dict[uuid.UUID, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, room_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set when the room closes, while the block runs. Entered before the
        connection is admitted, so that a closing committed meanwhile is not missed."""
        closed = asyncio.Event()
        self._held.setdefault(room_id, set()).add(closed)
        try:
            yield closed
        finally:
            held = self._held.get(room_id, set())
            held.discard(closed)
            if not held:
                self._held.pop(room_id, None)

    def hear(self, payload: str) -> None:
        try:
            room_id = uuid.UUID(payload)
        except ValueError:
            log.warning("rooms: ignored a malformed notice %r", payload)
            return
        for closed in self._held.get(room_id, ()):
            closed.set()

    async def catch_up(self) -> None:
        rooms = list(self._held)
        if not rooms:
            return
        async with self._db.unit_of_work() as session:
            ended = await session.exec(
                select(Room.id).where(col(Room.id).in_(rooms), col(Room.state) == RoomState.ENDED)
            )
            for room_id in ended.all():
                self.hear(str(room_id))
