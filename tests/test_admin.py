"""The network admin manages organisations, users and facilities, and never reads a confidential address."""

from __future__ import annotations

from sqlalchemy import select

from beds.models import BedPool, Facility
from exchange.accounts.models import Organisation, User
from tests.conftest import login_page_session


async def test_admin_creates_organisation_user_facility_and_pool(client, network, sessionmaker) -> None:
    await login_page_session(client, "admin")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    page = await client.get("/admin/")
    assert page.status_code == 200 and "Maison Alpha" in page.text
    assert "123 rue Secrète" not in page.text
    r = await client.post(
        "/admin/organisations", data={"name": "Maison Nouvelle", "kind": "shelter", "province": "QC"}, headers=csrf
    )
    assert r.status_code in (200, 303)
    async with sessionmaker() as session:
        org = (await session.execute(select(Organisation).where(Organisation.name == "Maison Nouvelle"))).scalar_one()
    r = await client.post(
        "/admin/users",
        data={
            "username": "nouvelle",
            "password": "a long enough password",
            "organisation_id": org.id,
            "roles": "shelter_staff",
        },
        headers=csrf,
    )
    assert r.status_code in (200, 303)
    weak = await client.post(
        "/admin/users",
        data={"username": "weak", "password": "short", "organisation_id": org.id, "roles": "shelter_staff"},
        headers=csrf,
    )
    assert weak.status_code == 422
    duplicate = await client.post(
        "/admin/users",
        data={
            "username": "nouvelle",
            "password": "a long enough password",
            "organisation_id": org.id,
            "roles": "shelter_staff",
        },
        headers=csrf,
    )
    assert duplicate.status_code == 422
    r = await client.post(
        "/admin/facilities",
        data={
            "organisation_id": org.id,
            "name": "Nouvelle",
            "kind": "youth",
            "province": "QC",
            "city": "Laval",
            "address": "1 rue Cachée",
            "accepts_trafficking": "true",
        },
        headers=csrf,
    )
    assert r.status_code in (200, 303)
    bad_province = await client.post(
        "/admin/facilities",
        data={"organisation_id": org.id, "name": "X", "kind": "youth", "province": "ZZ", "city": "Laval"},
        headers=csrf,
    )
    assert bad_province.status_code == 422
    async with sessionmaker() as session:
        facility = (await session.execute(select(Facility).where(Facility.name == "Nouvelle"))).scalar_one()
        user = (await session.execute(select(User).where(User.username == "nouvelle"))).scalar_one()
    # The role waits for a second person (tests/test_trust_admin_grants.py): the account starts without it.
    assert user.roles == [] and user.password_hash.startswith("$argon2")
    assert facility.active and facility.accepts_trafficking and facility.address == "1 rue Cachée"
    r = await client.post(
        f"/admin/facilities/{facility.id}/pools", data={"profile": "youth", "capacity": "6"}, headers=csrf
    )
    assert r.status_code in (200, 303)
    async with sessionmaker() as session:
        pools = (await session.execute(select(BedPool).where(BedPool.facility_id == facility.id))).scalars().all()
    assert [(p.profile, p.capacity) for p in pools] == [("youth", 6)]


async def test_admin_edits_a_facility_without_reading_its_address(client, network, sessionmaker) -> None:
    facility = network.facilities["a"]
    await login_page_session(client, "admin")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    form = await client.get(f"/admin/facilities/{facility.id}")
    assert form.status_code == 200
    assert "123 rue Secrète" not in form.text and "+1-555-000-1111" not in form.text
    r = await client.post(
        f"/admin/facilities/{facility.id}",
        data={
            "name": "Maison Alpha",
            "kind": "trafficking_shelter",
            "province": "QC",
            "city": "Montréal",
            "security_level": "high",
            "accepts_trafficking": "true",
            "active": "true",
        },
        headers=csrf,
    )
    assert r.status_code in (200, 303)
    async with sessionmaker() as session:
        saved = await session.get(Facility, facility.id)
    assert saved.kind == "trafficking_shelter" and saved.security_level == "high"
    assert saved.address == "123 rue Secrète"  # kept: the admin never had to see it


async def test_only_admins_reach_admin_pages(client, network) -> None:
    for who in ("shelter_a", "police", "worker", "approver", "auditor", "coordinator"):
        await login_page_session(client, who)
        assert (await client.get("/admin/", follow_redirects=False)).status_code == 403, who
        csrf = {"x-csrftoken": client.cookies["csrftoken"]}
        r = await client.post("/admin/organisations", data={"name": "Evil", "kind": "police"}, headers=csrf)
        assert r.status_code == 403, who
        await client.post("/logout", headers=csrf)


async def test_admin_changes_roles_and_they_apply_once_a_second_admin_approves(client, network, sessionmaker) -> None:
    from exchange.accounts.models import Role, RoleGrant, User

    # worker_plain is a case worker: the approvers' fund route refuses its role.
    before = await client.get("/api/v1/funds/nope", headers=network["worker_plain"].headers)
    assert before.status_code == 403
    await login_page_session(client, "admin")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    user_id = network["worker_plain"].id
    saved = await client.post(
        f"/admin/users/{user_id}/roles",
        data={"roles": ["case_worker", "fund_approver"], "lead_worker": "true"},
        headers=csrf,
    )
    assert saved.status_code in (200, 303)
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user.roles == ["case_worker"] and user.lead_worker is False  # the additions wait
        second = User(
            username="admin2",
            password_hash=user.password_hash,
            organisation_id=network["admin"].user.organisation_id,
            roles=[Role.NETWORK_ADMIN.value],
        )
        session.add(second)
        grant = (await session.execute(select(RoleGrant).where(RoleGrant.user_id == user_id))).scalar_one()
        await session.commit()
    await client.post("/logout", headers=csrf)
    await login_page_session(client, "admin2")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    approved = await client.post(f"/admin/grants/{grant.id}/approve", data={"next": "/admin"}, headers=csrf)
    assert approved.status_code in (200, 303)
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
    assert user.roles == ["case_worker", "fund_approver"] and user.lead_worker is True
    await client.post("/logout", headers=csrf)
    await login_page_session(client, "admin")
    csrf = {"x-csrftoken": client.cookies["csrftoken"]}
    bad = await client.post(f"/admin/users/{user_id}/roles", data={"roles": "emperor"}, headers=csrf)
    assert bad.status_code == 422
    own = await client.post(f"/admin/users/{network['admin'].id}/roles", data={"roles": "auditor"}, headers=csrf)
    assert own.status_code == 422 and own.text.count("own network admin role") >= 1
    missing = await client.post("/admin/users/nobody/roles", data={"roles": "auditor"}, headers=csrf)
    assert missing.status_code == 404
    # Roles are read on every request: the same token now passes the approvers' guard (404: no such fund,
    # instead of 403: not your role).
    fund = await client.get("/api/v1/funds/nope", headers=network["worker_plain"].headers)
    assert fund.status_code == 404
