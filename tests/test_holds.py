"""Holds through the API: each step, who may take it, the errors API.md promises, expiry and agreements."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.channels import ChannelsPlugin
from sqlalchemy import func, select, update

from beds.audit import AddressRelease
from beds.holds import requester_kind
from beds.holds_models import Hold, HoldStatus
from beds.models import BedPool, PoolChange
from beds.visibility import Viewer, may_see_case_code, on_holders_side
from tests.conftest import eventually


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def make_operation(client: Any, network: Any, who: str = "police", **fields: Any) -> dict:
    body = {
        "code_name": "NIGHTJAR",
        "province": "QC",
        "city": "Montréal",
        "window_start": later(hours=1),
        "window_end": later(hours=6),
        "needs": [{"profile": "women", "count": 2}],
        **fields,
    }
    response = await client.post("/api/v1/operations", json=body, headers=network[who].headers)
    assert response.status_code == 201, response.text
    return response.json()


async def hold(client: Any, network: Any, who: str = "police", *, key: str | None = None, **fields: Any) -> Any:
    headers = dict(network[who].headers)
    if key:
        headers["Idempotency-Key"] = key
    return await client.post("/api/v1/holds", json=fields, headers=headers)


async def new_case(client: Any, network: Any, who: str = "worker") -> str:
    """A real case of the caller's organisation: a hold's case_code must be one (issue 9)."""
    response = await client.post("/api/v1/cases", json={}, headers=network[who].headers)
    assert response.status_code == 201, response.text
    return response.json()["code"]


async def pool_row(sessionmaker: Any, pool_id: str) -> BedPool:
    async with sessionmaker() as session:
        pool = await session.get(BedPool, pool_id)
        assert pool is not None
        return pool


async def police_hold(client: Any, network: Any, beds: int = 2, **extra: Any) -> dict:
    op = await make_operation(client, network)
    response = await hold(
        client,
        network,
        pool_id=network.pools["a"].id,
        beds=beds,
        operation_id=op["id"],
        expires_at=later(hours=8),
        **extra,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_request_confirm_claim_moves_the_pool_and_writes_history(client, network, sessionmaker) -> None:
    created = await police_hold(client, network, beds=3)
    assert set(created) >= {"id", "pool_id", "facility_id", "beds", "status", "expires_at", "operation_id", "case_code"}
    assert created["status"] == "requested" and created["beds"] == 3
    assert created["facility_id"] == network.facilities["a"].id
    pool = await pool_row(sessionmaker, network.pools["a"].id)
    assert (pool.held, pool.occupied, pool.free) == (3, 4, 3)

    confirmed = await client.post(f"/api/v1/holds/{created['id']}/confirm", headers=network["shelter_a"].headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    claimed = await client.post(
        f"/api/v1/holds/{created['id']}/claim", json={"beds_used": 2}, headers=network["police"].headers
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "claimed" and claimed.json()["beds_used"] == 2
    pool = await pool_row(sessionmaker, network.pools["a"].id)
    assert (pool.held, pool.occupied, pool.free) == (0, 6, 4)
    async with sessionmaker() as session:
        reasons = (
            (
                await session.execute(
                    select(PoolChange.reason).where(PoolChange.pool_id == pool.id).order_by(PoolChange.id)
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["hold_requested", "hold_claimed"]


async def test_planner_sees_the_address_only_once_the_hold_is_confirmed_and_it_is_audited(
    client, network, sessionmaker
) -> None:
    facility_url = f"/api/v1/facilities/{network.facilities['a'].id}"
    created = await police_hold(client, network)
    before = (await client.get(facility_url, headers=network["police"].headers)).json()
    assert "address" not in before and "intake_phone" not in before
    await client.post(f"/api/v1/holds/{created['id']}/confirm", headers=network["shelter_a"].headers)
    after = (await client.get(facility_url, headers=network["police"].headers)).json()
    assert after["address"] == "123 rue Secrète" and after["intake_phone"] == "+1-555-000-1111"
    # Another police service still sees nothing.
    other = (await client.get(facility_url, headers=network["police_other"].headers)).json()
    assert "address" not in other
    async with sessionmaker() as session:
        releases = (await session.execute(select(AddressRelease))).scalars().all()
    assert [(r.user_id, r.grounds) for r in releases] == [(network["police"].id, f"hold:{created['id']}")]
    # Released: the grant ends with the hold.
    await client.post(f"/api/v1/holds/{created['id']}/release", headers=network["police"].headers)
    gone = (await client.get(facility_url, headers=network["police"].headers)).json()
    assert "address" not in gone


async def test_case_worker_hold_grants_the_address_and_hides_the_case_code_from_the_shelter(client, network) -> None:
    code = await new_case(client, network)
    response = await hold(
        client,
        network,
        "worker",
        pool_id=network.pools["a"].id,
        beds=1,
        case_code=code,
        expires_at=later(hours=2),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["case_code"] == code and created["operation_id"] is None
    shelter_view = (await client.get(f"/api/v1/holds/{created['id']}", headers=network["shelter_a"].headers)).json()
    assert shelter_view["case_code"] is None and shelter_view["status"] == "requested"
    await client.post(f"/api/v1/holds/{created['id']}/confirm", headers=network["shelter_a"].headers)
    facility = (
        await client.get(f"/api/v1/facilities/{network.facilities['a'].id}", headers=network["worker"].headers)
    ).json()
    assert facility["address"] == "123 rue Secrète"


async def test_decline_needs_a_reason_and_the_requester_sees_it(client, network, sessionmaker) -> None:
    created = await police_hold(client, network)
    url = f"/api/v1/holds/{created['id']}/decline"
    for body in (None, {}, {"reason": "   "}):
        response = await client.post(url, json=body, headers=network["shelter_a"].headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "reason_required"
    declined = await client.post(
        url, json={"reason": "Water damage on the floor"}, headers=network["shelter_a"].headers
    )
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    seen = (await client.get(f"/api/v1/holds/{created['id']}", headers=network["police"].headers)).json()
    assert seen["decline_reason"] == "Water damage on the floor"
    pool = await pool_row(sessionmaker, network.pools["a"].id)
    assert pool.held == 0


async def test_wrong_state_answers_409(client, network) -> None:
    created = await police_hold(client, network)
    hid = created["id"]
    assert (await client.post(f"/api/v1/holds/{hid}/release", headers=network["police"].headers)).status_code == 200
    for path, who, body in (
        ("confirm", "shelter_a", None),
        ("release", "police", None),
        ("decline", "shelter_a", {"reason": "full"}),
        ("claim", "shelter_a", {"beds_used": 1}),
    ):
        response = await client.post(f"/api/v1/holds/{hid}/{path}", json=body, headers=network[who].headers)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["error"] == "invalid_state"
        assert response.json()["hold_status"] == "released"
    # A planner cannot claim a hold the shelter has not confirmed yet.
    second = await police_hold(client, network, beds=1)
    response = await client.post(
        f"/api/v1/holds/{second['id']}/claim", json={"beds_used": 1}, headers=network["police"].headers
    )
    assert response.status_code == 409


async def test_bad_inputs_answer_422(client, network) -> None:
    op = await make_operation(client, network)
    pool_id = network.pools["a"].id
    cases = [
        ({"beds": 0}, "invalid_beds"),
        ({"beds": -2}, "invalid_beds"),
        ({"expires_at": later(minutes=-5)}, "invalid_expiry"),
        ({"expires_at": later(days=15)}, "invalid_expiry"),
        ({"case_code": "C-1"}, "invalid_purpose"),
    ]
    for override, code in cases:
        body = {"pool_id": pool_id, "beds": 1, "operation_id": op["id"], "expires_at": later(hours=1), **override}
        response = await hold(client, network, **body)
        assert response.status_code == 422, (override, response.text)
        assert response.json()["error"] == code
    no_purpose = await hold(client, network, pool_id=pool_id, beds=1, expires_at=later(hours=1))
    assert no_purpose.status_code == 422 and no_purpose.json()["error"] == "invalid_purpose"
    created = await police_hold(client, network, beds=2)
    await client.post(f"/api/v1/holds/{created['id']}/confirm", headers=network["shelter_a"].headers)
    too_many = await client.post(
        f"/api/v1/holds/{created['id']}/claim", json={"beds_used": 3}, headers=network["police"].headers
    )
    assert too_many.status_code == 422 and too_many.json()["error"] == "invalid_beds_used"
    # Malformed bodies are 400 (the app's own handler), unknown fields too.
    malformed = await hold(
        client, network, pool_id=pool_id, beds="two", operation_id=op["id"], expires_at=later(hours=1)
    )
    assert malformed.status_code == 400
    unknown = await hold(
        client, network, pool_id=pool_id, beds=1, operation_id=op["id"], expires_at=later(hours=1), name="Jane"
    )
    assert unknown.status_code == 400


async def test_who_may_act_403_and_who_may_see_404(client, network) -> None:
    op = await make_operation(client, network)
    body = {"pool_id": network.pools["a"].id, "beds": 1, "operation_id": op["id"], "expires_at": later(hours=1)}
    for who in ("shelter_a", "approver", "auditor", "coordinator"):
        assert (await hold(client, network, who, **body)).status_code == 403, who
    # Another service cannot hold for this operation: it does not exist for them.
    assert (await hold(client, network, "police_other", **body)).status_code == 404
    missing_pool = await hold(client, network, **{**body, "pool_id": "nope"})
    assert missing_pool.status_code == 404
    created = (await hold(client, network, **body)).json()
    hid = created["id"]
    for who in ("police_other", "shelter_b", "worker", "approver"):
        assert (await client.get(f"/api/v1/holds/{hid}", headers=network[who].headers)).status_code == 404, who
        assert (await client.post(f"/api/v1/holds/{hid}/confirm", headers=network[who].headers)).status_code == 404
    assert (await client.get(f"/api/v1/holds/{hid}", headers=network["coordinator"].headers)).status_code == 200
    # Parties, but not allowed this step.
    assert (await client.post(f"/api/v1/holds/{hid}/confirm", headers=network["police"].headers)).status_code == 403
    assert (await client.post(f"/api/v1/holds/{hid}/release", headers=network["shelter_a"].headers)).status_code == 403
    coordinator = await client.post(f"/api/v1/holds/{hid}/release", headers=network["coordinator"].headers)
    assert coordinator.status_code == 403
    assert (await client.get("/api/v1/holds/nope", headers=network["police"].headers)).status_code == 404


async def test_insufficient_capacity_is_409_with_free(client, network, sessionmaker) -> None:
    op = await make_operation(client, network)
    response = await hold(
        client, network, pool_id=network.pools["a"].id, beds=7, operation_id=op["id"], expires_at=later(hours=1)
    )
    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_capacity" and response.json()["free"] == 6
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Hold))).scalar_one() == 0
    pool = await pool_row(sessionmaker, network.pools["a"].id)
    assert pool.held == 0


async def test_idempotency_key_returns_the_first_hold_and_refuses_another_body(client, network, sessionmaker) -> None:
    op = await make_operation(client, network)
    body = {"pool_id": network.pools["a"].id, "beds": 2, "operation_id": op["id"], "expires_at": later(hours=3)}
    first = await hold(client, network, key="retry-1", **body)
    again = await hold(client, network, key="retry-1", **body)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    pool = await pool_row(sessionmaker, network.pools["a"].id)
    assert pool.held == 2
    other = await hold(client, network, key="retry-1", **{**body, "beds": 3})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    # Keys are per user: another planner's same key is a different request.
    other_user = await hold(
        client,
        network,
        "worker",
        key="retry-1",
        pool_id=network.pools["a"].id,
        beds=1,
        case_code=await new_case(client, network),
        expires_at=later(hours=3),
    )
    assert other_user.status_code == 201 and other_user.json()["id"] != first.json()["id"]


async def test_expired_hold_reads_expired_and_frees_its_beds(client, network, sessionmaker) -> None:
    created = await police_hold(client, network, beds=2)
    async with sessionmaker() as session:
        await session.execute(
            update(Hold).where(Hold.id == created["id"]).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    # The read itself expires it (the sweeper may beat it to it; either way the answer is the same).
    seen = await client.get(f"/api/v1/holds/{created['id']}", headers=network["shelter_a"].headers)
    assert seen.json()["status"] == "expired"
    pool = await pool_row(sessionmaker, network.pools["a"].id)
    assert pool.held == 0 and pool.free == 6
    confirm = await client.post(f"/api/v1/holds/{created['id']}/confirm", headers=network["shelter_a"].headers)
    assert confirm.status_code == 409


async def test_sweeper_expires_holds_with_nobody_reading(client, network, sessionmaker) -> None:
    created = await police_hold(client, network, beds=2)
    async with sessionmaker() as session:
        await session.execute(
            update(Hold).where(Hold.id == created["id"]).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

    async def freed() -> bool:
        async with sessionmaker() as session:
            current = await session.get(Hold, created["id"])
            pool = await session.get(BedPool, network.pools["a"].id)
            return current is not None and current.status == "expired" and pool is not None and pool.held == 0

    assert await eventually(freed)


async def test_standing_agreement_confirms_within_k_and_counts_held_beds(client, network, sessionmaker) -> None:
    pool_id = network.pools["a"].id
    made = await client.post(
        "/api/v1/agreements",
        json={"pool_id": pool_id, "beds": 2, "scope": "police", "partner_org_id": network.orgs["police"].id},
        headers=network["shelter_a"].headers,
    )
    assert made.status_code == 201, made.text
    op = await make_operation(client, network)

    async def one() -> dict:
        response = await hold(
            client, network, pool_id=pool_id, beds=1, operation_id=op["id"], expires_at=later(hours=2)
        )
        assert response.status_code == 201
        return response.json()

    first, second, third = await one(), await one(), await one()
    assert [h["status"] for h in (first, second, third)] == ["confirmed", "confirmed", "requested"]
    assert first["auto_confirmed"] and not third["auto_confirmed"]
    # Case workers are not covered by a police-only agreement.
    code = await new_case(client, network)
    case = await hold(client, network, "worker", pool_id=pool_id, beds=1, case_code=code, expires_at=later(hours=1))
    assert case.json()["status"] == "requested"
    await client.post(f"/api/v1/holds/{first['id']}/release", headers=network["police"].headers)
    fourth = await one()
    assert fourth["status"] == "confirmed"
    listed = (await client.get("/api/v1/agreements", headers=network["shelter_a"].headers)).json()
    assert listed[0]["beds_in_use"] == 2
    assert (await client.get("/api/v1/agreements", headers=network["shelter_b"].headers)).json() == []
    # Only the facility's staff, only within capacity, one at a time.
    assert (
        await client.post(
            "/api/v1/agreements", json={"pool_id": pool_id, "beds": 1}, headers=network["shelter_b"].headers
        )
    ).status_code == 403
    assert (
        await client.post("/api/v1/agreements", json={"pool_id": pool_id, "beds": 1}, headers=network["police"].headers)
    ).status_code == 403
    again = await client.post(
        "/api/v1/agreements",
        json={"pool_id": pool_id, "beds": 1, "partner_org_id": network.orgs["police"].id},
        headers=network["shelter_a"].headers,
    )
    assert again.status_code == 409 and again.json()["error"] == "agreement_exists"
    too_big = await client.post(
        "/api/v1/agreements",
        json={"pool_id": network.pools["a_family"].id, "beds": 4, "partner_org_id": network.orgs["police"].id},
        headers=network["shelter_a"].headers,
    )
    assert too_big.status_code == 422
    ended = await client.post(f"/api/v1/agreements/{listed[0]['id']}/end", headers=network["shelter_a"].headers)
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert (await one())["status"] == "requested"


async def test_unanswered_request_is_flagged_to_requester_and_coordinators(client, network, sessionmaker, app) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with channels.start_subscription(["network"]) as subscriber:
        created = await police_hold(client, network)
        async with sessionmaker() as session:
            await session.execute(
                update(Hold).where(Hold.id == created["id"]).values(respond_by=datetime.now(UTC) - timedelta(seconds=1))
            )
            await session.commit()

        async def flagged() -> bool:
            seen = await client.get(f"/api/v1/holds/{created['id']}", headers=network["police"].headers)
            return seen.json()["flagged_unanswered"]

        assert await eventually(flagged)
        events = []
        async for raw in subscriber.iter_events():
            events.append(json.loads(raw))
            if any(e["kind"] == "hold.unanswered" for e in events):
                break
    unanswered = next(e for e in events if e["kind"] == "hold.unanswered")
    orgs, _users, roles = unanswered["audience"]
    assert orgs == [network.orgs["police"].id] and roles == ["coordinator"]
    assert unanswered["payload"]["hold"]["id"] == created["id"]


async def test_every_change_is_published_to_its_parties_with_the_pool(client, network, app) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with channels.start_subscription(["network"]) as subscriber:
        created = await police_hold(client, network)
        events = []
        async for raw in subscriber.iter_events():
            events.append(json.loads(raw))
            if len(events) >= 4:
                break
    kinds = sorted(e["kind"] for e in events)
    # nav.count: the shelter's pages read their count of open requests again (exchange/home/live.py).
    assert kinds == ["hold.updated", "hold.updated", "nav.count", "pool.updated"]
    nav = next(e for e in events if e["kind"] == "nav.count")
    assert nav["audience"] == [[network.orgs["shelter_a"].id], [], []] and nav["payload"]["count"] == "requests"
    by_side = {e["payload"]["side"]: e for e in events if e["kind"] == "hold.updated"}
    assert by_side["holder"]["audience"] == [[network.orgs["police"].id], [], ["coordinator"]]
    assert by_side["facility"]["audience"] == [[network.orgs["shelter_a"].id], [], []]
    assert by_side["facility"]["payload"]["type"] == "hold.updated"
    assert by_side["facility"]["payload"]["hold"]["id"] == created["id"]
    # Shelters never see the operation's code name.
    assert "NIGHTJAR" not in json.dumps(by_side["facility"])
    pool_event = next(e for e in events if e["kind"] == "pool.updated")
    assert pool_event["payload"]["pool"]["held"] == 2


def test_a_case_code_reaches_the_facility_only_once_the_person_is_placed() -> None:
    staff = Viewer("u1", "shelter-org", frozenset({"shelter_staff"}))
    worker = Viewer("u2", "workers-org", frozenset({"case_worker"}))
    coordinator = Viewer("u3", "coalition", frozenset({"coordinator"}))
    assert on_holders_side(worker, "workers-org") and on_holders_side(coordinator, "workers-org")
    assert not on_holders_side(staff, "workers-org")
    for status in HoldStatus:
        assert may_see_case_code(status.value, holders_side=True)
        assert may_see_case_code(status.value, holders_side=False) == (status == HoldStatus.CLAIMED)


def test_planners_hold_under_police_agreements_everyone_else_under_case_workers() -> None:
    assert requester_kind(["police_planner"]) == "police"
    assert requester_kind(["coordinator", "police_planner"]) == "police"
    assert requester_kind(["case_worker"]) == "case_workers"
