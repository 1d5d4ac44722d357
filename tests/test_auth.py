"""Logging in and out, tokens, throttling, CSRF, sessions and role guards."""

from __future__ import annotations

from sqlalchemy import select

from exchange.accounts.models import ApiToken
from exchange.settings import Settings
from tests.conftest import PASSWORD, login_page_session


async def test_token_login_and_wrong_password(client, network) -> None:
    ok = await client.post("/api/v1/auth/token", json={"username": "police", "password": PASSWORD})
    assert ok.status_code == 200
    body = ok.json()
    assert body["token"].startswith("rfx_")
    assert body["user"]["username"] == "police"
    assert body["user"]["roles"] == ["police_planner"]
    wrong = await client.post("/api/v1/auth/token", json={"username": "police", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    unknown = await client.post("/api/v1/auth/token", json={"username": "nobody", "password": "nope"})
    # Same answer for an unknown account, so logins cannot be used to list users.
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]


async def test_malformed_token_request_is_400_not_500(client, network) -> None:
    for body in ({"username": "police"}, {"username": 3, "password": "x"}, {"username": "a", "password": "b", "x": 1}):
        response = await client.post("/api/v1/auth/token", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"] == "invalid_body"
    garbage = await client.post(
        "/api/v1/auth/token", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400


async def test_repeated_failures_are_throttled_per_account(client, network) -> None:
    for _ in range(5):
        assert (
            await client.post("/api/v1/auth/token", json={"username": "auditor", "password": "bad"})
        ).status_code == 401
    locked = await client.post("/api/v1/auth/token", json={"username": "auditor", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["error"] == "rate_limited"
    # Another account is not affected.
    assert (
        await client.post("/api/v1/auth/token", json={"username": "police", "password": PASSWORD})
    ).status_code == 200


async def test_login_attempts_are_rate_limited_per_address(settings: Settings, network) -> None:
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from exchange.app import create_app

    app = create_app(replace(settings, login_attempts_per_minute=3))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        statuses = [
            (await client.post("/api/v1/auth/token", json={"username": f"user{i}", "password": "x"})).status_code
            for i in range(5)
        ]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]


async def test_page_login_sets_safe_session_cookie_and_rotates_the_session_id(client, network) -> None:
    await client.get("/login")
    client.cookies.set("session", "planted-by-an-attacker")
    response = await login_page_session(client, "shelter_a")
    assert response.status_code == 303
    cookie_header = "; ".join(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("session=")
    )
    assert "HttpOnly" in cookie_header
    assert "SameSite=lax" in cookie_header or "SameSite=Lax" in cookie_header
    assert "planted-by-an-attacker" not in cookie_header
    assert (await client.get("/")).status_code == 200


async def test_wrong_page_login_shows_error_without_revealing_accounts(client, network) -> None:
    wrong = await login_page_session(client, "shelter_a", "bad password")
    unknown = await login_page_session(client, "nobody", "bad password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in wrong.text and "Wrong username or password." in unknown.text


async def test_logout_ends_the_session(client, network) -> None:
    await login_page_session(client, "shelter_a")
    assert (await client.get("/")).status_code == 200
    stolen = client.cookies.get("session")
    out = await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]}, follow_redirects=False)
    assert out.status_code == 303
    # Replaying the old session id after logout gets nothing.
    client.cookies.set("session", stolen)
    again = await client.get("/", follow_redirects=False)
    assert again.status_code == 302
    assert again.headers["location"].startswith("/login")


async def test_forms_without_csrf_token_are_refused(client, network) -> None:
    await login_page_session(client, "shelter_a")
    pool_id = network.pools["a"].id
    refused = await client.post(f"/pools/{pool_id}/adjust", data={"occupied_delta": "1"})
    assert refused.status_code == 403
    with_token = await client.post(
        f"/pools/{pool_id}/adjust",
        data={"occupied_delta": "1"},
        headers={"x-csrftoken": client.cookies["csrftoken"], "hx-request": "true"},
    )
    assert with_token.status_code == 200
    login_without_token = await client.post("/login", data={"username": "police", "password": PASSWORD})
    assert login_without_token.status_code == 403


async def test_anonymous_callers_get_401_or_the_login_page(client, network) -> None:
    assert (await client.get("/api/v1/facilities")).status_code == 401
    page = await client.get("/", follow_redirects=False)
    assert page.status_code == 302 and page.headers["location"].startswith("/login")
    bad_token = await client.get("/api/v1/facilities", headers={"Authorization": "Bearer rfx_forged"})
    assert bad_token.status_code == 401


async def test_api_ignores_session_cookies(client, network) -> None:
    """Only bearer tokens drive the API, so another site cannot use a logged-in browser against it."""
    await login_page_session(client, "shelter_a")
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/api/v1/facilities")).status_code == 401


async def test_tokens_are_stored_hashed_and_die_with_a_disabled_user(client, network, sessionmaker) -> None:
    token = network["police"].token
    async with sessionmaker() as session:
        stored = (await session.execute(select(ApiToken.token_hash))).scalars().all()
    assert token not in stored
    assert all(len(h) == 64 for h in stored)
    assert (await client.get("/api/v1/facilities", headers=network["police"].headers)).status_code == 200
    await login_page_session(client, "admin")
    disabled = await client.post(
        f"/admin/users/{network['police'].id}/disable", headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert disabled.status_code in (200, 303)
    assert (await client.get("/api/v1/facilities", headers=network["police"].headers)).status_code == 401


async def test_role_guards(client, network) -> None:
    pool_id = network.pools["a"].id
    for who in ("police", "worker", "approver", "auditor", "admin", "coordinator"):
        response = await client.post(
            f"/api/v1/pools/{pool_id}/adjust", json={"occupied_delta": 1}, headers=network[who].headers
        )
        assert response.status_code == 403, who
        assert response.json()["error"] == "forbidden"
    # Shelter staff of another facility may not touch this pool either.
    other = await client.post(
        f"/api/v1/pools/{pool_id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_b"].headers
    )
    assert other.status_code == 403
    await login_page_session(client, "police")
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 403


async def test_security_headers(client, network) -> None:
    page = await client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"


async def test_oversized_request_is_refused(client, network) -> None:
    response = await client.post(
        "/api/v1/auth/token", content=b"{" + b" " * 2_000_000 + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_a_user_changes_their_password(client, network) -> None:
    await login_page_session(client, "auditor")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    page = await client.get("/account")
    assert page.status_code == 200 and "Change password" in page.text
    old_session = client.cookies.get("session")
    wrong = await client.post(
        "/account/password",
        data={
            "current_password": "not it",
            "new_password": "a brand new password",
            "repeat_password": "a brand new password",
        },
        headers=csrf,
    )
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.text
    short = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "short", "repeat_password": "short"},
        headers=csrf,
    )
    assert short.status_code == 422
    changed = await client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a brand new password",
            "repeat_password": "a brand new password",
        },
        headers=csrf,
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert client.cookies.get("session") != old_session  # a new session id after a credential change
    assert (
        await client.post("/api/v1/auth/token", json={"username": "auditor", "password": PASSWORD})
    ).status_code == 401
    new = await client.post("/api/v1/auth/token", json={"username": "auditor", "password": "a brand new password"})
    assert new.status_code == 200
