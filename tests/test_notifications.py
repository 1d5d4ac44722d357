"""A new hold request reaches the facility: an e-mail to its on-call address (a real local SMTP server) and a
live banner on its staff's board (a real websocket to a real server)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import connect

from exchange.app import create_app
from tests.conftest import PASSWORD, free_port, until_live


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def _operation_hold(client: Any, network: Any) -> dict:
    op = await client.post(
        "/api/v1/operations",
        json={
            "code_name": "NIGHTJAR",
            "province": "QC",
            "window_start": later(hours=1),
            "window_end": later(hours=4),
            "needs": [{"profile": "women", "count": 2}],
        },
        headers=network["police"].headers,
    )
    response = await client.post(
        "/api/v1/holds",
        json={
            "pool_id": network.pools["a"].id,
            "beds": 2,
            "operation_id": op.json()["id"],
            "expires_at": later(hours=6),
        },
        headers=network["police"].headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_hold_request_mails_the_on_call_address_without_code_name_or_address(settings, network) -> None:
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        app = create_app(replace(settings, smtp_host="127.0.0.1", smtp_port=port))
        async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
            created = await _operation_hold(client, network)
            for _ in range(100):
                if inbox.messages:
                    break
                await asyncio.sleep(0.05)
    finally:
        smtp.stop()
    assert len(inbox.messages) == 1
    recipients, raw = inbox.messages[0]
    assert recipients == ["alpha@shelter.test"]
    message = message_from_bytes(raw)
    body = message.get_payload(decode=True).decode()
    text = message["Subject"] + body
    assert "police org" in text and "2 bed(s)" in text
    assert f"http://testserver.local/requests#hold-{created['id']}" in body
    assert "NIGHTJAR" not in text and "123 rue Secrète" not in text and "+1-555-000-1111" not in text


async def test_a_dead_smtp_server_does_not_block_or_fail_the_hold(settings, network, sessionmaker) -> None:
    app = create_app(replace(settings, smtp_host="127.0.0.1", smtp_port=free_port()))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        created = await _operation_hold(client, network)
        seen = await client.get(f"/api/v1/holds/{created['id']}", headers=network["police"].headers)
        assert seen.status_code == 200 and seen.json()["status"] == "requested"


async def _login(http: httpx.AsyncClient, username: str) -> None:
    await http.get("/login")
    response = await http.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": "/", "_csrf_token": http.cookies["csrftoken"]},
    )
    assert response.status_code in (200, 303), response.text


async def test_staff_board_gets_a_live_banner_and_the_pool_row(live_server, network) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, follow_redirects=False) as staff:
        await _login(staff, "shelter_a")
        cookie = "; ".join(f"{k}={v}" for k, v in staff.cookies.items())
        ws_url = live_server.url.replace("http://", "ws://") + "/board/ws"
        async with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": live_server.url}) as socket:
            async with httpx.AsyncClient(base_url=live_server.url) as police:
                await until_live(socket)  # the socket is registered before the event is published
                created = await _operation_hold(police, network)
            received: list[str] = []
            async with asyncio.timeout(5):
                while not (
                    any('id="hold-banner"' in m for m in received)
                    and any(f'id="pool-{network.pools["a"].id}"' in m for m in received)
                ):
                    received.append(str(await socket.recv()))
    banner = next(m for m in received if 'id="hold-banner"' in m)
    assert 'hx-swap-oob="innerHTML"' in banner and "police org" in banner and "2 beds" in banner
    assert "NIGHTJAR" not in "".join(received) and created["id"]
