"""No overbooking under concurrency: many real concurrent requests through the app, on SQLite and PostgreSQL
(each request has its own session and connection), with the invariant read back after every round."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from beds.holds_models import ACTIVE_STATUSES, Hold
from beds.models import BedPool, Profile


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def new_operation(client: Any, network: Any, needs: list[dict] | None = None) -> str:
    response = await client.post(
        "/api/v1/operations",
        json={
            "code_name": "ORCHARD",
            "province": "QC",
            "window_start": later(hours=1),
            "window_end": later(hours=5),
            "needs": needs or [{"profile": "women", "count": 1}],
        },
        headers=network["police"].headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def add_pools(sessionmaker: Any, facility_id: str, count: int, capacity: int) -> list[str]:
    async with sessionmaker() as session:
        pools = [BedPool(facility_id=facility_id, profile=Profile.WOMEN, capacity=capacity) for _ in range(count)]
        session.add_all(pools)
        await session.commit()
        return [p.id for p in pools]


async def check_invariant(sessionmaker: Any) -> None:
    """Every pool within capacity, and its `held` equal to the beds of its active holds."""
    async with sessionmaker() as session:
        pools = (await session.execute(select(BedPool))).scalars().all()
        held = dict(
            (
                await session.execute(
                    select(Hold.pool_id, func.sum(Hold.beds))
                    .where(Hold.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined]
                    .group_by(Hold.pool_id)
                )
            ).all()
        )
    for pool in pools:
        assert pool.occupied + pool.out_of_service + pool.held <= pool.capacity, pool
        assert min(pool.occupied, pool.out_of_service, pool.held) >= 0, pool
        assert pool.held == (held.get(pool.id) or 0), (pool.id, pool.held, held.get(pool.id))


async def test_200_concurrent_requests_for_the_last_10_beds_hold_exactly_10(client, network, sessionmaker) -> None:
    (pool_id,) = await add_pools(sessionmaker, network.facilities["a"].id, 1, 10)
    operation_id = await new_operation(client, network)
    body = {"pool_id": pool_id, "beds": 1, "operation_id": operation_id, "expires_at": later(hours=2)}
    responses = await asyncio.gather(
        *(client.post("/api/v1/holds", json=body, headers=network["police"].headers) for _ in range(200))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 10 and codes.count(409) == 190, codes
    assert all(
        r.json()["error"] == "insufficient_capacity" and r.json()["free"] == 0
        for r in responses
        if r.status_code == 409
    )
    async with sessionmaker() as session:
        pool = await session.get(BedPool, pool_id)
        assert pool is not None and pool.held == 10 and pool.free == 0
        assert (await session.execute(select(func.count()).select_from(Hold))).scalar_one() == 10
    await check_invariant(sessionmaker)


async def test_concurrent_retries_with_one_idempotency_key_hold_once(client, network, sessionmaker) -> None:
    (pool_id,) = await add_pools(sessionmaker, network.facilities["a"].id, 1, 10)
    operation_id = await new_operation(client, network)
    body = {"pool_id": pool_id, "beds": 3, "operation_id": operation_id, "expires_at": later(hours=2)}
    headers = {**network["police"].headers, "Idempotency-Key": "op-orchard-1"}
    responses = await asyncio.gather(*(client.post("/api/v1/holds", json=body, headers=headers) for _ in range(30)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201][:3]
    assert len({r.json()["id"] for r in responses}) == 1
    async with sessionmaker() as session:
        pool = await session.get(BedPool, pool_id)
        assert pool is not None and pool.held == 3
    # Allocations too: a retried allocate places its holds once.
    allocation_op = await new_operation(client, network, [{"profile": "women", "count": 2}])
    alloc_headers = {**network["police"].headers, "Idempotency-Key": "alloc-1"}
    allocs = await asyncio.gather(
        *(
            client.post(f"/api/v1/operations/{allocation_op}/allocate", json={}, headers=alloc_headers)
            for _ in range(10)
        )
    )
    assert {r.status_code for r in allocs} == {201}, [r.text for r in allocs][:2]
    assert len({tuple(h["id"] for h in r.json()["holds"]) for r in allocs}) == 1
    await check_invariant(sessionmaker)


async def test_rounds_of_mixed_concurrent_steps_never_break_the_invariant(client, network, sessionmaker) -> None:
    rng = random.Random(7)
    pools = await add_pools(sessionmaker, network.facilities["a"].id, 6, 6)
    operation_id = await new_operation(client, network)
    police, staff, coordinator = network["police"].headers, network["shelter_a"].headers, network["coordinator"].headers
    statuses: list[int] = []

    async def post(path: str, body: Any, headers: dict[str, str]) -> Any:
        response = await client.post(path, json=body, headers=headers)
        statuses.append(response.status_code)
        return response

    async def new_hold() -> None:
        await post(
            "/api/v1/holds",
            {
                "pool_id": rng.choice(pools),
                "beds": rng.randint(1, 3),
                "operation_id": operation_id,
                "expires_at": later(hours=3),
            },
            police,
        )

    async def adjust() -> None:
        await post(f"/api/v1/pools/{rng.choice(pools)}/adjust", {"occupied_delta": rng.choice([-1, 1, 2])}, staff)

    async def allocate() -> None:
        op = await new_operation(client, network, [{"profile": "women", "count": rng.randint(1, 4)}])
        await post(f"/api/v1/operations/{op}/allocate", {}, rng.choice([police, coordinator]))

    for _round in range(6):
        async with sessionmaker() as session:
            active = (
                await session.execute(select(Hold.id, Hold.status).where(Hold.status.in_(ACTIVE_STATUSES)))  # type: ignore[attr-defined]
            ).all()
            # Some holds run out while the round runs: the sweeper and the reads race the other steps.
            expiring = [hid for hid, _ in active if rng.random() < 0.2]
            if expiring:
                await session.execute(
                    update(Hold)
                    .where(Hold.id.in_(expiring))
                    .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))  # type: ignore[attr-defined]
                )
                await session.commit()
        steps = [new_hold() for _ in range(25)] + [adjust() for _ in range(10)] + [allocate() for _ in range(3)]
        for hold_id, status in active:
            choice = rng.random()
            if choice < 0.25:
                steps.append(post(f"/api/v1/holds/{hold_id}/release", None, police))
            elif choice < 0.45:
                steps.append(post(f"/api/v1/holds/{hold_id}/claim", {"beds_used": 1}, staff))
            elif choice < 0.65:
                steps.append(post(f"/api/v1/holds/{hold_id}/confirm", None, staff))
            elif choice < 0.75:
                steps.append(post(f"/api/v1/holds/{hold_id}/decline", {"reason": "full tonight"}, staff))
            # Two steps on the same hold at once: exactly one may win.
            if status == "confirmed" and rng.random() < 0.3:
                steps.append(post(f"/api/v1/holds/{hold_id}/claim", {"beds_used": 1}, police))
            steps.append(client.get(f"/api/v1/holds/{hold_id}", headers=police))
        rng.shuffle(steps)
        await asyncio.gather(*steps)
        await check_invariant(sessionmaker)
    assert 500 not in statuses, "a step failed on the server (deadlock or bug)"
    assert set(statuses) <= {200, 201, 409, 422}, sorted(set(statuses))
    assert statuses.count(201) > 20 and statuses.count(409) > 0
