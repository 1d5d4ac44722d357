"""Issue 9, points 3 and 10, the last open chain: one network admin alone cannot give an account power over
money or over a confidential address. Every role it gives (but auditor in its own organisation) waits in a
pending grant until a second person approves it; until then the account works without it. And a case can be
closed: a closed case takes no new hold and no new fund request.

Everything runs through the app and a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.errors import Conflict
from beds.timeutil import utcnow
from exchange.accounts.models import GrantState, Role, RoleGrant, User
from exchange.accounts.service import issue_token
from exchange.admin import grants
from ledger.anchor_models import NetworkEvent
from ledger.verify import verify_network
from tests.conftest import PASSWORD_HASH, LiveServer, Network, Person, login_page_session
from tests.test_browser import (
    Cast,
    fixture_browser,  # noqa: F401  (fixture)
    fixture_cast,  # noqa: F401  (fixture)
)
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)

NEW_PASSWORD = "chosen by the admin alone"


@pytest.fixture(name="admin2")
async def fixture_admin2(sessionmaker: async_sessionmaker, network: Network) -> Person:
    """A second network admin of the coalition: a second person for every grant."""
    async with sessionmaker() as session:
        user = User(
            username="admin2",
            display_name="Admin Two",
            password_hash=PASSWORD_HASH,
            organisation_id=network.orgs["coalition"].id,
            roles=[Role.NETWORK_ADMIN.value],
        )
        session.add(user)
        await session.commit()
        person = Person(user)
        person.token = await issue_token(session, user)
    return person


async def admin_creates(
    client: AsyncTestClient,
    sessionmaker: async_sessionmaker,
    username: str,
    organisation_id: str,
    roles: list[str],
    *,
    lead_worker: bool = False,
) -> tuple[User, dict[str, str]]:
    """The admin's page creates the account with a password it chose; the account logs in with it."""
    await login_page_session(client, "admin")
    form: dict[str, Any] = {
        "username": username,
        "password": NEW_PASSWORD,
        "organisation_id": organisation_id,
        "roles": roles,
    }
    if lead_worker:
        form["lead_worker"] = "true"
    made = await client.post(
        "/admin/users", data=form, headers={"x-csrftoken": client.cookies["csrftoken"]}, follow_redirects=False
    )
    assert made.status_code == 303, made.text
    assert "grant_requested" in made.headers["location"]
    token = await client.post("/api/v1/auth/token", json={"username": username, "password": NEW_PASSWORD})
    assert token.status_code == 200, token.text
    async with sessionmaker() as session:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one()
    return user, {"Authorization": f"Bearer {token.json()['token']}"}


async def grant_of(sessionmaker: async_sessionmaker, user_id: str) -> RoleGrant:
    async with sessionmaker() as session:
        return (
            await session.execute(
                select(RoleGrant).where(RoleGrant.user_id == user_id, RoleGrant.state == GrantState.PENDING.value)
            )
        ).scalar_one()


async def roles_of(sessionmaker: async_sessionmaker, user_id: str) -> tuple[list[str], bool]:
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.roles, user.lead_worker


async def decide(client: AsyncTestClient, grant_id: str, headers: dict[str, str], how: str = "approve") -> Any:
    return await client.post(
        f"/api/v1/admin/grants/{grant_id}/{how}", headers={**headers, "Idempotency-Key": f"{how}-{grant_id}"}
    )


# --- the admin alone gets nothing working -------------------------------------------------------------------


async def test_the_admin_alone_cannot_give_a_working_case_worker_approver_or_shelter_staff(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker, fund_id: str
) -> None:
    orgs = network.orgs
    worker, worker_h = await admin_creates(
        client, sessionmaker, "x_worker", orgs["community"].id, ["case_worker"], lead_worker=True
    )
    approver, approver_h = await admin_creates(client, sessionmaker, "x_approver", orgs["police"].id, ["fund_approver"])
    staff, staff_h = await admin_creates(client, sessionmaker, "x_staff", orgs["shelter_a"].id, ["shelter_staff"])
    for user in (worker, approver, staff):
        assert await roles_of(sessionmaker, user.id) == ([], False)
    # Guards, visibility and the API see each account without the role it was given.
    assert (await client.post("/api/v1/cases", json={}, headers=worker_h)).status_code == 403
    assert (await client.get(f"/api/v1/funds/{fund_id}", headers=approver_h)).status_code == 403
    facility = await client.get(f"/api/v1/facilities/{network.facilities['a'].id}", headers=staff_h)
    assert facility.status_code == 200 and "address" not in facility.json()
    assert "123 rue Secrète" not in facility.text
    pool = network.pools["a"].id
    assert (
        await client.post(f"/api/v1/pools/{pool}/adjust", json={"occupied_delta": 1}, headers=staff_h)
    ).status_code == 403
    # The admin approving its own request: refused, with a code that says why.
    grant = await grant_of(sessionmaker, worker.id)
    assert grant.roles == ["case_worker"] and grant.lead_worker and grant.requested_by_user_id == network["admin"].id
    own = await decide(client, grant.id, network["admin"].headers)
    assert own.status_code == 403 and own.json()["error"] == "own_grant_request"
    assert await roles_of(sessionmaker, worker.id) == ([], False)
    # A fund approver of the admin's own organisation is no second person for a fund role (as for rule sets).
    same_org = await decide(client, grant.id, network["approver"].headers)
    assert same_org.status_code == 403 and same_org.json()["error"] == "not_eligible"
    # Staff of another shelter cannot give shelter A's staff role.
    staff_grant = await grant_of(sessionmaker, staff.id)
    other_shelter = await decide(client, staff_grant.id, network["shelter_b"].headers)
    assert other_shelter.status_code == 403 and other_shelter.json()["error"] == "not_eligible"
    # The account itself, whatever it holds, never approves its own grant.
    await login_page_session(client, "admin")
    more = await client.post(
        f"/admin/users/{network['shelter_a'].id}/roles",
        data={"roles": ["shelter_staff", "fund_approver"]},
        headers={"x-csrftoken": client.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert more.status_code == 303 and "grant_requested" in more.headers["location"]
    self_grant = await grant_of(sessionmaker, network["shelter_a"].id)
    itself = await decide(client, self_grant.id, network["shelter_a"].headers)
    assert itself.status_code == 403 and itself.json()["error"] == "own_grant"
    assert await roles_of(sessionmaker, network["shelter_a"].id) == (["shelter_staff"], False)
    # Nothing was decided: four grants wait, every one listed for the admin with who asked.
    listed = await client.get("/api/v1/admin/grants", headers=network["admin"].headers)
    assert listed.status_code == 200
    assert {g["user_id"] for g in listed.json()} == {worker.id, approver.id, staff.id, network["shelter_a"].id}
    assert all(not g["may_decide"] and g["requested_by_user_id"] == network["admin"].id for g in listed.json())


async def test_the_drain_chain_fails_end_to_end(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker, fund_id: str
) -> None:
    """The attack of the issue: a lead case worker and two approvers in two other organisations, all made by
    the admin with passwords it chose. None of them can request, approve or record a payment."""
    orgs = network.orgs
    _, worker_h = await admin_creates(
        client, sessionmaker, "d_worker", orgs["community"].id, ["case_worker"], lead_worker=True
    )
    _, first_h = await admin_creates(client, sessionmaker, "d_first", orgs["police"].id, ["fund_approver"])
    _, second_h = await admin_creates(client, sessionmaker, "d_second", orgs["shelter_b"].id, ["fund_approver"])
    # The made-up case worker cannot open a case nor use another's.
    assert (await client.post("/api/v1/cases", json={}, headers=worker_h)).status_code == 403
    code = await new_case(client, network["worker"])
    body = {"fund_id": fund_id, "case_code": code, "category": "hotel", "amount_cents": 45_000, "nights": 3}
    drained = await client.post(
        "/api/v1/disbursements", json={**body, "currency": "CAD", "payee": "Hotel"}, headers=worker_h
    )
    assert drained.status_code == 403
    # A real request waiting for two approvals: the admin's approvers can neither approve nor pay it.
    real = await request_disbursement(
        client, network["worker"], fund_id, code, category="hotel", amount_cents=45_000, nights=3, payee="Hotel"
    )
    assert real.status_code == 201 and real.json()["status"] == "pending_approval", real.text
    d = real.json()["id"]
    for headers in (first_h, second_h):
        assert (await client.post(f"/api/v1/disbursements/{d}/approve", headers=headers)).status_code == 403
        paid = await client.post(f"/api/v1/disbursements/{d}/pay", json={"method": "manual"}, headers=headers)
        assert paid.status_code == 403
    after = await client.get(f"/api/v1/disbursements/{d}", headers=network["worker"].headers)
    assert after.json()["status"] == "pending_approval"
    # And the admin cannot approve any of the three grants itself.
    for g in (await client.get("/api/v1/admin/grants", headers=network["admin"].headers)).json():
        assert (await decide(client, g["id"], network["admin"].headers)).json()["error"] == "own_grant_request"


async def test_the_address_chain_fails_until_someone_of_the_shelter_approves(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    staff, staff_h = await admin_creates(
        client, sessionmaker, "a_staff", network.orgs["shelter_a"].id, ["shelter_staff"]
    )
    url = f"/api/v1/facilities/{network.facilities['a'].id}"
    assert "address" not in (await client.get(url, headers=staff_h)).json()
    grant = await grant_of(sessionmaker, staff.id)
    # Shelter A's own staff is a second person for its staff role, and sees it on its approvals page.
    await login_page_session(client, "shelter_a")
    page = await client.get("/admin/grants/")
    assert page.status_code == 200 and "a_staff" in page.text and "Shelter staff" in page.text
    approved = await decide(client, grant.id, network["shelter_a"].headers)
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert approved.json()["decided_by_user_id"] == network["shelter_a"].id
    seen = await client.get(url, headers=staff_h)
    assert seen.json()["address"] == "123 rue Secrète"


# --- a second person makes it work, audited -------------------------------------------------------------------


async def test_a_second_admin_approves_and_the_approval_is_in_the_network_audit(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker, fund_id: str, admin2: Person
) -> None:
    worker, worker_h = await admin_creates(
        client, sessionmaker, "ok_worker", network.orgs["community"].id, ["case_worker"], lead_worker=True
    )
    grant = await grant_of(sessionmaker, worker.id)
    listed = (await client.get("/api/v1/admin/grants", headers=admin2.headers)).json()
    assert [(g["id"], g["may_decide"]) for g in listed] == [(grant.id, True)]
    approved = await decide(client, grant.id, admin2.headers)
    assert approved.status_code == 200, approved.text
    assert await roles_of(sessionmaker, worker.id) == (["case_worker"], True)
    # The same approval again answers the decided grant (acts once); anyone else is told it was decided.
    again = await decide(client, grant.id, admin2.headers)
    assert again.status_code == 200 and again.json()["decided_at"] == approved.json()["decided_at"]
    late = await decide(client, grant.id, network["approver_community"].headers, "refuse")
    assert late.status_code == 409 and late.json()["error"] == "grant_decided"
    # Now it works: the lead worker's fast path.
    code = await new_case(client, Person(worker, worker_h["Authorization"].removeprefix("Bearer ")))
    fast = await client.post(
        "/api/v1/disbursements",
        json={
            "fund_id": fund_id,
            "case_code": code,
            "category": "calling_card",
            "amount_cents": 2_500,
            "currency": "CAD",
            "payee": "Bell",
        },
        headers=worker_h,
    )
    assert fast.status_code == 201 and fast.json()["status"] == "approved", fast.text
    async with sessionmaker() as session:
        events = list((await session.execute(select(NetworkEvent).order_by(NetworkEvent.seq))).scalars())
        assert (await verify_network(session)).ok
    added, decided = events[0], events[-1]
    assert added.action == "user_added" and added.detail["grant"] == grant.id and added.detail["granted"] == []
    assert decided.action == "role_grant_approved" and decided.actor_user_id == admin2.id
    assert decided.detail == {
        "grant": grant.id,
        "user": worker.id,
        "roles": ["case_worker"],
        "lead_worker": True,
        "requested_by": network["admin"].id,
    }


async def test_a_fund_approver_of_another_organisation_approves_a_fund_role_and_a_refusal_gives_nothing(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    first, _ = await admin_creates(client, sessionmaker, "f_one", network.orgs["police"].id, ["fund_approver"])
    second, _ = await admin_creates(client, sessionmaker, "f_two", network.orgs["police"].id, ["fund_approver"])
    g1, g2 = await grant_of(sessionmaker, first.id), await grant_of(sessionmaker, second.id)
    assert (await decide(client, g1.id, network["approver_community"].headers)).status_code == 200
    refused = await decide(client, g2.id, network["approver_community"].headers, "refuse")
    assert refused.status_code == 200 and refused.json()["state"] == "refused"
    assert await roles_of(sessionmaker, first.id) == (["fund_approver"], False)
    assert await roles_of(sessionmaker, second.id) == ([], False)
    async with sessionmaker() as session:
        last = (await session.execute(select(NetworkEvent).order_by(NetworkEvent.seq.desc()).limit(1))).scalar_one()
    assert last.action == "role_grant_refused" and last.actor_user_id == network["approver_community"].id


async def test_an_account_the_admin_had_approved_is_not_a_second_person_for_that_admin(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """Found by an insider run against the demo: one genuine approval of an account the admin controls (a fund
    approver in another organisation) made that account the admin's second person for everything after, the
    admin's own fund role and a new lead case worker included, and the fund was drained."""
    puppet, puppet_headers = await admin_creates(
        client, sessionmaker, "puppet", network.orgs["police"].id, ["fund_approver"]
    )
    genuine = await decide(client, (await grant_of(sessionmaker, puppet.id)).id, network["approver_community"].headers)
    assert genuine.status_code == 200 and await roles_of(sessionmaker, puppet.id) == (["fund_approver"], False)
    worker, _ = await admin_creates(
        client, sessionmaker, "drainer", network.orgs["shelter_b"].id, ["case_worker"], lead_worker=True
    )
    await login_page_session(client, "admin")
    admin_id = network["admin"].id
    selfish = await client.post(
        f"/admin/users/{admin_id}/roles",
        data={"roles": ["network_admin", "fund_approver"]},
        headers={"x-csrftoken": client.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert "grant_requested" in selfish.headers["location"]
    for user_id in (worker.id, admin_id):
        refused = await decide(client, (await grant_of(sessionmaker, user_id)).id, puppet_headers)
        assert refused.status_code == 403 and refused.json()["error"] == "not_independent", refused.text
    assert await roles_of(sessionmaker, worker.id) == ([], False)
    assert "fund_approver" not in (await roles_of(sessionmaker, admin_id))[0]
    # The puppet's list does not offer what it may not decide; a genuine approver still decides.
    listed = await client.get("/api/v1/admin/grants", headers=puppet_headers)
    assert listed.status_code == 200 and listed.json() == [], listed.text
    fair = await decide(client, (await grant_of(sessionmaker, worker.id)).id, network["approver_community"].headers)
    assert fair.status_code == 200


async def test_taking_roles_away_applies_at_once_and_a_new_lead_worker_waits(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker, admin2: Person
) -> None:
    await login_page_session(client, "admin")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    dual = network["dual"].id
    saved = await client.post(
        f"/admin/users/{dual}/roles", data={"roles": "fund_approver"}, headers=csrf, follow_redirects=False
    )
    assert saved.status_code == 303 and "roles_saved" in saved.headers["location"]
    assert await roles_of(sessionmaker, dual) == (["fund_approver"], False)
    plain = network["worker_plain"].id
    lead = await client.post(
        f"/admin/users/{plain}/roles",
        data={"roles": "case_worker", "lead_worker": "true"},
        headers=csrf,
        follow_redirects=False,
    )
    assert "grant_requested" in lead.headers["location"]
    assert await roles_of(sessionmaker, plain) == (["case_worker"], False)
    first = await grant_of(sessionmaker, plain)
    assert first.roles == [] and first.lead_worker
    # Saving the same roles again (the page shows waiting roles ticked) keeps the waiting grant.
    await client.post(
        f"/admin/users/{plain}/roles",
        data={"roles": "case_worker", "lead_worker": "true"},
        headers=csrf,
        follow_redirects=False,
    )
    assert (await grant_of(sessionmaker, plain)).id == first.id
    # A newer change replaces the waiting one: approving the old one is a conflict.
    await client.post(
        f"/admin/users/{plain}/roles", data={"roles": ["case_worker", "auditor"]}, headers=csrf, follow_redirects=False
    )
    stale = await decide(client, first.id, admin2.headers)
    assert stale.status_code == 409 and stale.json()["error"] == "grant_decided"
    # Auditor waits too outside the admin's own organisation; inside it, it is given at once.
    assert await roles_of(sessionmaker, plain) == (["case_worker"], False)
    coordinator = network["coordinator"].id
    await client.post(f"/admin/users/{coordinator}/roles", data={"roles": "auditor"}, headers=csrf)
    assert await roles_of(sessionmaker, coordinator) == (["auditor"], False)


# --- the pages ------------------------------------------------------------------------------------------------


async def test_the_admin_page_lists_waiting_grants_with_who_asked_and_a_second_admin_confirms_there(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker, admin2: Person
) -> None:
    staff, _ = await admin_creates(client, sessionmaker, "p_staff", network.orgs["shelter_b"].id, ["shelter_staff"])
    grant = await grant_of(sessionmaker, staff.id)
    page = await client.get("/admin/")
    assert page.status_code == 200
    assert "Roles waiting for a second person" in page.text and "p_staff" in page.text
    assert "You asked: another person decides." in page.text
    # Roles read as words, never as codes.
    assert "shelter_staff" not in page.text.replace('value="shelter_staff"', "")
    assert "Shelter staff" in page.text and "Fund approver" in page.text
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await login_page_session(client, "admin2")
    page = await client.get("/admin/")
    assert f'action="/admin/grants/{grant.id}/approve"' in page.text and "Yes, approve" in page.text
    done = await client.post(
        f"/admin/grants/{grant.id}/approve",
        data={"next": "/admin"},
        headers={"x-csrftoken": client.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/admin?notice=grant_approved")
    assert await roles_of(sessionmaker, staff.id) == (["shelter_staff"], False)
    french = await client.post(
        "/settings/locale", data={"locale": "fr"}, headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert french.status_code in (200, 303)
    assert "Personnel de refuge" in (await client.get("/admin/")).text


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_a_shelter_worker_approves_a_new_colleague_on_a_phone_after_saying_yes(
    cast: Cast, live_server: LiveServer, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """In a real browser at 390 px: Approve opens an "Are you sure?" with a second button; only that acts."""
    async with sessionmaker() as session:
        admin = await session.get(User, network["admin"].id)
        colleague = User(
            username="new_colleague",
            password_hash=PASSWORD_HASH,
            organisation_id=network.orgs["shelter_a"].id,
            roles=[],
        )
        session.add(colleague)
        await session.flush()
        assert admin is not None
        change = grants.split(
            ["shelter_staff"], False, organisation_id=colleague.organisation_id, admin_org_id=admin.organisation_id
        )
        await grants.request_grant(session, colleague, change, requested_by=admin)
        await session.commit()
        colleague_id = colleague.id
    staff = await cast.login("shelter_a", **PHONE)
    page = staff.page
    await page.get_by_role("link", name="Role approvals").first.click()
    row = page.locator("table.grants tr", has_text="new_colleague")
    await expect(row).to_contain_text("Shelter staff")
    await expect(row).to_contain_text("admin")
    yes = row.get_by_role("button", name="Yes, approve")
    await expect(yes).to_be_hidden()
    await row.get_by_text("Approve", exact=True).click()
    await expect(row).to_contain_text("Are you sure?")
    assert await roles_of(sessionmaker, colleague_id) == ([], False)  # opening the question changed nothing
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the approvals page is {width} px wide on a 390 px phone"
    await staff.shot("admin_grants_1_confirm_phone")
    await yes.click()
    await expect(page.get_by_text("Approved: the account holds these roles now.")).to_be_visible()
    await expect(page.get_by_text("No role grant is waiting.")).to_be_visible()
    assert await roles_of(sessionmaker, colleague_id) == (["shelter_staff"], False)
    cast.assert_no_errors()


# --- two people deciding at once --------------------------------------------------------------------------


async def test_two_people_deciding_one_grant_at_once_one_wins(
    network: Network, sessionmaker: async_sessionmaker, admin2: Person
) -> None:
    async with sessionmaker() as session:
        user = await session.get(User, network["worker_plain"].id)
        admin = await session.get(User, network["admin"].id)
        assert user is not None and admin is not None
        change = grants.split(
            ["shelter_staff"], False, organisation_id=user.organisation_id, admin_org_id=admin.organisation_id
        )
        grant = await grants.request_grant(session, user, change, requested_by=admin)
        assert grant is not None
        await session.commit()
        grant_id = grant.id

    async def one(approver: User, approve: bool) -> str:
        async with sessionmaker() as session:
            try:
                return (await grants.decide(session, grant_id, approver, approve=approve)).state
            except Conflict as exc:
                return exc.code

    results = await asyncio.gather(one(admin2.user, True), one(admin2.user, False))
    assert sorted(results) in (["approved", "grant_decided"], ["grant_decided", "refused"]), results
    async with sessionmaker() as session:
        stored = await session.get(RoleGrant, grant_id)
        user = await session.get(User, network["worker_plain"].id)
        events = list(
            (
                await session.execute(select(NetworkEvent).where(NetworkEvent.action.like("role_grant_%")))  # type: ignore[attr-defined]
            ).scalars()
        )
    assert stored is not None and len(events) == 1
    assert ("shelter_staff" in user.roles) == (stored.state == "approved")


# --- cases close ----------------------------------------------------------------------------------------------


async def test_a_closed_case_takes_no_new_hold_and_no_new_fund_request(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    # Another organisation's case worker does not even see it.
    assert (await client.post(f"/api/v1/cases/{code}/close", headers=network["police"].headers)).status_code == 403
    closed = await client.post(f"/api/v1/cases/{code}/close", headers={**worker.headers, "Idempotency-Key": "c1"})
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    again = await client.post(f"/api/v1/cases/{code}/close", headers=network["worker_plain"].headers)
    assert again.status_code == 200 and again.json()["closed_at"] == closed.json()["closed_at"]
    missing = await client.post("/api/v1/cases/C-XXXX-XX/close", headers=worker.headers)
    assert missing.status_code == 404
    expires = (utcnow() + timedelta(hours=2)).isoformat()
    hold = await client.post(
        "/api/v1/holds",
        json={"pool_id": network.pools["b"].id, "beds": 1, "case_code": code, "expires_at": expires},
        headers=worker.headers,
    )
    assert hold.status_code == 404 and hold.json()["error"] == "case_not_found"
    request = await request_disbursement(client, worker, fund_id, code)
    assert request.status_code == 409 and request.json()["error"] == "case_closed"
    # An open case of the same organisation still works.
    fresh = await new_case(client, worker)
    assert (await request_disbursement(client, worker, fund_id, fresh)).status_code == 201
