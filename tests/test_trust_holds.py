"""Issue 9, points 1 and 2 (and the agreement and operation parts of 13 and 14): no hoarding of beds, no
address without the shelter, one agreement per pool and partner, idempotent operations.

The concurrency tests run real concurrent requests: on PostgreSQL (TEST_DATABASE_URL) they prove the locks
and unique indexes; on SQLite they pass by BEGIN IMMEDIATE's serialisation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from sqlalchemy import func, select, update

from beds import holds as hold_ops
from beds.holds_models import ACTIVE_STATUSES, Agreement, Hold, HoldIncident
from beds.models import BedPool, PoolChange, Profile
from ledger.cases import create_case
from tests.conftest import eventually, login_page_session


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@contextmanager
def limits(app: Litestar, **values: int) -> Iterator[None]:
    """The app's settings with other hold limits for the length of one test (the request reads them anew)."""
    before = app.state.settings
    app.state.settings = replace(before, **values)
    try:
        yield
    finally:
        app.state.settings = before


async def big_pool(sessionmaker: Any, network: Any, capacity: int = 100, facility: str = "a") -> str:
    async with sessionmaker() as session:
        pool = BedPool(facility_id=network.facilities[facility].id, profile=Profile.WOMEN, capacity=capacity)
        session.add(pool)
        await session.commit()
        return pool.id


async def new_case(sessionmaker: Any, network: Any, who: str = "worker") -> str:
    """A real case of the person's organisation, straight from the ledger (the API caps new cases a day)."""
    person = network[who]
    async with sessionmaker() as session:
        case = await create_case(session, lead_org_id=person.user.organisation_id, created_by_user_id=person.id)
        return case.code


async def operation(client: Any, network: Any, who: str = "police") -> str:
    body = {
        "code_name": "HERON",
        "province": "QC",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "women", "count": 2}],
    }
    response = await client.post("/api/v1/operations", json=body, headers=network[who].headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def case_hold(
    client: Any, sessionmaker: Any, network: Any, pool_id: str, beds: int, who: str = "worker", **extra: Any
) -> Any:
    code = extra.pop("case_code", None) or await new_case(sessionmaker, network, who)
    body = {"pool_id": pool_id, "beds": beds, "case_code": code, "expires_at": later(days=13, hours=23), **extra}
    return await client.post("/api/v1/holds", json=body, headers=network[who].headers)


async def held(sessionmaker: Any, pool_id: str) -> int:
    async with sessionmaker() as session:
        pool = await session.get(BedPool, pool_id)
        assert pool is not None
        return pool.held


async def address_of(client: Any, network: Any, who: str, facility: str = "a") -> str | None:
    response = await client.get(f"/api/v1/facilities/{network.facilities[facility].id}", headers=network[who].headers)
    assert response.status_code == 200, response.text
    return response.json().get("address")


# --- 1. a hold is for a real case or operation of the caller's organisation ----------------------------------


async def test_a_made_up_or_foreign_case_code_holds_nothing(client, network, sessionmaker) -> None:
    pool_id = network.pools["a"].id
    made_up = await case_hold(client, sessionmaker, network, pool_id, 6, case_code="ZZZ")
    assert made_up.status_code == 404 and made_up.json()["error"] == "case_not_found", made_up.text
    # A real case, but led by another organisation.
    async with sessionmaker() as session:
        foreign = await create_case(
            session, lead_org_id=network.orgs["shelter_b"].id, created_by_user_id=network["shelter_b"].id
        )
        foreign_code = foreign.code
    other = await case_hold(client, sessionmaker, network, pool_id, 1, case_code=foreign_code)
    assert other.status_code == 404 and other.json()["error"] == "case_not_found"
    assert await held(sessionmaker, pool_id) == 0
    # The organisation's own case: held, under the case's own code (lower case is read as the code).
    code = await new_case(sessionmaker, network)
    ok = await case_hold(client, sessionmaker, network, pool_id, 1, case_code=code.lower())
    assert ok.status_code == 201, ok.text
    assert ok.json()["case_code"] == code


async def test_police_holds_belong_to_an_operation_of_their_own_service(client, network, sessionmaker) -> None:
    pool_id = network.pools["a"].id
    # A police planner cannot hold under a case code, real or not.
    code = await new_case(sessionmaker, network)
    by_case = await client.post(
        "/api/v1/holds",
        json={"pool_id": pool_id, "beds": 1, "case_code": code, "expires_at": later(hours=2)},
        headers=network["police"].headers,
    )
    assert by_case.status_code == 422 and by_case.json()["error"] == "invalid_purpose"
    foreign_op = await operation(client, network, "police_other")
    by_other_op = await client.post(
        "/api/v1/holds",
        json={"pool_id": pool_id, "beds": 1, "operation_id": foreign_op, "expires_at": later(hours=2)},
        headers=network["police"].headers,
    )
    assert by_other_op.status_code == 404
    assert await held(sessionmaker, pool_id) == 0


# --- 1. limits on requested beds, per requester and per organisation ------------------------------------------


async def test_requested_beds_are_capped_per_requester_and_per_organisation(app, client, network, sessionmaker) -> None:
    pool_id = await big_pool(sessionmaker, network)
    with limits(app, hold_limit_per_requester=5, hold_limit_per_organisation=8):
        assert (await case_hold(client, sessionmaker, network, pool_id, 4)).status_code == 201
        over = await case_hold(client, sessionmaker, network, pool_id, 2)
        assert over.status_code == 409 and over.json()["error"] == "hold_limit", over.text
        assert over.json()["limit"] == "per_requester" and over.json()["max_beds"] == 5
        assert "per-requester limit" in over.json()["detail"] and "5" in over.json()["detail"]
        assert (await case_hold(client, sessionmaker, network, pool_id, 1)).status_code == 201
        # Another case worker of the same organisation: the organisation's limit (8) stops it at 3.
        assert (await case_hold(client, sessionmaker, network, pool_id, 3, "worker_plain")).status_code == 201
        org_over = await case_hold(client, sessionmaker, network, pool_id, 1, "worker_plain")
        assert org_over.status_code == 409 and org_over.json()["limit"] == "per_organisation"
        assert org_over.json()["max_beds"] == 8 and "per-organisation limit" in org_over.json()["detail"]
        assert await held(sessionmaker, pool_id) == 8
        # An answered request no longer counts: once the shelter declines one, there is room again.
        async with sessionmaker() as session:
            first = (await session.execute(select(Hold.id).where(Hold.beds == 4))).scalar_one()
        declined = await client.post(
            f"/api/v1/holds/{first}/decline", json={"reason": "full"}, headers=network["shelter_a"].headers
        )
        assert declined.status_code == 200
        assert (await case_hold(client, sessionmaker, network, pool_id, 4)).status_code == 201


async def test_concurrent_requests_never_pass_the_limit(live_server, network, sessionmaker) -> None:
    # Real concurrent connections to a served app; each request on its own pool, so that no pool row lock
    # happens to serialise them: only the organisation's lock keeps the count.
    pools = [await big_pool(sessionmaker, network, capacity=2) for _ in range(40)]
    codes = [await new_case(sessionmaker, network) for _ in range(40)]
    body = {"beds": 1, "expires_at": later(hours=3)}
    with limits(live_server.app, hold_limit_per_requester=5, hold_limit_per_organisation=100):
        async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
            responses = await asyncio.gather(
                *(
                    http.post(
                        "/api/v1/holds",
                        json={**body, "pool_id": p, "case_code": c},
                        headers=network["worker"].headers,
                    )
                    for p, c in zip(pools, codes, strict=True)
                )
            )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 5 and statuses.count(409) == 35, statuses
    assert all(r.json()["error"] == "hold_limit" for r in responses if r.status_code == 409)
    assert sum([await held(sessionmaker, p) for p in pools]) == 5


# --- 1. an unanswered request lapses soon, not after 14 days --------------------------------------------------


async def test_an_unanswered_request_lapses_after_its_window_and_the_grace(app, client, network, sessionmaker) -> None:
    pool_id = network.pools["a"].id
    lapsing = (await case_hold(client, sessionmaker, network, pool_id, 2)).json()
    waiting = (await case_hold(client, sessionmaker, network, pool_id, 1)).json()
    grace = timedelta(minutes=app.state.settings.hold_lapse_grace_minutes)
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        # One went unanswered past its window plus the grace; the other's window passed, the grace has not.
        await session.execute(
            update(Hold).where(Hold.id == lapsing["id"]).values(respond_by=now - grace - timedelta(seconds=1))
        )
        await session.execute(
            update(Hold).where(Hold.id == waiting["id"]).values(respond_by=now - timedelta(minutes=1))
        )
        await session.commit()

    # The app's own sweeper (running beside the test) lapses one and only flags the other.
    async def swept() -> bool:
        async with sessionmaker() as session:
            gone = await session.get(Hold, lapsing["id"])
            still = await session.get(Hold, waiting["id"])
            return (
                gone is not None
                and gone.status == "expired"
                and gone.ended_at is not None
                and still is not None
                and still.flagged_unanswered
            )

    assert await eventually(swept)
    async with sessionmaker() as session:
        assert (await session.get(Hold, waiting["id"])).status == "requested"  # type: ignore[union-attr]
    assert await held(sessionmaker, pool_id) == 1


async def test_lapsing_acts_once_with_several_sweepers(app, client, network, sessionmaker) -> None:
    pool_id = network.pools["a"].id
    ids = [(await case_hold(client, sessionmaker, network, pool_id, 1)).json()["id"] for _ in range(4)]
    async with sessionmaker() as session:
        await session.execute(
            update(Hold).where(Hold.id.in_(ids)).values(respond_by=datetime.now(UTC) - timedelta(days=1))  # type: ignore[attr-defined]
        )
        await session.commit()

    async def sweep() -> int:
        async with sessionmaker() as session:
            return len(await hold_ops.lapse_unanswered(session, timedelta(minutes=30)))

    lapsed = await asyncio.gather(*(sweep() for _ in range(4)))
    # The app's own sweeper may take some of them too: however many sweep, each lapses exactly once.
    assert sum(lapsed) <= 4, lapsed
    async with sessionmaker() as session:
        statuses = {h.status for h in (await session.execute(select(Hold))).scalars()}
        moves = (
            await session.execute(
                select(func.count())
                .select_from(PoolChange)
                .where(PoolChange.pool_id == pool_id, PoolChange.reason == "hold_expired")
            )
        ).scalar_one()
    assert statuses == {"expired"} and moves == 4
    assert await held(sessionmaker, pool_id) == 0


# --- 1. one action against a hoarder: the shelter's and the coordinator's -------------------------------------


async def test_a_shelter_declines_every_open_request_of_one_requester(client, network, sessionmaker) -> None:
    pool_a, family, pool_b = network.pools["a"].id, network.pools["a_family"].id, network.pools["b"].id
    mine = [(await case_hold(client, sessionmaker, network, p, 1)).json()["id"] for p in (pool_a, pool_a, family)]
    at_b = (await case_hold(client, sessionmaker, network, pool_b, 1)).json()["id"]
    colleague = (await case_hold(client, sessionmaker, network, pool_a, 1, "worker_plain")).json()["id"]
    listed = (await client.get(f"/api/v1/holds/{mine[0]}", headers=network["shelter_a"].headers)).json()
    assert listed["requested_by"] == network["worker"].id
    no_reason = await client.post(
        "/api/v1/holds/decline-requester",
        json={"requested_by": network["worker"].id},
        headers=network["shelter_a"].headers,
    )
    assert no_reason.status_code == 422
    done = await client.post(
        "/api/v1/holds/decline-requester",
        json={"requested_by": network["worker"].id, "reason": "Too many requests at once"},
        headers=network["shelter_a"].headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 3 and done.json()["beds"] == 3
    assert sorted(h["id"] for h in done.json()["holds"]) == sorted(mine)
    async with sessionmaker() as session:
        status = dict((await session.execute(select(Hold.id, Hold.status))).all())
    assert [status[i] for i in mine] == ["declined"] * 3
    # Another shelter's request and a colleague's are not touched.
    assert status[at_b] == "requested" and status[colleague] == "requested"
    assert await held(sessionmaker, pool_a) == 1 and await held(sessionmaker, family) == 0


async def test_the_requests_page_declines_a_requester_only_once_confirmed(client, network, sessionmaker) -> None:
    ids = [(await case_hold(client, sessionmaker, network, network.pools["a"].id, 1)).json()["id"] for _ in range(2)]
    await login_page_session(client, "shelter_a")
    page = await client.get("/requests")
    assert page.status_code == 200 and "Decline every open request of one requester" in page.text
    assert network["worker"].id in page.text
    token = client.cookies["csrftoken"]
    form = {"requested_by": network["worker"].id, "reason": "full", "_csrf_token": token}
    unconfirmed = await client.post("/requests/decline-requester", data=form)
    assert unconfirmed.status_code == 422
    async with sessionmaker() as session:
        assert {h.status for h in (await session.execute(select(Hold))).scalars()} == {"requested"}
    confirmed = await client.post(
        "/requests/decline-requester", data={**form, "confirm": "yes"}, follow_redirects=False
    )
    assert confirmed.status_code == 303
    async with sessionmaker() as session:
        statuses = {h.id: h.status for h in (await session.execute(select(Hold))).scalars()}
    assert [statuses[i] for i in ids] == ["declined", "declined"]


async def test_a_coordinator_releases_every_hold_of_a_user_or_an_organisation_and_it_is_recorded(
    client, network, sessionmaker
) -> None:
    pool_a, pool_b = network.pools["a"].id, network.pools["b"].id
    op = await operation(client, network)
    police_holds = []
    for pool_id in (pool_a, pool_b):
        response = await client.post(
            "/api/v1/holds",
            json={"pool_id": pool_id, "beds": 2, "operation_id": op, "expires_at": later(hours=8)},
            headers=network["police"].headers,
        )
        police_holds.append(response.json()["id"])
    await client.post(f"/api/v1/holds/{police_holds[0]}/confirm", headers=network["shelter_a"].headers)
    worker_hold = (await case_hold(client, sessionmaker, network, pool_a, 1)).json()["id"]
    body = {"organisation_id": network.orgs["police"].id, "reason": "Compromised account"}
    refused = await client.post("/api/v1/holds/release-all", json=body, headers=network["police_other"].headers)
    assert refused.status_code == 403
    both = await client.post(
        "/api/v1/holds/release-all",
        json={**body, "user_id": network["police"].id},
        headers=network["coordinator"].headers,
    )
    assert both.status_code == 422
    done = await client.post("/api/v1/holds/release-all", json=body, headers=network["coordinator"].headers)
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 2 and done.json()["beds"] == 4
    async with sessionmaker() as session:
        statuses = dict((await session.execute(select(Hold.id, Hold.status))).all())
        incidents = (await session.execute(select(HoldIncident))).scalars().all()
    assert [statuses[i] for i in police_holds] == ["released", "released"]
    assert statuses[worker_hold] == "requested"
    assert await held(sessionmaker, pool_b) == 0 and await held(sessionmaker, pool_a) == 1
    # Who, when, whose, how many.
    (incident,) = incidents
    assert incident.kind == "release_all" and incident.actor_user_id == network["coordinator"].id
    assert incident.target_org_id == network.orgs["police"].id and incident.holds == 2 and incident.beds == 4
    assert incident.at is not None and incident.reason == "Compromised account"
    # By user, through the page: it asks for confirmation first and lists what was done.
    await login_page_session(client, "coordinator")
    page = await client.get("/holds/incident")
    assert page.status_code == 200 and "Compromised account" in page.text
    assert "Coordinator (coordinator)" in page.text and "police org" in page.text
    token = client.cookies["csrftoken"]
    form = {"target": f"user:{network['worker'].id}", "reason": "Phished", "_csrf_token": token}
    unticked = await client.post("/holds/incident", data=form)
    assert unticked.status_code == 422 and "Tick the box to confirm" in unticked.text
    assert 'value="Phished"' in unticked.text and f'value="user:{network["worker"].id}" selected' in unticked.text
    form["reason"] = ""
    released = await client.post("/holds/incident", data={**form, "confirm": "yes"}, follow_redirects=False)
    assert released.status_code == 303
    async with sessionmaker() as session:
        assert (await session.get(Hold, worker_hold)).status == "released"  # type: ignore[union-attr]
        assert (await session.execute(select(func.count()).select_from(HoldIncident))).scalar_one() == 2


# --- 2. an address only with the shelter's consent, and every grant ends --------------------------------------


async def agreement(client: Any, network: Any, partner: str, pool: str = "a", beds: int = 2, **extra: Any) -> Any:
    body = {"pool_id": network.pools[pool].id, "beds": beds, "partner_org_id": network.orgs[partner].id, **extra}
    return await client.post("/api/v1/agreements", json=body, headers=network["shelter_a"].headers)


async def test_an_agreement_confirms_at_once_only_for_its_named_partner(client, network, sessionmaker) -> None:
    made = await agreement(client, network, "police", scope="all")
    assert made.status_code == 201, made.text
    assert made.json()["partner_org_id"] == network.orgs["police"].id
    pool_id = network.pools["a"].id
    # (a) of the issue: a made-up case code under an agreement of scope "all" gets neither beds nor address.
    made_up = await case_hold(client, sessionmaker, network, pool_id, 1, case_code="ZZZ")
    assert made_up.status_code == 404
    real = await case_hold(client, sessionmaker, network, pool_id, 1)
    assert real.status_code == 201 and real.json()["status"] == "requested" and not real.json()["auto_confirmed"]
    assert await address_of(client, network, "worker") is None
    # Another police service is not the partner either.
    other_op = await operation(client, network, "police_other")
    other = await client.post(
        "/api/v1/holds",
        json={"pool_id": pool_id, "beds": 1, "operation_id": other_op, "expires_at": later(hours=3)},
        headers=network["police_other"].headers,
    )
    assert other.status_code == 201 and other.json()["status"] == "requested"
    assert await address_of(client, network, "police_other") is None
    # The partner, for its own operation: confirmed at once, and it sees the address.
    op = await operation(client, network)
    partner = await client.post(
        "/api/v1/holds",
        json={"pool_id": pool_id, "beds": 1, "operation_id": op, "expires_at": later(hours=3)},
        headers=network["police"].headers,
    )
    assert partner.json()["status"] == "confirmed" and partner.json()["auto_confirmed"]
    assert await address_of(client, network, "police") == "123 rue Secrète"
    # An agreement needs a partner that exists, and not the shelter itself.
    for bad in ({"partner_org_id": ""}, {"partner_org_id": "nope"}, {"partner_org_id": network.orgs["shelter_a"].id}):
        response = await client.post(
            "/api/v1/agreements",
            json={"pool_id": network.pools["a_family"].id, "beds": 1, **bad},
            headers=network["shelter_a"].headers,
        )
        assert response.status_code == 422 and response.json()["error"] == "invalid_partner", bad


async def test_a_claim_of_zero_beds_is_refused(client, network, sessionmaker) -> None:
    await agreement(client, network, "police")
    op = await operation(client, network)
    hold = (
        await client.post(
            "/api/v1/holds",
            json={"pool_id": network.pools["a"].id, "beds": 2, "operation_id": op, "expires_at": later(hours=3)},
            headers=network["police"].headers,
        )
    ).json()
    assert hold["status"] == "confirmed"
    zero = await client.post(
        f"/api/v1/holds/{hold['id']}/claim", json={"beds_used": 0}, headers=network["police"].headers
    )
    assert zero.status_code == 422 and zero.json()["error"] == "invalid_beds_used"
    async with sessionmaker() as session:
        assert (await session.get(Hold, hold["id"])).status == "confirmed"  # type: ignore[union-attr]
    assert await held(sessionmaker, network.pools["a"].id) == 2


async def test_a_claimed_hold_grants_the_address_for_a_set_time_then_never(app, client, network, sessionmaker) -> None:
    await agreement(client, network, "police")
    op = await operation(client, network)
    hold = (
        await client.post(
            "/api/v1/holds",
            json={"pool_id": network.pools["a"].id, "beds": 1, "operation_id": op, "expires_at": later(hours=3)},
            headers=network["police"].headers,
        )
    ).json()
    claimed = await client.post(
        f"/api/v1/holds/{hold['id']}/claim", json={"beds_used": 1}, headers=network["police"].headers
    )
    assert claimed.status_code == 200
    assert await address_of(client, network, "police") == "123 rue Secrète"
    hours = app.state.settings.claim_grant_hours
    async with sessionmaker() as session:
        await session.execute(
            update(Hold)
            .where(Hold.id == hold["id"])
            .values(ended_at=datetime.now(UTC) - timedelta(hours=hours, minutes=1))
        )
        await session.commit()
    assert await address_of(client, network, "police") is None


async def test_a_confirmed_case_hold_grants_while_confirmed_and_not_after(client, network, sessionmaker) -> None:
    hold = (await case_hold(client, sessionmaker, network, network.pools["a"].id, 1)).json()
    assert await address_of(client, network, "worker") is None
    await client.post(f"/api/v1/holds/{hold['id']}/confirm", headers=network["shelter_a"].headers)
    assert await address_of(client, network, "worker") == "123 rue Secrète"
    # Past its expiry it grants nothing, even before anything expires it.
    async with sessionmaker() as session:
        await session.execute(
            update(Hold).where(Hold.id == hold["id"]).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert await address_of(client, network, "worker") is None


# --- 13. one active agreement per pool and partner; beds_in_use never drifts ---------------------------------


async def test_concurrent_agreements_on_one_pool_and_partner_make_one(
    live_server, client, network, sessionmaker
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        responses = await asyncio.gather(*(agreement(http, network, "police", beds=1) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    assert all(r.json()["error"] == "agreement_exists" for r in responses if r.status_code == 409)
    async with sessionmaker() as session:
        active = (
            await session.execute(select(func.count()).select_from(Agreement).where(Agreement.active.is_(True)))  # type: ignore[attr-defined]
        ).scalar_one()
    assert active == 1
    # Another partner on the same pool is another agreement.
    assert (await agreement(client, network, "community", beds=1)).status_code == 201


async def test_agreement_beds_in_use_never_drift_under_concurrent_holds_and_releases(
    client, network, sessionmaker
) -> None:
    pool_id = await big_pool(sessionmaker, network, capacity=40)
    made = await client.post(
        "/api/v1/agreements",
        json={"pool_id": pool_id, "beds": 6, "partner_org_id": network.orgs["police"].id},
        headers=network["shelter_a"].headers,
    )
    assert made.status_code == 201
    op = await operation(client, network)

    async def one() -> Any:
        return await client.post(
            "/api/v1/holds",
            json={"pool_id": pool_id, "beds": 1, "operation_id": op, "expires_at": later(hours=3)},
            headers=network["police"].headers,
        )

    first = await asyncio.gather(*(one() for _ in range(10)))
    confirmed = [r.json()["id"] for r in first if r.json()["status"] == "confirmed"]
    assert len(confirmed) == 6
    steps = [client.post(f"/api/v1/holds/{i}/release", headers=network["police"].headers) for i in confirmed[:3]]
    await asyncio.gather(*steps, *(one() for _ in range(6)))
    async with sessionmaker() as session:
        agreement_row = (await session.execute(select(Agreement))).scalar_one()
        in_use = (
            await session.execute(
                select(func.coalesce(func.sum(Hold.beds), 0)).where(
                    Hold.agreement_id == agreement_row.id,
                    Hold.status.in_(ACTIVE_STATUSES),  # type: ignore[attr-defined]
                )
            )
        ).scalar_one()
    assert agreement_row.beds_in_use == in_use <= agreement_row.beds


# --- 14. POST /api/v1/operations takes an Idempotency-Key -----------------------------------------------------


async def test_a_repeated_operation_request_creates_one_operation(live_server, client, network, sessionmaker) -> None:
    body = {
        "code_name": "OSPREY",
        "province": "QC",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "women", "count": 2}],
    }
    headers = {**network["police"].headers, "Idempotency-Key": "op-osprey"}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        responses = await asyncio.gather(
            *(http.post("/api/v1/operations", json=body, headers=headers) for _ in range(8))
        )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.json()["needs"] == [{"profile": "women", "count": 2}] for r in responses)
    other = await client.post("/api/v1/operations", json={**body, "code_name": "EGRET"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    # The key is the caller's own: another planner's same key is another request.
    mine = await client.post(
        "/api/v1/operations", json=body, headers={**network["police_other"].headers, "Idempotency-Key": "op-osprey"}
    )
    assert mine.status_code == 201 and mine.json()["id"] != responses[0].json()["id"]
    async with sessionmaker() as session:
        from beds.holds_models import Operation

        assert (await session.execute(select(func.count()).select_from(Operation))).scalar_one() == 2


async def test_an_allocation_may_pass_one_persons_limit_but_never_its_services(app, client, network, sessionmaker):
    """A planner who allocates an operation with huge needs cannot hold the network: the operation counts toward
    the police service's limit of requested beds (found by an insider attack: 290 beds in one allocation)."""
    pool_id = await big_pool(sessionmaker, network, capacity=100)
    body = {
        "code_name": "KESTREL",
        "province": "QC",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "women", "count": 12}],
    }
    options = {"allow_other_cities": True, "allow_other_provinces": True}
    police = network["police"].headers
    with limits(app, hold_limit_per_requester=5, hold_limit_per_organisation=10):
        op = (await client.post("/api/v1/operations", json=body, headers=police)).json()
        over = await client.post(f"/api/v1/operations/{op['id']}/allocate", json=options, headers=police)
        assert over.status_code == 409 and over.json()["error"] == "hold_limit", over.text
        assert over.json()["limit"] == "per_organisation" and over.json()["max_beds"] == 10
        assert await held(sessionmaker, pool_id) == 0  # all or none: nothing stays held
        # Within the service's limit, beyond one person's: allowed, as an operation needs.
        body["needs"] = [{"profile": "women", "count": 8}]
        body["code_name"] = "MERLIN"
        op = (await client.post("/api/v1/operations", json=body, headers=police)).json()
        ok = await client.post(f"/api/v1/operations/{op['id']}/allocate", json=options, headers=police)
        assert ok.status_code in (200, 201), ok.text
        assert sum(h["beds"] for h in ok.json()["holds"]) == 8
