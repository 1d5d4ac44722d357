"""One subscription per process, fanned out to every open socket.

A subscriber per socket costs a queue and a task per connection, and a wake-up of each of them per
event; with a thousand boards open that dominated delivery time. The hub reads the channel once and
calls each connection's filter in turn: the event is decoded once, and a socket that may not see it
costs one function call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from litestar.channels import ChannelsPlugin

from exchange.live.events import CHANNEL, Event, decode_event

log = structlog.get_logger()

# Given an event, send what this connection may see of it (or nothing).
Deliver = Callable[[Event], Awaitable[None]]


class LiveHub:
    def __init__(self) -> None:
        self._connections: dict[int, Deliver] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self, channels: ChannelsPlugin) -> None:
        """Subscribe on first use: by then the app has started the channels backend."""
        async with self._lock:
            if self._task is None or self._task.done():
                self._ready = asyncio.Event()
                self._task = asyncio.create_task(self._run(channels))
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def add(self, key: int, deliver: Deliver) -> None:
        self._connections[key] = deliver

    def remove(self, key: int) -> None:
        self._connections.pop(key, None)

    async def _run(self, channels: ChannelsPlugin) -> None:
        async with channels.start_subscription([CHANNEL]) as subscriber:
            self._ready.set()
            async for raw in subscriber.iter_events():
                event = decode_event(raw)
                for key, deliver in list(self._connections.items()):
                    try:
                        await deliver(event)
                    except Exception:  # a client gone mid-send: it is removed, the others still get the event
                        self._connections.pop(key, None)
                        log.info("live_delivery_dropped")
