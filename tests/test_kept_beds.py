"""Kept beds (issue 12): a standing agreement keeps K beds of a pool for its partner. They are not free to anyone
else, the partner's holds draw on them first, the board shows them as kept only to those who may know the partner,
and a shelter may change K within the rule (more needs free beds, fewer never below what the partner uses)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from beds.holds_models import Agreement
from beds.models import BedPool
from tests.conftest import LiveServer, Network, log_in_page, login_page_session, page_socket, until_live

# Pool "a" of the test network: capacity 10, 4 occupied, so 6 free before any agreement.


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def keep(client: Any, network: Any, beds: int, partner: str = "police", pool: str = "a") -> Any:
    body = {"pool_id": network.pools[pool].id, "beds": beds, "partner_org_id": network.orgs[partner].id}
    return await client.post("/api/v1/agreements", json=body, headers=network["shelter_a"].headers)


async def operation(client: Any, network: Any, who: str = "police") -> str:
    body = {
        "code_name": "WREN",
        "province": "QC",
        "window_start": later(hours=1),
        "window_end": later(hours=5),
        "needs": [{"profile": "women", "count": 1}],
    }
    response = await client.post("/api/v1/operations", json=body, headers=network[who].headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def hold(client: Any, network: Any, who: str, beds: int = 1, **purpose: Any) -> Any:
    body = {"pool_id": network.pools["a"].id, "beds": beds, "expires_at": later(hours=3), **purpose}
    return await client.post("/api/v1/holds", json=body, headers=network[who].headers)


async def case_code(client: Any, network: Any) -> str:
    return (await client.post("/api/v1/cases", json={}, headers=network["worker"].headers)).json()["code"]


async def pool_of(sessionmaker: Any, network: Any) -> BedPool:
    async with sessionmaker() as session:
        pool = await session.get(BedPool, network.pools["a"].id)
        assert pool is not None
        return pool


async def seen_pool(client: Any, network: Any, who: str) -> dict:
    facility = await client.get(f"/api/v1/facilities/{network.facilities['a'].id}", headers=network[who].headers)
    assert facility.status_code == 200, facility.text
    return next(p for p in facility.json()["pools"] if p["id"] == network.pools["a"].id)


async def test_kept_beds_are_not_free_and_go_to_the_partner_first(client, network, sessionmaker) -> None:
    made = await keep(client, network, 2)
    assert made.status_code == 201, made.text
    assert made.json()["kept_unused"] == 2
    pool = await pool_of(sessionmaker, network)
    assert (pool.kept, pool.kept_in_use, pool.free) == (2, 0, 4)
    # Everyone else takes the 4 free beds; the fifth finds none, though 2 beds are kept.
    code = await case_code(client, network)
    other_op = await operation(client, network, "police_other")
    taken = [await hold(client, network, "worker", case_code=code) for _ in range(2)]
    taken += [await hold(client, network, "police_other", operation_id=other_op) for _ in range(2)]
    assert [r.status_code for r in taken] == [201] * 4
    refused = await hold(client, network, "worker", case_code=code)
    assert refused.status_code == 409 and refused.json()["error"] == "insufficient_capacity"
    assert refused.json()["free"] == 0
    # The partner still gets its two, confirmed at once, and then no more.
    op = await operation(client, network)
    mine = await hold(client, network, "police", beds=2, operation_id=op)
    assert mine.status_code == 201 and mine.json()["status"] == "confirmed" and mine.json()["auto_confirmed"]
    assert (await hold(client, network, "police", operation_id=op)).status_code == 409
    pool = await pool_of(sessionmaker, network)
    assert (pool.held, pool.kept_in_use, pool.free) == (6, 2, 0)
    # Released, the kept beds are kept again, not free.
    released = await client.post(f"/api/v1/holds/{mine.json()['id']}/release", headers=network["police"].headers)
    assert released.status_code == 200
    pool = await pool_of(sessionmaker, network)
    assert (pool.held, pool.kept_in_use, pool.free) == (4, 0, 0)


async def test_a_partner_hold_past_its_kept_beds_takes_free_ones_and_waits_for_the_shelter(
    client, network, sessionmaker
) -> None:
    assert (await keep(client, network, 2)).status_code == 201
    op = await operation(client, network)
    bigger = await hold(client, network, "police", beds=3, operation_id=op)
    assert bigger.status_code == 201
    # Two kept beds and one free bed: beyond the agreement, the shelter answers.
    assert bigger.json()["status"] == "requested" and not bigger.json()["auto_confirmed"]
    pool = await pool_of(sessionmaker, network)
    assert (pool.held, pool.kept_in_use, pool.free) == (3, 2, 3)
    listed = (await client.get("/api/v1/agreements", headers=network["shelter_a"].headers)).json()
    assert listed[0]["beds_in_use"] == 2 and listed[0]["kept_unused"] == 0
    declined = await client.post(
        f"/api/v1/holds/{bigger.json()['id']}/decline",
        json={"reason": "Full tonight"},
        headers=network["shelter_a"].headers,
    )
    assert declined.status_code == 200
    pool = await pool_of(sessionmaker, network)
    assert (pool.held, pool.kept_in_use, pool.free) == (0, 0, 4)


async def test_the_partners_operation_plans_and_allocates_its_kept_beds_when_no_bed_is_free(
    client, network, sessionmaker
) -> None:
    assert (await keep(client, network, 2)).status_code == 201
    code = await case_code(client, network)
    taken = await hold(client, network, "worker", beds=4, case_code=code)
    assert taken.status_code == 201, taken.text
    assert (await pool_of(sessionmaker, network)).free == 0
    # Another police service finds no women's bed; the partner's plan finds its two kept ones.
    other = await operation(client, network, "police_other")
    other_plan = await client.post(f"/api/v1/operations/{other}/plan", headers=network["police_other"].headers)
    assert other_plan.json()["proposed"] == [], other_plan.text
    op = await operation(client, network)
    plan = await client.post(f"/api/v1/operations/{op}/plan", headers=network["police"].headers)
    assert [(p["pool_id"], p["beds"]) for p in plan.json()["proposed"]] == [(network.pools["a"].id, 1)], plan.text
    placed = await client.post(f"/api/v1/operations/{op}/allocate", headers=network["police"].headers)
    assert placed.status_code == 201, placed.text
    pool = await pool_of(sessionmaker, network)
    assert (pool.held, pool.kept_in_use, pool.free) == (5, 1, 0)


async def test_changing_k_more_needs_free_beds_fewer_never_below_in_use(client, network, sessionmaker) -> None:
    made = (await keep(client, network, 2)).json()
    headers = network["shelter_a"].headers

    async def set_k(beds: Any, who: str = "shelter_a") -> Any:
        return await client.post(
            f"/api/v1/agreements/{made['id']}/kept", json={"beds": beds}, headers=network[who].headers
        )

    # More: 4 free beds can become kept, not 5.
    too_many = await set_k(7)
    assert too_many.status_code == 409 and too_many.json()["error"] == "kept_needs_free_beds"
    assert too_many.json()["free"] == 4
    assert (await pool_of(sessionmaker, network)).kept == 2
    raised = await set_k(6)
    assert raised.status_code == 200 and raised.json()["beds"] == 6
    pool = await pool_of(sessionmaker, network)
    assert (pool.kept, pool.free) == (6, 0)
    # Fewer: never below the beds the partner's holds use.
    op = await operation(client, network)
    assert (await hold(client, network, "police", beds=3, operation_id=op)).json()["status"] == "confirmed"
    below = await set_k(2)
    assert below.status_code == 409 and below.json()["error"] == "kept_below_in_use"
    assert below.json()["in_use"] == 3
    lowered = await set_k(3)
    assert lowered.status_code == 200 and lowered.json()["kept_unused"] == 0
    pool = await pool_of(sessionmaker, network)
    assert (pool.kept, pool.kept_in_use, pool.held, pool.free) == (3, 3, 3, 3)
    # Bad input and other people change nothing.
    assert (await set_k(0)).status_code == 422
    assert (await set_k(11)).status_code == 422
    assert (await set_k("two")).status_code == 400
    assert (await set_k(4, "shelter_b")).status_code == 404
    assert (await set_k(4, "police")).status_code == 403
    assert (await pool_of(sessionmaker, network)).kept == 3
    # Ended, its unused beds are free; the partner's hold goes on and ends without touching the agreement.
    ended = await client.post(f"/api/v1/agreements/{made['id']}/end", headers=headers)
    assert ended.status_code == 200
    pool = await pool_of(sessionmaker, network)
    assert (pool.kept, pool.kept_in_use, pool.held, pool.free) == (0, 0, 3, 3)
    assert (await set_k(4)).status_code == 409


async def test_a_claim_on_a_full_pool_lends_the_kept_beds_until_a_bed_frees_up(client, network, sessionmaker) -> None:
    made = (await keep(client, network, 2)).json()
    op = await operation(client, network)
    mine = (await hold(client, network, "police", beds=2, operation_id=op)).json()
    # Everything else fills up.
    async with sessionmaker() as session:
        await session.execute(update(BedPool).where(BedPool.id == network.pools["a"].id).values(occupied=8))
        await session.commit()
    claimed = await client.post(
        f"/api/v1/holds/{mine['id']}/claim", json={"beds_used": 2}, headers=network["police"].headers
    )
    assert claimed.status_code == 200, claimed.text
    pool = await pool_of(sessionmaker, network)
    # 10 occupied: no bed to keep again yet, and never past capacity.
    assert (pool.occupied, pool.held, pool.kept, pool.kept_in_use, pool.free) == (10, 0, 2, 2, 0)
    async with sessionmaker() as session:
        agreement = await session.get(Agreement, made["id"])
        assert agreement is not None and (agreement.beds_in_use, agreement.beds_lent) == (0, 2)
    # A departure: that bed is kept for the partner again, not free.
    departed = await client.post(
        f"/api/v1/pools/{network.pools['a'].id}/adjust",
        json={"occupied_delta": -1},
        headers=network["shelter_a"].headers,
    )
    assert departed.status_code == 200
    assert departed.json()["free"] == 0 and departed.json()["kept"] == 1
    pool = await pool_of(sessionmaker, network)
    assert (pool.occupied, pool.kept_in_use, pool.free) == (9, 1, 0)
    # A second departure makes the agreement whole; the third is free to all.
    for _ in range(2):
        await client.post(
            f"/api/v1/pools/{network.pools['a'].id}/adjust",
            json={"occupied_delta": -1},
            headers=network["shelter_a"].headers,
        )
    pool = await pool_of(sessionmaker, network)
    assert (pool.occupied, pool.kept_in_use, pool.kept_unused, pool.free) == (7, 0, 2, 1)
    # Lowering K forgives beds still lent: with 9 occupied again, K from 2 to 1.
    async with sessionmaker() as session:
        await session.execute(
            update(BedPool).where(BedPool.id == network.pools["a"].id).values(occupied=10, kept_in_use=2)
        )
        await session.execute(update(Agreement).where(Agreement.id == made["id"]).values(beds_lent=2))
        await session.commit()
    lowered = await client.post(
        f"/api/v1/agreements/{made['id']}/kept", json={"beds": 1}, headers=network["shelter_a"].headers
    )
    assert lowered.status_code == 200 and lowered.json()["beds_lent"] == 1
    pool = await pool_of(sessionmaker, network)
    assert (pool.kept, pool.kept_in_use, pool.free) == (1, 1, 0)


async def test_the_api_shows_kept_beds_by_name_only_to_those_who_may_know_the_partner(client, network) -> None:
    assert (await keep(client, network, 2)).status_code == 201
    for who in ("shelter_a", "police", "coordinator"):
        pool = await seen_pool(client, network, who)
        assert pool["kept"] == 2 and pool["free"] == 4, who
        assert pool["kept_for"] == [
            {"organisation_id": network.orgs["police"].id, "name": network.orgs["police"].name, "beds": 2}
        ], who
        assert pool["out_of_service"] == 0
    for who in ("police_other", "worker", "shelter_b"):
        pool = await seen_pool(client, network, who)
        # Not free, for a reason not told: the counts still add up to capacity.
        assert pool["kept"] == 0 and pool["kept_for"] == [] and pool["free"] == 4, who
        assert pool["occupied"] + pool["out_of_service"] + pool["held"] + pool["free"] == pool["capacity"]
    listed = (await client.get("/api/v1/facilities", headers=network["police_other"].headers)).json()
    assert all(p["kept_for"] == [] for f in listed for p in f["pools"])
    assert (
        network.orgs["police"].name
        not in (await client.get("/api/v1/facilities", headers=network["worker"].headers)).text
    )


async def test_the_board_and_the_facility_page_say_kept_for_whom_to_the_parties(client, network) -> None:
    assert (await keep(client, network, 2)).status_code == 201
    kept_words = f"2 kept for {network.orgs['police'].name}"
    for who, sees in (("shelter_a", True), ("police", True), ("worker", False)):
        assert (await login_page_session(client, who)).status_code in (302, 303)
        board = await client.get("/", params={"province": "QC", "city": "Montréal"})
        facility = await client.get(f"/facilities/{network.facilities['a'].id}")
        assert board.status_code == 200 and facility.status_code == 200
        assert (kept_words in board.text) is sees, who
        assert (kept_words in facility.text) is sees, who
        assert ("kept for" in facility.text) is sees, who
        await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})


async def test_the_agreements_page_explains_the_rule_and_asks_before_lowering(client, network, sessionmaker) -> None:
    made = (await keep(client, network, 3)).json()
    assert (await login_page_session(client, "shelter_a")).status_code in (302, 303)
    page = await client.get("/agreements")
    assert "never fewer than the partner" in page.text
    token = client.cookies["csrftoken"]
    # Lowering: the page asks first and changes nothing.
    asked = await client.post(f"/agreements/{made['id']}/kept", data={"beds": "1", "_csrf_token": token})
    assert asked.status_code == 200 and "Keep 1 bed from now on?" in asked.text
    assert "2 beds become free to everyone at once" in asked.text
    assert (await pool_of(sessionmaker, network)).kept == 3
    done = await client.post(
        f"/agreements/{made['id']}/kept", data={"beds": "1", "confirm": "yes", "_csrf_token": token}
    )
    assert done.status_code in (200, 303)
    assert (await pool_of(sessionmaker, network)).kept == 1
    # Raising past the free beds comes back beside the field with what was typed, in words.
    refused = await client.post(f"/agreements/{made['id']}/kept", data={"beds": "9", "_csrf_token": token})
    assert refused.status_code == 409
    assert "Only 5 bed(s) of this pool are free" in refused.text and 'value="9"' in refused.text
    typo = await client.post(f"/agreements/{made['id']}/kept", data={"beds": "lots", "_csrf_token": token})
    assert typo.status_code == 422 and "Type a whole number of beds" in typo.text
    raised = await client.post(f"/agreements/{made['id']}/kept", data={"beds": "2", "_csrf_token": token})
    assert raised.status_code in (200, 303)
    async with sessionmaker() as session:
        agreement = (await session.execute(select(Agreement))).scalar_one()
        assert agreement.beds == 2


def test_the_migration_keeps_what_agreements_promised_within_capacity() -> None:
    """Agreements made before beds were kept: their holds drew on them, their unused beds are kept where the pool
    has them free and lent otherwise, and no pool passes its capacity."""
    import asyncio
    import tempfile
    from datetime import datetime

    from sqlalchemy import MetaData, insert

    from exchange.db import make_engine
    from exchange.migrations import upgrade
    from tests.conftest import BASE_DB, _create_pg_database, _drop_pg_database

    url = (
        _create_pg_database(BASE_DB)
        if BASE_DB.startswith("postgresql")
        else f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='refuge-kept-')}/m.db"
    )

    def row(table: Any, **values: Any) -> dict:
        """`values`, and a plain value for every other NOT NULL column without a default."""
        filler = {int: 0, bool: False, str: "x"}
        for column in table.columns:
            if column.name in values or column.nullable or column.server_default is not None:
                continue
            kind = column.type.python_type
            values[column.name] = datetime.now(UTC) if kind is datetime else filler.get(kind, "x")
        return values

    async def run(step: Any) -> Any:
        engine = make_engine(url)
        async with engine.begin() as conn:
            result = await conn.run_sync(step)
        await engine.dispose()
        return result

    def seed(conn: Any) -> None:
        meta = MetaData()
        meta.reflect(conn)
        t = meta.tables
        conn.execute(
            insert(t["organisation"]).values(row(t["organisation"], id="shelter", name="Shelter", kind="SHELTER"))
        )
        conn.execute(
            insert(t["organisation"]).values(row(t["organisation"], id="police", name="Police", kind="POLICE"))
        )
        conn.execute(insert(t["user_account"]).values(row(t["user_account"], id="u", organisation_id="shelter")))
        facility = row(t["facility"], id="f", organisation_id="shelter", kind="VAW_SHELTER", security_level="STANDARD")
        conn.execute(insert(t["facility"]).values(facility))
        pool = row(t["bed_pool"], id="p", facility_id="f", profile="WOMEN", capacity=10, occupied=7, held=2)
        conn.execute(insert(t["bed_pool"]).values(pool))
        agreement = row(
            t["standing_agreement"], id="a", pool_id="p", facility_id="f", partner_org_id="police", beds=4,
            beds_in_use=2, scope="all", active=True, created_by="u",
        )  # fmt: skip
        conn.execute(insert(t["standing_agreement"]).values(agreement))
        hold = row(
            t["bed_hold"], id="h", pool_id="p", facility_id="f", facility_org_id="shelter", beds=2,
            status="confirmed", operation_id=None, case_code="C-1", requested_by="u", requested_by_org="police",
            agreement_id="a", auto_confirmed=True,
        )  # fmt: skip
        conn.execute(insert(t["bed_hold"]).values(hold))

    def read(conn: Any) -> tuple:
        pool = conn.exec_driver_sql("SELECT kept, kept_in_use FROM bed_pool WHERE id = 'p'").one()
        agreement = conn.exec_driver_sql("SELECT beds, beds_in_use, beds_lent FROM standing_agreement").one()
        hold = conn.exec_driver_sql("SELECT kept_beds FROM bed_hold").one()
        return tuple(pool), tuple(agreement), tuple(hold)

    try:
        upgrade(url, "d1a0f1000001")
        asyncio.run(run(seed))
        upgrade(url, "d2b0f2000002")
        # 1 bed was free: the agreement keeps it, and lends the other until a bed frees up.
        assert asyncio.run(run(read)) == ((4, 3), (4, 2, 1), (2,))
    finally:
        if url.startswith("postgresql"):
            _drop_pg_database(url)


async def test_a_live_row_says_kept_for_whom_to_the_parties_and_adds_up_for_everyone(
    live_server: LiveServer, network: Network
) -> None:
    """The board's row after a change, as each audience receives it over its socket (exchange/board/live.py)."""
    pool = network.pools["a"]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        assert (await keep(http, network, 2)).status_code == 201
        async with contextlib.AsyncExitStack() as stack:
            cookies = {}
            for who in ("shelter_a", "police", "worker", "police_other"):
                own = await stack.enter_async_context(httpx.AsyncClient(base_url=live_server.url))
                cookies[who] = await log_in_page(own, who)
            sockets = {who: await stack.enter_async_context(page_socket(live_server, c)) for who, c in cookies.items()}
            for ws in sockets.values():
                await until_live(ws)
            moved = await http.post(
                f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=network["shelter_a"].headers
            )
            assert moved.status_code == 200, moved.text
            kept_words = f"2 kept for {network.orgs['police'].name}"
            for who, sees in (("shelter_a", True), ("police", True), ("worker", False), ("police_other", False)):
                row = await _row_of(sockets[who], pool.id)
                assert (kept_words in row) is sees, (who, row)
                assert ("kept for" in row) is sees, (who, row)
                # Capacity 10: 5 occupied, 3 free; the kept 2 are "not free" to those not told of them.
                counts = [int(n) for n in re.findall(r'<td[^>]*data-label="[^"]*">(?:<strong>)?(\d+)', row)[:4]]
                assert counts == ([3, 0, 5, 0] if sees else [3, 0, 5, 2]), (who, counts)


async def _row_of(ws: Any, pool_id: str, within_s: float = 3.0) -> str:
    async with asyncio.timeout(within_s):
        while True:
            message = await ws.recv()
            if f'id="pool-{pool_id}"' in message:
                return message
