"""Occupancy per night as CSV for a period (issue 14): rebuilt from the pool history, by facility or by city, for
coordinators only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.models import PoolChange
from tests.conftest import Network

MONTREAL = ZoneInfo("America/Toronto")


async def test_nights_follow_the_history_by_facility_and_by_city(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    today = datetime.now(MONTREAL).date()
    three_days_ago = today - timedelta(days=3)
    async with sessionmaker() as session:
        # Three days ago at 22:00 Montréal time two people arrived and a bed was held: 4 → 6 occupied, 0 → 1 held.
        session.add(
            PoolChange(
                pool_id=network.pools["a"].id,
                reason="arrival",
                at=datetime.combine(three_days_ago, time(22, 0), tzinfo=MONTREAL).astimezone(UTC),
                capacity_before=10,
                occupied_before=4,
                out_of_service_before=0,
                held_before=0,
                capacity_after=10,
                occupied_after=6,
                out_of_service_after=0,
                held_after=1,
            )
        )
        await session.commit()
    h = network["coordinator"].headers
    start, end = today - timedelta(days=5), today - timedelta(days=1)
    answer = await client.get("/api/v1/occupancy.csv", params={"start": str(start), "end": str(end)}, headers=h)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == ["place", "province", "city", "profile", "night", "capacity", "occupied", "held"]
    alpha = {r["night"]: (r["capacity"], r["occupied"], r["held"]) for r in rows if r["place"] == "Maison Alpha"
             and r["profile"] == "women"}  # fmt: skip
    assert alpha == {
        str(start): ("10", "4", "0"),
        str(start + timedelta(days=1)): ("10", "4", "0"),
        str(three_days_ago): ("10", "6", "1"),
        str(today - timedelta(days=2)): ("10", "6", "1"),
        str(end): ("10", "6", "1"),
    }
    assert len(rows) == 5 * 3  # three pools, five nights

    by_city = await client.get(
        "/api/v1/occupancy.csv", params={"start": str(end), "end": str(end), "by": "city"}, headers=h
    )
    cities = {(r["place"], r["profile"]): r["occupied"] for r in csv.DictReader(io.StringIO(by_city.text))}
    assert cities == {("Montréal, QC", "women"): "6", ("Montréal, QC", "family"): "0", ("Toronto, ON", "men"): "2"}
    # A night not over yet is not reported.
    tonight = await client.get("/api/v1/occupancy.csv", params={"start": str(today), "end": str(today)}, headers=h)
    assert tonight.text.strip().count("\n") == 0


async def test_only_coordinators_and_a_sensible_period(client: AsyncTestClient, network: Network) -> None:
    for who in ("police", "admin", "auditor", "shelter_a"):
        assert (await client.get("/api/v1/occupancy.csv", headers=network[who].headers)).status_code == 403
    assert (await client.get("/api/v1/occupancy.csv")).status_code == 401
    h = network["coordinator"].headers
    backwards = await client.get(
        "/api/v1/occupancy.csv", params={"start": "2026-11-10", "end": "2026-11-01"}, headers=h
    )
    assert backwards.status_code == 422 and backwards.json()["error"] == "invalid_period"
    too_long = await client.get("/api/v1/occupancy.csv", params={"start": "2024-01-01", "end": "2026-11-01"}, headers=h)
    assert too_long.status_code == 422
    grouping = await client.get("/api/v1/occupancy.csv", params={"by": "operation"}, headers=h)
    assert grouping.status_code == 422 and grouping.json()["error"] == "invalid_grouping"
    default = await client.get("/api/v1/occupancy.csv", headers=h)
    assert default.status_code == 200 and len(default.text.strip().splitlines()) == 1 + 30 * 3
