"""Live updates: a pool change reaches websocket clients at once, filtered per user, across app processes."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace

import httpx
import pytest
import websockets

from tests.conftest import REDIS_URL, LiveServer, log_in_page, page_socket, until_live, ws_url


async def next_pool_event(ws, pool_id: str, within_s: float = 3.0) -> dict:
    async with asyncio.timeout(within_s):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "pool.updated" and message["pool"]["id"] == pool_id:
                return message


async def test_stream_client_receives_a_pool_change_made_through_the_api(live_server, network) -> None:
    pool = network.pools["a"]
    async with (
        websockets.connect(ws_url(live_server, "/api/v1/stream"), additional_headers=network["police"].headers) as ws,
        httpx.AsyncClient(base_url=live_server.url) as http,
    ):
        # The stream's first frame says the connection is registered: the change below cannot be missed.
        assert json.loads(await until_live(ws)) == {"type": "ready"}
        response = await http.post(
            f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
        )
        assert response.status_code == 200
        event = await next_pool_event(ws, pool.id)
    assert event["facility_id"] == network.facilities["a"].id
    assert event["pool"]["occupied"] == 5 and event["pool"]["free"] == 5
    assert set(event) == {"type", "pool", "facility_id", "at"}
    assert "rue Secrète" not in json.dumps(event)


async def test_board_socket_sends_html_rows_to_swap(live_server, network) -> None:
    pool = network.pools["b"]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        cookie = await log_in_page(http, "shelter_b")
        async with page_socket(live_server, cookie) as ws:
            # The first message says the page is live: the subscription exists, no change can be missed.
            hello = await until_live(ws)
            assert 'id="live-status"' in hello and "Live" in hello
            await http.post(
                f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 2}, headers=network["shelter_b"].headers
            )
            async with asyncio.timeout(3):
                html = await ws.recv()
                while f'id="pool-{pool.id}"' not in html:
                    html = await ws.recv()
    assert f'id="pool-{pool.id}"' in html and 'hx-swap-oob="true"' in html
    assert "<strong>4</strong>" in html  # 8 - 4 occupied
    # shelter_b staffs this facility, so its row keeps the +1 / -1 buttons.
    assert f"/pools/{pool.id}/adjust" in html


async def test_websocket_from_another_site_is_refused(live_server, network) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        await http.get("/login")
        await http.post(
            "/login",
            data={
                "username": "police",
                "password": "correct horse battery staple",
                "_csrf_token": http.cookies["csrftoken"],
            },
        )
        cookie = f"session={http.cookies['session']}"
    # Refused during the handshake, before a single event could be sent.
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(
            ws_url(live_server, "/board/ws"), additional_headers={"Cookie": cookie, "Origin": "https://evil.example"}
        ) as ws:
            await ws.recv()
    assert refused.value.response.status_code == 403
    # The same session from our own origin is accepted and goes live.
    async with page_socket(live_server, cookie) as ws:
        assert 'id="live-status"' in await until_live(ws)


async def test_websocket_without_credentials_is_refused(live_server, network) -> None:
    for path in ("/api/v1/stream", "/board/ws"):
        with pytest.raises((websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus)):
            async with websockets.connect(
                ws_url(live_server, path), additional_headers={"Origin": live_server.url}
            ) as ws:
                await ws.recv()
    with pytest.raises((websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus)):
        async with websockets.connect(
            ws_url(live_server, "/api/v1/stream"), additional_headers={"Authorization": "Bearer rfx_forged"}
        ) as ws:
            await ws.recv()


async def test_two_app_processes_share_one_stream_through_redis(settings, network) -> None:
    """A change made through instance A reaches a websocket client of instance B (Redis pub/sub backend)."""
    shared = replace(settings, redis_url=os.environ.get("REDIS_URL", REDIS_URL))
    pool = network.pools["a"]
    with LiveServer(shared) as server_a, LiveServer(shared) as server_b:
        async with (
            websockets.connect(ws_url(server_b, "/api/v1/stream"), additional_headers=network["worker"].headers) as ws,
            httpx.AsyncClient(base_url=server_a.url) as http,
        ):
            await until_live(ws)  # registered with B's hub; B subscribed to the Redis channel at startup
            response = await http.post(
                f"/api/v1/pools/{pool.id}/adjust",
                json={"out_of_service_delta": 1},
                headers=network["shelter_a"].headers,
            )
            assert response.status_code == 200
            event = await next_pool_event(ws, pool.id)
    assert event["pool"]["out_of_service"] == 1
