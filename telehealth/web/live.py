"""Live updates for open pages: a WebSocket that forwards the caller's own channel.

Other areas publish small events (``{"kind": ..., "id": ...}``) to ``user.<account uuid>``
through Channels; the page's script shows them as a toast and a badge. The socket is
authenticated by the session cookie (or ``?access_token=``) like every other request, and
refuses pages of other sites (the Origin must be ours).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from telehealth.auth.principal import Principal
from telehealth.http.dependencies import ChannelsDep
from telehealth.pubsub import user_channel


def _same_origin(socket: WebSocket[Any, Any, Any]) -> bool:
    origin = socket.headers.get("origin")
    if not origin:
        return True  # not a browser page; authenticated all the same
    return urlsplit(origin).netloc == socket.headers.get("host", "")


@websocket("/ws/updates", include_in_schema=False)
async def live_updates(socket: WebSocket[Principal, Any, Any], channels: ChannelsDep) -> None:
    if not _same_origin(socket):
        await socket.close(code=4403, reason="origin not allowed")
        return
    await socket.accept()
    async with (
        channels.start_subscription([user_channel(socket.user.id)]) as subscriber,
        subscriber.run_in_background(socket.send_text),
    ):
        await socket.send_json({"kind": "ready"})
        try:
            while True:
                await socket.receive_text()  # nothing is expected; this notices the close
        except WebSocketDisconnect:
            pass
