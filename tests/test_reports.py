"""Occupancy reports are rebuilt from the pool history and show each role only what it may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from beds.models import PoolChange
from beds.reports import daily_occupancy
from tests.conftest import login_page_session


async def test_daily_occupancy_follows_the_history_of_each_pool(client, network, sessionmaker) -> None:
    pool = network.pools["a"]  # capacity 10, occupied 4
    headers = network["shelter_a"].headers
    for delta in (2, 1):
        await client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": delta}, headers=headers)
    # The first change happened two days ago, the second today.
    async with sessionmaker() as session:
        first = min(
            (await session.execute(PoolChange.__table__.select().where(PoolChange.pool_id == pool.id))).all(),
            key=lambda row: row.id,
        )
        await session.execute(
            update(PoolChange).where(PoolChange.id == first.id).values(at=datetime.now(UTC) - timedelta(days=2))
        )
        await session.commit()
        report = await daily_occupancy(session, organisation_id=network.orgs["shelter_a"].id, days=4)
    # Shelter A: women pool (10 beds) and family pool (3 beds, empty).
    assert [d.capacity for d in report] == [13, 13, 13, 13]
    assert [d.occupied for d in report] == [4, 6, 6, 7]
    assert report[-1].occupancy_percent == 7 * 100 // 13
    assert report[-1].free == 6


async def test_occupancy_page_shows_own_facilities_to_staff_and_the_network_to_coordinators(client, network) -> None:
    await login_page_session(client, "shelter_b")
    own = await client.get("/reports/occupancy", params={"days": 3})
    assert own.status_code == 200
    assert "Your facilities" in own.text and own.text.count("<tr><td>") == 3
    assert ">8<" in own.text and ">13<" not in own.text  # Bravo's 8 beds, not the network's 21
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await login_page_session(client, "coordinator")
    network_page = await client.get("/reports/occupancy", params={"days": 2})
    assert "Every facility of the network" in network_page.text and ">21<" in network_page.text
    quebec = await client.get("/reports/occupancy", params={"days": 2, "province": "QC"})
    assert ">13<" in quebec.text
    await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
    await login_page_session(client, "police")
    assert (await client.get("/reports/occupancy")).status_code == 403
