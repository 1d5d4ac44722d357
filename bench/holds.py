"""Hold throughput through the real API on PostgreSQL, beside the same SQL run directly with asyncpg.

    .venv/bin/python -m bench.holds [--clients 32] [--holds 40] [--pools 8] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Creates a fresh database `bench_<random>`, builds the schema, seeds a shelter with a few pools and a police
planner, starts `refuge serve` on it as a subprocess, and has N concurrent httpx clients create and release
holds (few pools, so they contend on the same rows). Then runs the same statements (conditional UPDATE of
the pool, history row, hold insert; then the release) straight through asyncpg with N connections. Prints
holds per second for both, their ratio, and the number of invariant violations found after each run (must
be 0). Drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from beds.models import BedPool, Facility, FacilityKind, Profile
from bench.common import ScratchDatabase, free_port, wait_until_up
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import hash_password, issue_token
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata

ROOT = Path(__file__).resolve().parent.parent
CAPACITY = 1000


async def seed(url: str, pools: int) -> tuple[str, list[str]]:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with make_sessionmaker(engine)() as session:
        shelter = Organisation(name="Bench shelter", kind=OrgKind.SHELTER, province="QC")
        police = Organisation(name="Bench police", kind=OrgKind.POLICE, province="QC")
        session.add_all([shelter, police])
        await session.flush()
        facility = Facility(
            organisation_id=shelter.id,
            name="Bench house",
            kind=FacilityKind.VAW_SHELTER,
            province="QC",
            city="Montréal",
        )
        planner = User(
            username="bench-police",
            password_hash=hash_password("bench-password-1"),
            organisation_id=police.id,
            roles=[Role.POLICE_PLANNER.value],
        )
        session.add_all([facility, planner])
        await session.flush()
        pool_rows = [BedPool(facility_id=facility.id, profile=Profile.WOMEN, capacity=CAPACITY) for _ in range(pools)]
        session.add_all(pool_rows)
        await session.commit()
        token = await issue_token(session, planner)
        ids = [p.id for p in pool_rows]
    await engine.dispose()
    return token, ids


async def violations(dsn: str) -> int:
    """Pools over capacity, or whose `held` differs from the beds of their active holds."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            """
            SELECT count(*) FROM bed_pool p
            LEFT JOIN (SELECT pool_id, sum(beds) AS beds FROM bed_hold
                       WHERE status IN ('requested', 'confirmed') GROUP BY pool_id) h ON h.pool_id = p.id
            WHERE p.occupied + p.out_of_service + p.held > p.capacity OR p.held <> coalesce(h.beds, 0)
            """
        )
    finally:
        await conn.close()


async def run_api(base_url: str, token: str, pools: list[str], clients: int, holds: int) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as http:
        op = await http.post(
            "/api/v1/operations",
            json={
                "code_name": "BENCH",
                "province": "QC",
                "window_start": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "window_end": (datetime.now(UTC) + timedelta(hours=9)).isoformat(),
                "needs": [{"profile": "women", "count": 1}],
            },
        )
        op.raise_for_status()
        operation_id = op.json()["id"]
        expires = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        failures = 0

        async def client(n: int) -> None:
            nonlocal failures
            rng = random.Random(n)
            for i in range(holds):
                made = await http.post(
                    "/api/v1/holds",
                    json={
                        "pool_id": rng.choice(pools),
                        "beds": rng.randint(1, 3),
                        "operation_id": operation_id,
                        "expires_at": expires,
                    },
                    headers={"Idempotency-Key": f"bench-{n}-{i}"},
                )
                if made.status_code != 201:
                    failures += 1
                    continue
                released = await http.post(f"/api/v1/holds/{made.json()['id']}/release")
                failures += released.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - start
    return clients * holds / elapsed, failures


async def run_direct(dsn: str, pools: list[str], clients: int, holds: int, org_user: tuple[str, str, str]) -> float:
    """The same writes with no web stack: one transaction to hold, one to release, as the domain does them."""
    user_id, org_id, facility_org = org_user
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    facility_id = await pool.fetchval("SELECT facility_id FROM bed_pool LIMIT 1")

    async def client(n: int) -> None:
        rng = random.Random(1000 + n)
        async with pool.acquire() as conn:
            for _ in range(holds):
                pool_id, beds, now = rng.choice(pools), rng.randint(1, 3), datetime.now(UTC)
                hold_id = uuid.uuid4().hex
                async with conn.transaction():
                    row = await conn.fetchrow(
                        "UPDATE bed_pool SET held = held + $2, version = version + 1, updated_at = $3 WHERE id = $1 "
                        "AND capacity - occupied - out_of_service - held >= $2 RETURNING capacity, occupied, "
                        "out_of_service, held",
                        pool_id,
                        beds,
                        now,
                    )
                    await conn.execute(
                        "INSERT INTO pool_change (pool_id, actor_user_id, reason, at, capacity_before, occupied_before,"
                        " out_of_service_before, held_before, capacity_after, occupied_after, out_of_service_after,"
                        " held_after) VALUES ($1, $2, 'hold_requested', $3, $4, $5, $6, $7, $4, $5, $6, $8)",
                        pool_id,
                        user_id,
                        now,
                        row["capacity"],
                        row["occupied"],
                        row["out_of_service"],
                        row["held"] - beds,
                        row["held"],
                    )
                    await conn.execute(
                        "INSERT INTO bed_hold (id, pool_id, facility_id, facility_org_id, beds, status, expires_at,"
                        " service_name, requested_by, requested_by_org, auto_confirmed, respond_by,"
                        " flagged_unanswered, created_at, updated_at, case_code)"
                        " VALUES ($1, $2, $3, $4, $5, 'requested', $6, 'Bench police', $7, $8, false, $6, false,"
                        " $9, $9, 'C-BENCH')",
                        hold_id,
                        pool_id,
                        facility_id,
                        facility_org,
                        beds,
                        now + timedelta(hours=2),
                        user_id,
                        org_id,
                        now,
                    )
                async with conn.transaction():
                    got = await conn.fetchrow(
                        "UPDATE bed_hold SET status = 'released', updated_at = $2 WHERE id = $1 AND status IN "
                        "('requested', 'confirmed') RETURNING pool_id, beds",
                        hold_id,
                        now,
                    )
                    row = await conn.fetchrow(
                        "UPDATE bed_pool SET held = held - $2, version = version + 1 WHERE id = $1 AND held >= $2 "
                        "RETURNING capacity, occupied, out_of_service, held",
                        got["pool_id"],
                        got["beds"],
                    )
                    await conn.execute(
                        "INSERT INTO pool_change (pool_id, actor_user_id, reason, at, capacity_before, occupied_before,"
                        " out_of_service_before, held_before, capacity_after, occupied_after, out_of_service_after,"
                        " held_after) VALUES ($1, $2, 'hold_released', $3, $4, $5, $6, $7, $4, $5, $6, $8)",
                        got["pool_id"],
                        user_id,
                        now,
                        row["capacity"],
                        row["occupied"],
                        row["out_of_service"],
                        row["held"] + beds,
                        row["held"],
                    )

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - start
    await pool.close()
    return clients * holds / elapsed


async def ids_for_direct(dsn: str) -> tuple[str, str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT u.id AS uid, u.organisation_id AS org, f.organisation_id AS forg FROM user_account u, facility f "
            "LIMIT 1"
        )
        return row["uid"], row["org"], row["forg"]
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--holds", type=int, default=40, help="holds created and released per client")
    parser.add_argument("--pools", type=int, default=8)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    database = ScratchDatabase.beside(args.pg)
    dsn, sa_url = database.dsn, database.sqlalchemy_url

    database.create()
    server = None
    try:
        token, pools = asyncio.run(seed(sa_url, args.pools))
        port = args.port or free_port()
        env = {
            **os.environ,
            "DATABASE_URL": sa_url,
            "BASE_URL": f"http://127.0.0.1:{port}",
            "SWEEP_INTERVAL_SECONDS": "5",
            # Throughput, not the limits on unanswered requests: N clients of one planner hold at once.
            "HOLD_LIMIT_PER_REQUESTER": "100000",
            "HOLD_LIMIT_PER_ORGANISATION": "100000",
        }
        env.pop("REDIS_URL", None)
        env["PYTHONPATH"] = str(ROOT)  # serve this checkout, whatever the venv was installed from
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "refuge"), "serve", "--port", str(port)], env=env, cwd=ROOT
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(base_url, server)
        api_rate, failures = asyncio.run(run_api(base_url, token, pools, args.clients, args.holds))
        api_violations = asyncio.run(violations(dsn))
        direct_rate = asyncio.run(run_direct(dsn, pools, args.clients, args.holds, asyncio.run(ids_for_direct(dsn))))
        direct_violations = asyncio.run(violations(dsn))
        print(f"clients={args.clients} holds/client={args.holds} pools={args.pools} (each hold created then released)")
        print(f"api:    {api_rate:8.1f} holds/s   failed requests={failures}   invariant violations={api_violations}")
        print(f"direct: {direct_rate:8.1f} holds/s   (asyncpg, same SQL)   invariant violations={direct_violations}")
        print(f"ratio api/direct: {api_rate / direct_rate:.2f}")
        if api_violations or direct_violations:
            sys.exit(1)
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        database.drop()


if __name__ == "__main__":
    main()
