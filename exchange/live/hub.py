"""One subscription per process, fanned out to every open socket; no socket can hold up another.

A subscriber per socket (a channel subscription each) cost a wake-up per socket per event and dominated delivery
time with a thousand boards open, so the hub reads the channel once, decodes each event once, and asks each
connection what it may see of it (a plain function call). That is written to the socket at once when the socket
takes it without waiting (any client that reads); when a send would wait, the connection's own task finishes it
and sends what queues up meanwhile in the connection's own bounded queue, while the hub goes on. A client that
stops reading fills only its own queue; a queue that overflows closes its socket with 1013 ("try again later"):
the page's socket reconnects on its own and the page reads its live parts again (exchange/web/static/app.js
`refreshLiveParts`), so nothing it missed stays wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import WebSocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect

from exchange.live.events import CHANNEL, Event, decode_event

log = structlog.get_logger()

# Messages waiting for one socket before it counts as fallen behind. A burst (a bulk allocation moving a few
# hundred pools) fits; a client that stopped reading reaches it and is closed, its page catches up on reconnect.
QUEUE_LIMIT = 500
# A close frame waits behind what the client has not read; a client that reads nothing for this long after
# being told to close has its connection cut, so it holds no memory or task for ever.
CLOSE_GRACE_S = 30.0
# Close codes: RFC 6455's "try again later" (htmx's ws extension reconnects on it), and the app's own.
FELL_BEHIND = 1013
SESSION_ENDED = 4401
CLIENT_GONE = (WebSocketDisconnect, OSError)


@dataclass(frozen=True)
class Close:
    """Put in a queue instead of a message: the sender closes the socket with this code once it gets there."""

    code: int
    reason: str


# Given an event, what this connection may see of it: the text to send, a Close, or None (nothing).
Select = Callable[[Event], str | Close | None]


class Connection:
    """One socket's side of the hub: its filter, its queue, and the task that empties the queue when it must wait.

    A message is written at once when nothing is waiting before it and the socket can take it, which is the case
    for every client that reads: a send that completes without waiting needs no task. A send that would wait (the
    client's buffer is full) is finished by this connection's own task, which then sends what queued up meanwhile;
    the hub goes on to the next socket at once. A task wake-up per socket per event would cost far more than the
    write itself with a thousand sockets open."""

    def __init__(self, socket: WebSocket, select: Select, limit: int) -> None:
        self.socket = socket
        self.select = select
        self.limit = limit
        self.queue: deque[str] = deque()
        self.closing: Close | None = None
        self.gone = False
        self.sender: asyncio.Task[None] | None = None

    def offer(self, event: Event) -> None:
        """Called by the hub for every event: never waits, so one connection cannot hold up the next."""
        if self.closing is not None or self.gone:
            return
        message = self.select(event)
        if message is None:
            return
        if isinstance(message, Close):
            self.close(message)
        elif self.sender is None:
            self.send_now(message)
        elif len(self.queue) >= self.limit:
            log.info("live_socket_fell_behind", queued=len(self.queue))
            self.close(Close(FELL_BEHIND, "fell behind: reload"))
        else:
            self.queue.append(message)

    def send_now(self, message: str) -> None:
        """Write the message if the socket takes it without waiting; otherwise its own task finishes the send."""
        send = self.socket.send_text(message)
        try:
            waiting_on = send.send(None)
        except StopIteration:
            return
        except CLIENT_GONE:
            self.gone = True
            return
        self.sender = asyncio.create_task(self._send_rest(_finish(send, waiting_on)))

    def close(self, close: Close) -> None:
        """What is still queued is dropped (the page reads its live parts again when it reconnects); the close
        goes out once the send under way, if any, has left."""
        self.closing = close
        self.queue.clear()
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_rest(None))

    async def _send_rest(self, under_way: Coroutine[Any, Any, None] | None) -> None:
        try:
            if under_way is not None:
                await under_way
            while self.queue:
                await self.socket.send_text(self.queue.popleft())
            if self.closing is not None:
                await self._close(self.closing)
        except CLIENT_GONE:  # the client left: its handler notices on receive and unregisters
            self.gone = True
        except Exception:  # a send the server refused (the socket already closing): this socket is done
            log.exception("live_send_failed")
            self.gone = True
        finally:
            # No await between the queue found empty and this: an event offered meanwhile was sent or queued.
            self.sender = None

    async def _close(self, close: Close) -> None:
        try:
            await asyncio.wait_for(self.socket.close(code=close.code, reason=close.reason), CLOSE_GRACE_S)
        except TimeoutError:
            _abort(self.socket)


async def _finish(send: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a send that was started by hand (`Connection.send_now`) to its end, as a task would have."""
    try:
        while True:
            if waiting_on is None:  # a bare yield: give the loop a turn
                await asyncio.sleep(0)
            else:
                # As a task does with a future its coroutine yields: it was marked as being awaited, and awaiting
                # it again here must not look like a second, wrong await.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
            try:
                waiting_on = send.send(None)
            except StopIteration:
                return
    except BaseException:
        send.close()
        raise


def _abort(socket: WebSocket) -> None:
    """Cut a connection whose client reads nothing, not even its close frame.

    ASGI has no message for this. Under uvicorn the server's send is a method of its protocol, which holds the
    transport; Litestar wraps that send in closures, which are looked through. Elsewhere the connection stays
    until the server's own keepalive or the client ends it; it receives nothing more either way."""
    transport = _transport_of(socket.send, depth=4)
    if transport is not None:
        log.info("live_socket_cut")
        transport.abort()


def _transport_of(send: Any, depth: int) -> Any:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None or depth == 0:
        return transport
    for cell in getattr(send, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            found = _transport_of(cell.cell_contents, depth - 1)
            if found is not None:
                return found
    return None


class LiveHub:
    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self.limit = limit
        self._connections: dict[int, Connection] = {}
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

    def connect(self, socket: WebSocket, select: Select, first: str) -> Connection:
        """Register a socket and send it `first`: it goes out before any event, and no event published from now on
        is missed. The caller ends the connection with `disconnect`."""
        connection = Connection(socket, select, self.limit)
        self._connections[id(connection)] = connection
        connection.send_now(first)
        return connection

    async def disconnect(self, connection: Connection) -> None:
        self._connections.pop(id(connection), None)
        sender = connection.sender
        if sender is not None and not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def _run(self, channels: ChannelsPlugin) -> None:
        async with channels.start_subscription([CHANNEL]) as subscriber:
            self._ready.set()
            async for raw in subscriber.iter_events():
                event = decode_event(raw)
                for connection in list(self._connections.values()):
                    try:
                        connection.offer(event)
                    except Exception:  # a renderer's bug costs this socket its connection, never the others
                        log.exception("live_delivery_failed", kind=event.kind)
                        connection.close(Close(1011, "server error"))
                # The senders of sockets that had to wait, and the requests being served, get a turn between two
                # events of a burst: a queue fills only when its own client does not read.
                await asyncio.sleep(0)
