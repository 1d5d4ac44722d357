"""Two real `refuge serve` processes on one database (and Redis on PostgreSQL): a change made through A
reaches a websocket client of B; `kill -9` of A in the middle of a burst of holds and disbursements loses
nothing that was answered 2xx, half-writes nothing, and B keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import select

from beds.holds_models import Hold
from beds.models import BedPool, Facility, FacilityKind, Profile
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import issue_token
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from ledger.deposits import deposit
from ledger.funds import create_fund
from ledger.models import Disbursement
from ledger.verify import check_books
from tests.conftest import (
    BASE_DB,
    PASSWORD_HASH,
    REDIS_URL,
    ROOT,
    _create_pg_database,
    _drop_pg_database,
    free_port,
    until_live,
)

ACTIVE = ("requested", "confirmed")


@pytest.fixture(name="proc_db")
def fixture_proc_db() -> Iterator[str]:
    if BASE_DB.startswith("postgresql"):
        url = _create_pg_database(BASE_DB)
        yield url
        _drop_pg_database(url)
    else:
        folder = tempfile.mkdtemp(prefix="refuge-procs-")
        yield f"sqlite+aiosqlite:///{folder}/procs.db"


async def seed(url: str) -> dict:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with make_sessionmaker(engine)() as session:
        shelter = Organisation(name="P shelter", kind=OrgKind.SHELTER)
        police = Organisation(name="P police", kind=OrgKind.POLICE)
        community = Organisation(name="P community", kind=OrgKind.COMMUNITY)
        session.add_all([shelter, police, community])
        await session.flush()
        people = {
            "staff": User(
                username="staff", password_hash=PASSWORD_HASH, organisation_id=shelter.id, roles=["shelter_staff"]
            ),
            "police": User(
                username="police", password_hash=PASSWORD_HASH, organisation_id=police.id, roles=["police_planner"]
            ),
            "worker": User(
                username="worker",
                password_hash=PASSWORD_HASH,
                organisation_id=community.id,
                roles=[Role.CASE_WORKER.value],
                lead_worker=True,
            ),
        }
        facility = Facility(
            organisation_id=shelter.id, name="Proc", kind=FacilityKind.VAW_SHELTER, province="QC", city="Laval"
        )
        session.add_all([*people.values(), facility])
        await session.flush()
        pool = BedPool(facility_id=facility.id, profile=Profile.WOMEN, capacity=500)
        session.add(pool)
        await session.commit()
        fund = await create_fund(session, name="Proc Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=10_000_000, source="grant", actor_user_id=people["staff"].id)
        tokens = {name: await issue_token(session, user) for name, user in people.items()}
        result = {"pool_id": pool.id, "fund_id": fund.id, "tokens": tokens}
    await engine.dispose()
    return result


class Server:
    def __init__(self, url: str, tmp: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SECRET_KEY": "processes-test-secret",
            "BASE_URL": self.base,
            "PYTHONPATH": str(ROOT),
            # The burst is about what a kill -9 loses, not about the limits on unanswered requests: lift them.
            "HOLD_LIMIT_PER_REQUESTER": "100000",
            "HOLD_LIMIT_PER_ORGANISATION": "100000",
        }
        if url.startswith("postgresql"):
            env["REDIS_URL"] = REDIS_URL
        else:
            env.pop("REDIS_URL", None)
        self.log = open(tmp / f"{name}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/refuge"), "serve", "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> None:
        """Until the process answers its login page (or has died)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.base + "/login", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("refuge serve did not start: " + Path(self.log.name).read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(name="two_servers")
def fixture_two_servers(proc_db: str, tmp_path: Path) -> Iterator[tuple[Server, Server, dict]]:
    world = asyncio.run(seed(proc_db))
    a, b = Server(proc_db, tmp_path, "a"), Server(proc_db, tmp_path, "b")
    try:
        a.wait()
        b.wait()
        yield a, b, {**world, "url": proc_db}
    finally:
        a.stop()
        b.stop()


async def test_a_change_through_one_process_reaches_a_socket_of_the_other(two_servers, proc_db: str) -> None:
    a, b, world = two_servers
    if not proc_db.startswith("postgresql"):
        # Without Redis each process has its own in-memory channel: a shared stream needs REDIS_URL.
        # On SQLite the test still proves both processes serve one database file consistently.
        async with httpx.AsyncClient() as http:
            h = {"Authorization": "Bearer " + world["tokens"]["staff"]}
            r = await http.post(
                f"{a.base}/api/v1/pools/{world['pool_id']}/adjust", json={"occupied_delta": 2}, headers=h
            )
            assert r.status_code == 200
            facilities = (await http.get(f"{b.base}/api/v1/facilities", headers=h)).json()
            assert facilities[0]["pools"][0]["occupied"] == 2
        return
    ws_url = b.base.replace("http://", "ws://") + "/api/v1/stream"
    async with websockets.connect(
        ws_url, additional_headers={"Authorization": "Bearer " + world["tokens"]["police"]}
    ) as ws:
        await until_live(ws)
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{a.base}/api/v1/pools/{world['pool_id']}/adjust",
                json={"occupied_delta": 1},
                headers={"Authorization": "Bearer " + world["tokens"]["staff"]},
            )
            assert r.status_code == 200
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "pool.updated" and message["pool"]["occupied"] == 1


async def test_kill_9_in_a_burst_loses_nothing_answered_and_half_writes_nothing(two_servers) -> None:
    a, b, world = two_servers
    police = {"Authorization": "Bearer " + world["tokens"]["police"]}
    worker = {"Authorization": "Bearer " + world["tokens"]["worker"]}
    async with httpx.AsyncClient(timeout=10) as http:
        case_code = (await http.post(f"{b.base}/api/v1/cases", json={}, headers=worker)).json()["code"]
        answered_holds: set[str] = set()
        answered_disbursements: set[str] = set()
        expires = (utcnow() + timedelta(hours=2)).isoformat()
        answered_by_a = 0
        a_is_busy = asyncio.Event()  # A has answered a few of the burst and has more in flight

        async def one(i: int, server: Server) -> None:
            nonlocal answered_by_a
            try:
                if i % 2:
                    r = await http.post(
                        f"{server.base}/api/v1/holds",
                        json={"pool_id": world["pool_id"], "beds": 1, "case_code": case_code, "expires_at": expires},
                        headers={**worker, "Idempotency-Key": f"h{i}"},
                    )
                    if r.status_code == 201:
                        answered_holds.add(r.json()["id"])
                else:
                    r = await http.post(
                        f"{server.base}/api/v1/disbursements",
                        json={
                            "fund_id": world["fund_id"],
                            "case_code": case_code,
                            "category": "calling_card",
                            "amount_cents": 1_000,
                            "currency": "CAD",
                            "payee": "Phone",
                        },
                        headers={**worker, "Idempotency-Key": f"d{i}"},
                    )
                    if r.status_code == 201:
                        answered_disbursements.add(r.json()["id"])
            except httpx.HTTPError:
                return  # the killed process never answered: nothing is promised
            if server is a:
                answered_by_a += 1
                if answered_by_a == 20:
                    a_is_busy.set()

        async def killer() -> None:
            await asyncio.wait_for(a_is_busy.wait(), 60)
            a.proc.send_signal(signal.SIGKILL)

        tasks = [one(i, a if i % 3 else b) for i in range(240)]
        await asyncio.gather(killer(), *tasks)
        assert a.proc.wait(timeout=10) == -signal.SIGKILL
        assert answered_holds and answered_disbursements
        # The survivor keeps serving reads and writes.
        r = await http.post(
            f"{b.base}/api/v1/holds",
            json={"pool_id": world["pool_id"], "beds": 1, "case_code": case_code, "expires_at": expires},
            headers=worker,
        )
        assert r.status_code == 201
        answered_holds.add(r.json()["id"])
        assert (await http.get(f"{b.base}/api/v1/facilities", headers=police)).status_code == 200

    engine = make_engine(world["url"])
    try:
        async with make_sessionmaker(engine)() as session:
            holds = (await session.execute(select(Hold))).scalars().all()
            assert answered_holds <= {h.id for h in holds}
            disbursements = (await session.execute(select(Disbursement))).scalars().all()
            assert answered_disbursements <= {d.id for d in disbursements}
            pool = await session.get(BedPool, world["pool_id"])
            assert pool is not None
            assert pool.held == sum(h.beds for h in holds if h.status in ACTIVE)
            assert pool.held >= 0 and pool.occupied + pool.out_of_service + pool.held <= pool.capacity
            books = await check_books(session, world["fund_id"])
            assert books.ok, books
            # Every fast-path disbursement committed its money: committed equals what the approved ones hold.
            approved = sum(d.amount_cents for d in disbursements if d.status == "approved")
            from ledger.funds import fund_summary

            summary = await fund_summary(session, world["fund_id"])
            assert summary.committed_cents == approved
    finally:
        await engine.dispose()
