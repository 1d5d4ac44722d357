"""Web security beyond tests/test_auth.py: token revocation, session death on disable, no inline scripts
under the CSP, no enumeration, and nothing sensitive in the logs."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.timeutil import utcnow
from exchange.accounts.models import ApiToken
from exchange.accounts.service import set_user_active
from tests.conftest import PASSWORD, Network, login_page_session

ROOT = Path(__file__).resolve().parent.parent


async def test_own_tokens_are_listed_and_revocable_and_die_at_once(client: AsyncTestClient, network: Network) -> None:
    login = await client.post("/api/v1/auth/token", json={"username": "police", "password": PASSWORD})
    phone = {"Authorization": "Bearer " + login.json()["token"]}
    listed = (await client.get("/api/v1/auth/tokens", headers=network["police"].headers)).json()
    assert len(listed) == 2 and sum(t["current"] for t in listed) == 1
    assert all("token" not in t and "token_hash" not in t for t in listed)
    lost = next(t["id"] for t in listed if not t["current"])
    # Another user cannot revoke it (and is not told it exists).
    other = await client.post(
        "/api/v1/auth/token/revoke", json={"token_id": lost}, headers=network["police_other"].headers
    )
    assert other.status_code == 404
    assert (await client.get("/api/v1/facilities", headers=phone)).status_code == 200
    # The laptop revokes the stolen phone's token.
    revoked = await client.post("/api/v1/auth/token/revoke", json={"token_id": lost}, headers=network["police"].headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/facilities", headers=phone)).status_code == 401
    # DELETE logs the current token out.
    assert (await client.delete("/api/v1/auth/token", headers=network["police"].headers)).status_code == 204
    assert (await client.get("/api/v1/facilities", headers=network["police"].headers)).status_code == 401


async def test_tokens_are_stored_only_as_hashes(network: Network, sessionmaker: async_sessionmaker) -> None:
    async with sessionmaker() as session:
        stored = (await session.execute(select(ApiToken.token_hash))).scalars().all()
    for person in network.people.values():
        assert person.token not in stored
        assert all(person.token not in h for h in stored)


async def test_disabling_a_user_ends_their_page_session(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    assert (await login_page_session(client, "shelter_a")).status_code == 303
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    async with sessionmaker() as session:
        await set_user_active(session, network["shelter_a"].id, False)
    page = await client.get("/", follow_redirects=False)
    assert page.status_code in (302, 303) and page.headers["location"].startswith("/login")
    # And they cannot log in again.
    client.cookies.clear()
    assert (await login_page_session(client, "shelter_a")).status_code == 401


async def test_no_inline_script_anywhere_under_the_csp(client: AsyncTestClient, network: Network) -> None:
    csp = (await client.get("/login")).headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {template}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {template}"
        assert "javascript:" not in text, template
    await login_page_session(client, "shelter_a")
    board = await client.get("/")
    assert board.headers["referrer-policy"] and board.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", board.text)


async def test_login_answers_the_same_for_unknown_users_and_wrong_passwords(
    client: AsyncTestClient, network: Network
) -> None:
    unknown = await client.post("/api/v1/auth/token", json={"username": "nobody-here", "password": "x"})
    wrong = await client.post("/api/v1/auth/token", json={"username": "police", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401 and unknown.json() == wrong.json()
    page_unknown = await login_page_session(client, "nobody-here", "x")
    page_wrong = await login_page_session(client, "police", "x")
    assert page_unknown.status_code == page_wrong.status_code == 401
    assert page_unknown.text.replace("nobody-here", "police") == page_wrong.text


async def test_logs_never_carry_passwords_tokens_addresses_or_case_codes(
    own_app_client: AsyncTestClient, network: Network, caplog, capsys
) -> None:
    client = own_app_client  # its routes log for the first time in this test, to the stdout `capsys` reads
    # The level the app runs at (INFO). At DEBUG, aiosqlite logs SQL parameters: never run production at DEBUG.
    caplog.set_level(logging.INFO)
    secret_password = "hunter2-do-not-log"
    await client.post("/api/v1/auth/token", json={"username": "police", "password": secret_password})
    await client.post(f"/login?password={secret_password}", data={"username": "police", "password": secret_password})
    token = network["shelter_a"].token
    await client.get("/api/v1/facilities", headers=network["shelter_a"].headers)
    await client.get(f"/api/v1/facilities/{network.facilities['a'].id}", headers=network["shelter_a"].headers)
    case_code = (await client.post("/api/v1/cases", json={}, headers=network["worker"].headers)).json()["code"]
    expires = (utcnow() + timedelta(hours=2)).isoformat()
    await client.post(
        "/api/v1/holds",
        json={"pool_id": network.pools["b"].id, "beds": 1, "case_code": case_code, "expires_at": expires},
        headers=network["worker"].headers,
    )
    await client.get(f"/api/v1/holds?case={case_code}", headers=network["worker"].headers)
    await client.get("/api/v1/facilities", headers={"Authorization": "Bearer rfx_forged-token-value"})
    # The app's records (the test client's own httpx logger prints the URL it sent, so it is left out).
    app_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in app_records)
    out = capsys.readouterr()
    logged += out.out + out.err
    assert "HTTP Response" in logged or "status_code" in logged or "HTTP Request" in logged  # logging did run
    for secret in (secret_password, token, "rfx_forged-token-value", network.facilities["a"].address, case_code):
        assert secret not in logged, f"{secret!r} appears in the logs"
