"""A websocket client that stops reading delays nobody: each socket has its own bounded queue and sender
(exchange/live/hub.py); the one that falls behind is closed with 1013 and its page catches up on reconnect
(tests/test_live_catchup.py shows the page side).

The slow client is a real stream socket whose reader stops (a one-message client queue, a small receive buffer,
no compression), as with a phone that went into a tunnel. The events are `pool.updated` events published on the
app's own channel (memory, or Redis), in a burst far beyond what the slow client's queue holds; each carries a
16 KB note, so the few megabytes the kernel buffers for a connection fill after a few hundred events (the hub
does not care what an event holds).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import websockets
from litestar.channels import ChannelsPlugin

from exchange.board.live import pool_json
from exchange.live.events import Audience, publish
from exchange.live.hub import FELL_BEHIND, QUEUE_LIMIT
from tests.conftest import REDIS_URL, LiveServer, Network, log_in_page, page_socket, until_live, ws_url

# Far more than one socket's queue: the slow client must overflow it while the others keep up.
EVENTS = 3 * QUEUE_LIMIT
# Generous for a shared two-core machine; the point is that it ends, not a stall of many seconds.
ALL_WITHIN_S = 20.0
# Repetitive: the readers' compressed sockets carry it cheaply, the slow client (no compression) in full.
NOTE = "free beds now " * 1170


def pool_events(network: Network, count: int) -> list[dict[str, Any]]:
    """`count` successive versions of shelter A's women pool, as `publish_pool_views` would publish them."""
    pool = network.pools["a"]
    base = pool_json(pool)
    return [
        {
            "type": "pool.updated",
            "pool": {**base, "version": base["version"] + i, "occupied": i % 5, "free": base["capacity"] - i % 5},
            "facility_id": network.facilities["a"].id,
            "at": f"2026-12-01T12:00:{i % 60:02d}+00:00",
            "note": NOTE,
        }
        for i in range(1, count + 1)
    ]


async def publish_burst(server: LiveServer, payloads: list[dict[str, Any]]) -> None:
    """Publish on the server's own loop, through the app's channels, as the services do."""
    channels = server.app.plugins.get(ChannelsPlugin)

    async def burst() -> None:
        for payload in payloads:
            publish(channels, "pool.updated", payload, Audience())

    assert server.loop is not None
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(burst(), server.loop))


@asynccontextmanager
async def stalled_stream(server: LiveServer, headers: dict[str, str]) -> AsyncIterator[Any]:
    """A stream socket that reads its ready frame and then nothing: its receive window stays a few kilobytes."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: it sets the advertised window
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", server.port))
    async with websockets.connect(
        ws_url(server, "/api/v1/stream"),
        sock=raw,
        additional_headers=headers,
        compression=None,
        max_queue=1,
        ping_interval=None,
    ) as ws:
        yield ws


async def pool_versions(ws: Any, pool_id: str, count: int, seen: list[int]) -> None:
    """Read a board socket until `count` rows of `pool_id` came; note each row's version."""
    marker = f'id="pool-{pool_id}"'
    while len(seen) < count:
        html = await ws.recv()
        if marker in html:
            seen.append(int(html.split('data-version="', 1)[1].split('"', 1)[0]))


async def stream_versions(ws: Any, pool_id: str, count: int, seen: list[int]) -> None:
    while len(seen) < count:
        message = json.loads(await ws.recv())
        if message.get("type") == "pool.updated" and message["pool"]["id"] == pool_id:
            seen.append(message["pool"]["version"])


async def closed_with(ws: Any, within_s: float) -> tuple[int, int]:
    """Read what the stalled socket still had on its way, up to its close; (messages read, close code)."""
    read = 0
    async with asyncio.timeout(within_s):
        try:
            while True:
                await ws.recv()
                read += 1
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return read, closed.rcvd.code


async def _check_slow_client_stalls_nobody(server: LiveServer, network: Network) -> None:
    pool_id = network.pools["a"].id
    payloads = pool_events(network, EVENTS)
    expected = [p["pool"]["version"] for p in payloads]
    async with httpx.AsyncClient(base_url=server.url) as http:
        cookie = await log_in_page(http, "worker")
        async with (
            stalled_stream(server, network["police"].headers) as slow,
            page_socket(server, cookie, "/board/ws?views=pools") as board,
            websockets.connect(ws_url(server, "/api/v1/stream"), additional_headers=network["worker"].headers) as api,
        ):
            await until_live(slow)
            await until_live(board)
            await until_live(api)
            board_seen: list[int] = []
            api_seen: list[int] = []
            started = time.monotonic()
            await publish_burst(server, payloads)
            async with asyncio.timeout(ALL_WITHIN_S):
                await asyncio.gather(
                    pool_versions(board, pool_id, EVENTS, board_seen),
                    stream_versions(api, pool_id, EVENTS, api_seen),
                )
            took = time.monotonic() - started
            # Every event, in order, to both readers, while the slow client read nothing.
            assert board_seen == expected
            assert api_seen == expected
            # The slow socket, once it reads again, finds part of the burst and then the server's close: it fell
            # behind and was told to come back (htmx's ws extension reconnects on 1013).
            read, code = await closed_with(slow, within_s=ALL_WITHIN_S)
    assert code == FELL_BEHIND
    assert read < EVENTS
    print(f"{EVENTS} events to two readers in {took:.2f} s beside a stalled socket (which read {read}, then 1013)")


async def test_a_socket_that_stops_reading_delays_no_other(live_server: LiveServer, network: Network) -> None:
    await _check_slow_client_stalls_nobody(live_server, network)


async def test_a_slow_socket_delays_no_other_through_redis(settings: Any, network: Network) -> None:
    with LiveServer(replace(settings, redis_url=os.environ.get("REDIS_URL", REDIS_URL))) as server:
        await _check_slow_client_stalls_nobody(server, network)


async def test_a_socket_that_keeps_reading_is_never_closed(live_server: LiveServer, network: Network) -> None:
    """The queue's limit concerns clients that stopped: a reader receives a burst larger than the limit."""
    pool_id = network.pools["a"].id
    payloads = pool_events(network, EVENTS)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        cookie = await log_in_page(http, "worker")
        async with page_socket(live_server, cookie, "/board/ws?views=pools") as board:
            await until_live(board)
            seen: list[int] = []
            await publish_burst(live_server, payloads)
            async with asyncio.timeout(ALL_WITHIN_S):
                await pool_versions(board, pool_id, EVENTS, seen)
            assert seen == [p["pool"]["version"] for p in payloads]
            hub = live_server.app.state.live_hub
            assert hub.connections == 1


@pytest.mark.parametrize("path", ["/api/v1/stream", "/board/ws"])
async def test_logout_still_closes_the_socket(live_server: LiveServer, network: Network, path: str) -> None:
    """The session's end goes through the same queue: the socket closes with 4401."""
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        cookie = await log_in_page(http, "worker")
        async with page_socket(live_server, cookie, path) as ws:
            await until_live(ws)
            response = await http.post("/logout", data={"_csrf_token": http.cookies["csrftoken"]})
            assert response.status_code in (200, 303)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
