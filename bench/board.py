"""Server time to render the board for 2,000 facilities (full page) and for a filtered htmx partial.

    .venv/bin/python -m bench.board [--facilities 2000] [--runs 9] [--database-url URL]

Seeds a fresh database (SQLite file by default), then renders in-process through the real app
(middleware, auth, query, template) and prints the median and p90 of several runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time

from litestar.testing import AsyncTestClient
from sqlalchemy import insert

from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel, new_id
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import hash_password
from exchange.app import create_app
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from exchange.settings import Settings

PROVINCES = ["QC", "ON", "BC", "AB", "MB", "SK", "NS", "NB", "NL", "PE"]
CITIES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]


async def seed(url: str, facilities: int) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    rng = random.Random(1)
    now = utcnow()
    org_id = new_id()
    async with make_sessionmaker(engine)() as session:
        session.add(Organisation(id=org_id, name="Bench shelters", kind=OrgKind.SHELTER))
        session.add(
            User(
                username="bench",
                password_hash=hash_password("bench-password-1"),
                organisation_id=org_id,
                roles=[Role.POLICE_PLANNER.value],
            )
        )
        await session.commit()
        facility_rows, pool_rows = [], []
        kinds = list(FacilityKind)
        for i in range(facilities):
            fid = new_id()
            facility_rows.append(
                {
                    "id": fid,
                    "organisation_id": org_id,
                    "name": f"Facility {i}",
                    "kind": rng.choice(kinds),
                    "province": rng.choice(PROVINCES),
                    "city": rng.choice(CITIES),
                    "area": "Centre",
                    "address": "secret",
                    "intake_phone": "secret",
                    "oncall_email": "",
                    "genders": "women",
                    "security_level": SecurityLevel.STANDARD,
                    "age_min": 18,
                    "languages": "en,fr",
                    "sobriety_required": False,
                    "asylum_seekers_only": False,
                    "accepts_trafficking": True,
                    "accepts_worker_referral": True,
                    "accessible": False,
                    "children_accompanied": False,
                    "active": True,
                    "updated_at": now,
                }
            )
            for profile in (Profile.WOMEN, Profile.FAMILY):
                capacity = rng.randint(4, 20)
                pool_rows.append(
                    {
                        "id": new_id(),
                        "facility_id": fid,
                        "profile": profile,
                        "capacity": capacity,
                        "occupied": rng.randint(0, capacity),
                        "out_of_service": 0,
                        "held": 0,
                        "version": 1,
                        "updated_at": now,
                    }
                )
        await session.execute(insert(Facility), facility_rows)
        await session.execute(insert(BedPool), pool_rows)
        await session.commit()
    await engine.dispose()


def server_ms(response) -> float:  # type: ignore[no-untyped-def]
    """The app's own time to answer, from the Server-Timing header every response carries."""
    return float(response.headers["server-timing"].split("dur=")[1])


async def measure(url: str, runs: int) -> dict[str, list[float]]:
    app = create_app(Settings(database_url=url, secret_key="bench", login_attempts_per_minute=10_000))
    timings: dict[str, list[float]] = {
        "full board (server)": [],
        "full board (client-observed)": [],
        "htmx partial (server)": [],
        "htmx partial (client-observed)": [],
    }
    async with AsyncTestClient(app=app) as client:
        await client.get("/login")
        await client.post(
            "/login",
            data={"username": "bench", "password": "bench-password-1", "_csrf_token": client.cookies["csrftoken"]},
        )
        for _ in range(2):  # warm the template cache and the connection pool
            await client.get("/")
        for _ in range(runs):
            start = time.perf_counter()
            page = await client.get("/")
            timings["full board (client-observed)"].append((time.perf_counter() - start) * 1000)
            timings["full board (server)"].append(server_ms(page))
            assert page.status_code == 200 and page.text.count('class="facility"') > 0
            start = time.perf_counter()
            part = await client.get("/", params={"province": "QC", "profile": "women"}, headers={"HX-Request": "true"})
            timings["htmx partial (client-observed)"].append((time.perf_counter() - start) * 1000)
            timings["htmx partial (server)"].append(server_ms(part))
            assert part.status_code == 200
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facilities", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='refuge-bench-')}/board.db"
    asyncio.run(seed(url, args.facilities))
    timings = asyncio.run(measure(url, args.runs))
    backend = url.split(":")[0]
    print(f"board render, {args.facilities} facilities ({args.facilities * 2} pools), {args.runs} runs, {backend}")
    for name, values in timings.items():
        values.sort()
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(f"  {name:<32} median {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms   target < 100 ms")


if __name__ == "__main__":
    main()
