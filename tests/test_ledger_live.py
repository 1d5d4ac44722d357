"""Live: a new request reaches the approvers' inbox, and a decision reaches the requester's status card,
over the board socket (HTML fragments) and the JSON stream, and nobody else."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.conftest import LiveServer, Network, log_in_page, page_socket, until_live, ws_url
from tests.test_ledger_support import disbursement_body, fixture_fund_id  # noqa: F401  (fixture)


async def _board_socket(server: LiveServer, username: str):
    http = httpx.AsyncClient(base_url=server.url)
    cookie = await log_in_page(http, username)
    await http.aclose()
    return page_socket(server, cookie)


async def _recv_containing(ws, needle: str, within_s: float = 3.0) -> str:
    async with asyncio.timeout(within_s):
        while True:
            message = await ws.recv()
            if needle in message:
                return message


async def test_inbox_and_status_update_live(live_server: LiveServer, network: Network, fund_id: str) -> None:
    worker, approver = network["worker"], network["approver"]
    async with (
        httpx.AsyncClient(base_url=live_server.url) as http,
        await _board_socket(live_server, "approver") as approver_ws,
        await _board_socket(live_server, "worker") as worker_ws,
        websockets.connect(
            ws_url(live_server, "/api/v1/stream"), additional_headers=network["police"].headers
        ) as police_ws,
    ):
        for ws in (approver_ws, worker_ws, police_ws):
            await until_live(ws)
        code = (await http.post("/api/v1/cases", json={}, headers=worker.headers)).json()["code"]
        created = await http.post(
            "/api/v1/disbursements",
            json=disbursement_body(fund_id, code, category="other", amount_cents=30_000),
            headers=worker.headers,
        )
        d = created.json()
        inbox_html = await _recv_containing(approver_ws, f'id="inbox-{d["id"]}"')
        assert 'hx-swap-oob="afterbegin:#inbox-rows"' in inbox_html and code in inbox_html
        assert f"/ledger/requests/{d['id']}/approve" in inbox_html
        await _recv_containing(worker_ws, f'id="disb-status-{d["id"]}"')
        approved = await http.post(f"/api/v1/disbursements/{d['id']}/approve", headers=approver.headers)
        assert approved.status_code == 200
        status_html = await _recv_containing(worker_ws, f'id="disb-status-{d["id"]}"')
        assert 'hx-swap-oob="true"' in status_html and "approved" in status_html
        # The police stream never carries ledger events.
        with_timeout = asyncio.wait_for(police_ws.recv(), timeout=0.5)
        try:
            message = await with_timeout
        except TimeoutError:
            message = ""
        assert "ledger" not in message and code not in json.dumps(message)
