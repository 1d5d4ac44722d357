"""Pool counts through the API: adjust, versioned put, history, surge beds; never a negative free count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from beds.errors import Invalid
from beds.models import BedPool, PoolChange, SurgeBeds
from beds.pools import SURGE_MAX, add_surge
from beds.timeutil import utcnow
from tests.conftest import eventually


async def _pool(sessionmaker, pool_id: str) -> BedPool:
    async with sessionmaker() as session:
        return await session.get(BedPool, pool_id)


async def test_adjust_moves_counts_and_writes_history(client, network, sessionmaker) -> None:
    pool = network.pools["a"]
    staff = network["shelter_a"]
    response = await client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 2}, headers=staff.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["occupied"] == 6 and body["free"] == 4 and body["version"] == 2
    assert set(body) == {
        "id",
        "profile",
        "capacity",
        "occupied",
        "out_of_service",
        "held",
        "free",
        "version",
        "updated_at",
        "kept",
        "kept_for",
    }
    response = await client.post(
        f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": -1, "out_of_service_delta": 1}, headers=staff.headers
    )
    assert response.json()["occupied"] == 5 and response.json()["out_of_service"] == 1
    async with sessionmaker() as session:
        changes = (
            (await session.execute(select(PoolChange).where(PoolChange.pool_id == pool.id).order_by(PoolChange.id)))
            .scalars()
            .all()
        )
    assert [(c.occupied_before, c.occupied_after, c.actor_user_id, c.reason) for c in changes] == [
        (4, 6, staff.id, "adjust"),
        (6, 5, staff.id, "adjust"),
    ]
    assert changes[1].out_of_service_before == 0 and changes[1].out_of_service_after == 1
    history = await client.get(f"/api/v1/pools/{pool.id}/history", headers=staff.headers)
    assert history.status_code == 200 and len(history.json()) == 2


async def test_adjust_that_would_make_free_negative_is_409_and_changes_nothing(client, network, sessionmaker) -> None:
    pool = network.pools["a"]  # capacity 10, occupied 4
    response = await client.post(
        f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 7}, headers=network["shelter_a"].headers
    )
    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_capacity"
    assert response.json()["free"] == 6
    after = await _pool(sessionmaker, pool.id)
    assert (after.occupied, after.version) == (4, 1)
    async with sessionmaker() as session:
        assert (await session.execute(select(PoolChange).where(PoolChange.pool_id == pool.id))).first() is None


async def test_adjust_below_zero_and_bad_bodies(client, network, sessionmaker) -> None:
    pool = network.pools["a"]
    headers = network["shelter_a"].headers
    below = await client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": -5}, headers=headers)
    assert below.status_code == 422 and below.json()["error"] == "invalid_counts"
    zero = await client.post(f"/api/v1/pools/{pool.id}/adjust", json={}, headers=headers)
    assert zero.status_code == 422
    for body in ({"occupied_delta": "one"}, {"occupied_delta": 1.5}, {"occupied_delta": 1, "capacity": 99}, []):
        assert (await client.post(f"/api/v1/pools/{pool.id}/adjust", json=body, headers=headers)).status_code == 400, (
            body
        )
    missing = await client.post("/api/v1/pools/nope/adjust", json={"occupied_delta": 1}, headers=headers)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert (await _pool(sessionmaker, pool.id)).version == 1


async def test_put_with_stale_version_is_409(client, network, sessionmaker) -> None:
    pool = network.pools["a"]
    headers = network["shelter_a"].headers
    first = await client.put(
        f"/api/v1/pools/{pool.id}",
        json={"capacity": 12, "occupied": 5, "out_of_service": 1, "version": 1},
        headers=headers,
    )
    assert first.status_code == 200
    assert first.json() | {"updated_at": None, "id": None} == {
        "id": None,
        "profile": "women",
        "capacity": 12,
        "occupied": 5,
        "out_of_service": 1,
        "held": 0,
        "free": 6,
        "version": 2,
        "updated_at": None,
        "kept": 0,
        "kept_for": [],
    }
    stale = await client.put(
        f"/api/v1/pools/{pool.id}",
        json={"capacity": 3, "occupied": 0, "out_of_service": 0, "version": 1},
        headers=headers,
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "version_conflict"
    assert (await _pool(sessionmaker, pool.id)).capacity == 12
    impossible = await client.put(
        f"/api/v1/pools/{pool.id}",
        json={"capacity": 3, "occupied": 5, "out_of_service": 0, "version": 2},
        headers=headers,
    )
    assert impossible.status_code == 409 and impossible.json()["error"] == "insufficient_capacity"
    negative = await client.put(
        f"/api/v1/pools/{pool.id}",
        json={"capacity": -1, "occupied": 0, "out_of_service": 0, "version": 2},
        headers=headers,
    )
    assert negative.status_code == 422
    after = await _pool(sessionmaker, pool.id)
    assert (after.capacity, after.occupied, after.version) == (12, 5, 2)


async def test_concurrent_adjusts_never_overbook(client, network, sessionmaker) -> None:
    pool = network.pools["a"]  # 6 free
    headers = network["shelter_a"].headers
    responses = await asyncio.gather(
        *[
            client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 1}, headers=headers)
            for _ in range(20)
        ]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 6 and codes.count(409) == 14
    after = await _pool(sessionmaker, pool.id)
    assert after.occupied == 10 and after.free == 0 and after.version == 7


async def test_surge_beds_add_capacity_and_expire_on_their_own(client, network, sessionmaker) -> None:
    pool = network.pools["b"]  # capacity 8, occupied 2
    headers = network["shelter_b"].headers
    expires = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    response = await client.post(
        f"/api/v1/pools/{pool.id}/surge",
        json={"beds": 5, "expires_at": expires, "reason": "extreme cold"},
        headers=headers,
    )
    assert response.status_code == 201
    assert response.json()["capacity"] == 13
    # Two of the surge beds get used; then the surge ends.
    await client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": 9}, headers=headers)
    async with sessionmaker() as session:
        await session.execute(update(SurgeBeds).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()

    # The sweeper in the app's lifespan withdraws them with nobody acting.
    async def withdrawn() -> BedPool | None:
        pool_now = await _pool(sessionmaker, pool.id)
        return pool_now if pool_now.capacity < 13 else None

    after = await eventually(withdrawn)
    # Only the free surge beds leave at once: nobody is put out on the street.
    assert (after.capacity, after.occupied, after.free) == (11, 11, 0)
    await client.post(f"/api/v1/pools/{pool.id}/adjust", json={"occupied_delta": -3}, headers=headers)

    async def fully_withdrawn() -> BedPool | None:
        pool_now = await _pool(sessionmaker, pool.id)
        return pool_now if pool_now.capacity == 8 else None

    after = await eventually(fully_withdrawn)
    assert (after.capacity, after.occupied) == (8, 8)
    async with sessionmaker() as session:
        surge = (await session.execute(select(SurgeBeds))).scalar_one()
        reasons = (
            (await session.execute(select(PoolChange.reason).where(PoolChange.pool_id == pool.id))).scalars().all()
        )
    assert surge.beds_remaining == 0
    assert reasons.count("surge_expired") == 2 and "surge_added" in reasons


async def test_surge_rejects_bad_input(client, network) -> None:
    pool = network.pools["b"]
    headers = network["shelter_b"].headers
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (
        await client.post(f"/api/v1/pools/{pool.id}/surge", json={"beds": 3, "expires_at": past}, headers=headers)
    ).status_code == 422
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        await client.post(f"/api/v1/pools/{pool.id}/surge", json={"beds": 0, "expires_at": future}, headers=headers)
    ).status_code == 422
    naive = (datetime.now() + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert (
        await client.post(f"/api/v1/pools/{pool.id}/surge", json={"beds": 1, "expires_at": naive}, headers=headers)
    ).status_code == 422


async def test_surge_beds_last_at_most_fourteen_days(client, network, sessionmaker) -> None:
    """The cap is the domain's: the API refuses a longer surge as the facility page does."""
    pool = network.pools["b"]
    headers = network["shelter_b"].headers
    too_long = (datetime.now(UTC) + SURGE_MAX + timedelta(minutes=5)).isoformat()
    refused = await client.post(
        f"/api/v1/pools/{pool.id}/surge", json={"beds": 3, "expires_at": too_long}, headers=headers
    )
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_expiry"
    within = (datetime.now(UTC) + SURGE_MAX - timedelta(minutes=5)).isoformat()
    opened = await client.post(
        f"/api/v1/pools/{pool.id}/surge", json={"beds": 3, "expires_at": within}, headers=headers
    )
    assert opened.status_code == 201 and opened.json()["capacity"] == 11
    async with sessionmaker() as session:
        for expires_at in (utcnow() + SURGE_MAX + timedelta(seconds=1), utcnow() - timedelta(seconds=1)):
            with pytest.raises(Invalid) as refused_here:
                await add_surge(session, pool.id, beds=1, expires_at=expires_at, reason="", actor_user_id="x")
            assert refused_here.value.code == "invalid_expiry"
        assert len((await session.execute(select(SurgeBeds))).scalars().all()) == 1
