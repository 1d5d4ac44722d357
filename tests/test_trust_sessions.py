"""Issue 9, points 5-8: sockets that close with the right to them, password changes that end sessions, tokens that
expire, a login throttle that is atomic and locks nobody out, and password checks off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar
from sqlalchemy import select, update

from beds.timeutil import utcnow
from exchange.accounts.models import ApiToken
from exchange.accounts.service import PASSWORD_CHECKS, issue_token
from exchange.app import create_app
from exchange.settings import Settings
from exchange.web.throttle import LoginThrottle, MemoryCounters
from tests.conftest import (
    PASSWORD,
    REDIS_URL,
    LiveServer,
    Network,
    log_in_page,
    login_page_session,
    page_socket,
    until_live,
    ws_url,
)

TOKEN_URL = "/api/v1/auth/token"


async def until_closed(ws: Any, within_s: float = 3.0) -> tuple[int, list[str]]:
    """Read a socket until the server closes it; the close code and every message read before."""
    seen: list[str] = []
    async with asyncio.timeout(within_s):
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                seen.append(await ws.recv())
    return closed.value.rcvd.code if closed.value.rcvd else 0, seen


@contextlib.asynccontextmanager
async def page_cookie(server: LiveServer, username: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A logged-in browser on the live server and its session cookie header."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        yield http, await log_in_page(http, username)


def board_socket(server: LiveServer, cookie: str) -> Any:
    return page_socket(server, cookie)


def stream_socket(server: LiveServer, token: str) -> Any:
    return websockets.connect(ws_url(server, "/api/v1/stream"), additional_headers={"Authorization": f"Bearer {token}"})


async def next_pool_event(ws: Any, pool_id: str, within_s: float = 3.0) -> dict:
    async with asyncio.timeout(within_s):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "pool.updated" and message["pool"]["id"] == pool_id:
                return message


# --- 5. Open websockets close with the right to them ----------------------------------------------------------


async def test_revoking_a_token_closes_its_stream_and_no_other(live_server, network: Network, sessionmaker) -> None:
    async with sessionmaker() as session:
        second = await issue_token(session, network["police"].user)
    pool = network.pools["a"]
    async with (
        stream_socket(live_server, network["police"].token) as revoked_ws,
        stream_socket(live_server, second) as kept_ws,
        httpx.AsyncClient(base_url=live_server.url) as http,
    ):
        await until_live(revoked_ws)
        await until_live(kept_ws)
        out = await http.delete(TOKEN_URL, headers=network["police"].headers)
        assert out.status_code == 204
        code, seen = await until_closed(revoked_ws)
        assert code == 4401
        assert not any("session_end" in m or "user_id" in m for m in seen)  # the control event is never sent on
        # The same user's other token keeps its stream.
        adjusted = await http.post(
            f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
        )
        assert adjusted.status_code == 200
        assert (await next_pool_event(kept_ws, pool.id))["pool"]["id"] == pool.id


async def test_disabling_a_user_closes_their_stream_and_board(live_server, network: Network) -> None:
    async with (
        page_cookie(live_server, "worker") as (_, cookie),
        page_cookie(live_server, "admin") as (admin, _),
        stream_socket(live_server, network["worker"].token) as stream,
        board_socket(live_server, cookie) as board,
    ):
        await until_live(stream)
        await until_live(board)
        disabled = await admin.post(
            f"/admin/users/{network['worker'].id}/disable", headers={"x-csrftoken": admin.cookies["csrftoken"]}
        )
        assert disabled.status_code in (200, 303)
        assert (await until_closed(stream))[0] == 4401
        assert (await until_closed(board))[0] == 4401
    # And they cannot come back.
    with pytest.raises((websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus)):
        async with stream_socket(live_server, network["worker"].token) as again:
            await again.recv()


async def test_a_change_of_roles_closes_the_socket_so_it_reconnects_with_the_new_roles(
    live_server, network: Network
) -> None:
    async with (
        page_cookie(live_server, "admin") as (admin, _),
        stream_socket(live_server, network["coordinator"].token) as stream,
    ):
        await until_live(stream)
        changed = await admin.post(
            f"/admin/users/{network['coordinator'].id}/roles",
            data={"roles": "auditor"},
            headers={"x-csrftoken": admin.cookies["csrftoken"]},
        )
        assert changed.status_code in (200, 303)
        assert (await until_closed(stream))[0] == 4401
    async with stream_socket(live_server, network["coordinator"].token) as again:
        assert json.loads(await until_live(again)) == {"type": "ready"}


async def test_logout_closes_the_board_socket_of_that_session_only(live_server, network: Network) -> None:
    pool = network.pools["b"]
    async with (
        page_cookie(live_server, "shelter_b") as (leaving, leaving_cookie),
        page_cookie(live_server, "shelter_b") as (staying, staying_cookie),
        board_socket(live_server, leaving_cookie) as gone,
        board_socket(live_server, staying_cookie) as kept,
    ):
        await until_live(gone)
        await until_live(kept)
        out = await leaving.post("/logout", headers={"x-csrftoken": leaving.cookies["csrftoken"]})
        assert out.status_code in (200, 303)
        assert (await until_closed(gone))[0] == 4401
        await staying.post(
            f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_b"].headers
        )
        async with asyncio.timeout(3):
            html = await kept.recv()
            while f'id="pool-{pool.id}"' not in html:
                html = await kept.recv()


async def test_a_revocation_on_one_process_closes_the_socket_on_another(settings, network: Network) -> None:
    shared = replace(settings, redis_url=os.environ.get("REDIS_URL", REDIS_URL))
    with LiveServer(shared) as server_a, LiveServer(shared) as server_b:
        async with (
            stream_socket(server_b, network["police"].token) as ws,
            httpx.AsyncClient(base_url=server_a.url) as http,
        ):
            await until_live(ws)
            assert (await http.delete(TOKEN_URL, headers=network["police"].headers)).status_code == 204
            assert (await until_closed(ws))[0] == 4401


# --- 6. A password change ends other sessions and every token; tokens expire and show their last use -------


async def test_a_password_change_ends_every_other_session_and_token(client, network: Network) -> None:
    await login_page_session(client, "auditor")
    other_session = client.cookies["session"]
    client.cookies.clear()
    await login_page_session(client, "auditor")
    changed = await client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a brand new password",
            "repeat_password": "a brand new password",
        },
        headers={"x-csrftoken": client.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    # The browser that changed it goes on.
    assert (await client.get("/account")).status_code == 200
    # The other browser gets the login page; the old token gets 401.
    client.cookies.set("session", other_session)
    stale = await client.get("/account", follow_redirects=False)
    assert stale.status_code == 302 and stale.headers["location"].startswith("/login")
    assert (await client.get("/api/v1/facilities", headers=network["auditor"].headers)).status_code == 401


async def test_tokens_expire(client, network: Network, sessionmaker) -> None:
    issued = await client.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})
    headers = {"Authorization": "Bearer " + issued.json()["token"]}
    listed = (await client.get("/api/v1/auth/tokens", headers=headers)).json()
    mine = next(t for t in listed if t["current"])
    lifetime = datetime.fromisoformat(mine["expires_at"]) - utcnow()
    assert timedelta(days=89) < lifetime <= timedelta(days=90)
    async with sessionmaker() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == mine["id"]).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert (await client.get("/api/v1/facilities", headers=headers)).status_code == 401


async def test_the_token_list_shows_when_each_was_last_used(client, network: Network, sessionmaker) -> None:
    async with sessionmaker() as session:
        unused = await issue_token(session, network["police"].user)
    headers = network["police"].headers
    assert (await client.get("/api/v1/facilities", headers=headers)).status_code == 200
    first = {t["id"]: t for t in (await client.get("/api/v1/auth/tokens", headers=headers)).json()}
    current = next(t for t in first.values() if t["current"])
    assert current["last_used_at"] is not None
    async with sessionmaker() as session:
        unused_id = (
            await session.execute(
                select(ApiToken.id).where(ApiToken.id != current["id"], ApiToken.user_id == network["police"].id)
            )
        ).scalar_one()
    assert first[unused_id]["last_used_at"] is None and unused
    # Within the minute, further requests write nothing: the time stays that of the first use.
    again = {t["id"]: t for t in (await client.get("/api/v1/auth/tokens", headers=headers)).json()}
    assert again[current["id"]]["last_used_at"] == current["last_used_at"]
    # The account page lists them too.
    await login_page_session(client, "police")
    page = await client.get("/account")
    assert page.status_code == 200 and 'id="tokens"' in page.text
    assert page.text.count("<tr>") == 1 + 2 and "never" in page.text  # the header, and the two tokens


def test_waits_double_with_each_attempt_up_to_the_cap() -> None:
    limiter = LoginThrottle(MemoryCounters(), free=5, cap_seconds=900)
    assert [limiter.delay(n) for n in (5, 6, 7, 8)] == [2, 4, 8, 16]
    assert limiter.delay(40) == 900


# --- 7. The login throttle: atomic, per pair, counting failures only -------------------------------------------


@contextlib.asynccontextmanager
async def served_app(settings: Settings) -> AsyncIterator[Litestar]:
    """An app of this test's own, started on the test's event loop (the shared app runs on its client's thread:
    requests from other addresses must not drive it from this loop)."""
    app = create_app(settings)
    async with app.lifespan():
        await app.stores.get("login_failures").delete_all()  # Redis keeps counts between runs
        yield app


def from_address(app: Litestar, address: str) -> httpx.AsyncClient:
    """Requests to the started app as if from this address."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local")


async def test_fifty_successful_logins_from_one_address_in_a_minute_all_pass(client, network: Network) -> None:
    statuses = [
        (await client.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})).status_code for _ in range(50)
    ]
    assert statuses == [200] * 50


@pytest.mark.parametrize("counters", ["memory", "redis"])
async def test_eighty_concurrent_wrong_passwords_check_at_most_the_limit(
    settings: Settings, network: Network, counters: str
) -> None:
    if counters == "redis":  # INCR / SET NX, shared by every process
        settings = replace(settings, redis_url=os.environ.get("REDIS_URL", REDIS_URL))
    async with served_app(settings) as served:
        free = served.state.settings.login_failures_free
        ran = PASSWORD_CHECKS.ran
        async with from_address(served, "203.0.113.9") as attacker:
            answers = await asyncio.gather(
                *(attacker.post(TOKEN_URL, json={"username": "police", "password": f"guess {i}"}) for i in range(80))
            )
            assert PASSWORD_CHECKS.ran - ran <= free
            statuses = sorted(a.status_code for a in answers)
            assert statuses.count(401) <= free and set(statuses) == {401, 429}
            # The right password from that address now waits too: it is not checked.
            right = await attacker.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})
        assert right.status_code == 429


@pytest.mark.parametrize("counters", ["memory", "redis"])
async def test_the_owner_logs_in_from_another_address_while_one_is_slowed(
    settings: Settings, network: Network, counters: str
) -> None:
    if counters == "redis":
        settings = replace(settings, redis_url=os.environ.get("REDIS_URL", REDIS_URL))
    async with served_app(settings) as served:
        free = served.state.settings.login_failures_free
        async with from_address(served, "203.0.113.9") as attacker, from_address(served, "198.51.100.7") as owner:
            for _ in range(free):
                assert (
                    await attacker.post(TOKEN_URL, json={"username": "police", "password": "bad"})
                ).status_code == 401
            ran = PASSWORD_CHECKS.ran
            slowed = await attacker.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})
            assert slowed.status_code == 429 and PASSWORD_CHECKS.ran == ran  # refused unchecked
            assert (await owner.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})).status_code == 200


@pytest.mark.parametrize("counters", ["memory", "redis"])
async def test_an_admin_unlocks_an_account(settings: Settings, network: Network, counters: str) -> None:
    if counters == "redis":  # the unlock finds the account's keys by a SCAN of its prefix
        settings = replace(settings, redis_url=os.environ.get("REDIS_URL", REDIS_URL))
    async with served_app(settings) as served:
        free = served.state.settings.login_failures_free
        async with from_address(served, "203.0.113.9") as station, from_address(served, "192.0.2.1") as admin:
            for _ in range(free):
                await station.post(TOKEN_URL, json={"username": "police", "password": "bad"})
            assert (await station.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})).status_code == 429
            await login_page_session(admin, "admin")  # type: ignore[arg-type]
            unlocked = await admin.post(
                f"/admin/users/{network['police'].id}/unlock", headers={"x-csrftoken": admin.cookies["csrftoken"]}
            )
            assert unlocked.status_code in (200, 303)
            assert (await station.post(TOKEN_URL, json={"username": "police", "password": PASSWORD})).status_code == 200


# --- 8. Password checks do not freeze the server ---------------------------------------------------------------


async def test_logins_in_flight_do_not_hold_up_another_request(settings: Settings, network: Network) -> None:
    async with served_app(settings) as served:
        queued = PASSWORD_CHECKS.queued
        async with from_address(served, "192.0.2.44") as crowd, from_address(served, "192.0.2.45") as reader:
            logins = [
                asyncio.create_task(crowd.post(TOKEN_URL, json={"username": f"nobody{i}", "password": "wrong"}))
                for i in range(10)
            ]
            async with asyncio.timeout(10):
                # Every login has reached its password check (a condition in the service, not a sleep for readiness).
                while PASSWORD_CHECKS.queued - queued < 10:  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
            css = await reader.get("/static/app.css")
            finished_before = sum(t.done() for t in logins)
            answers = await asyncio.gather(*logins)
        assert css.status_code == 200
        # With argon2 on the event loop, the static file came only after all ten checks; now it does not wait.
        assert finished_before < 10
        assert [a.status_code for a in answers] == [401] * 10
