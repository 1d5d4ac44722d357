"""Fan-out latency: 1,000 websocket clients on `/api/v1/stream` of a running `refuge serve`, pool changes
made through the API, and beside it a bare `websockets` broadcast server to the same number of clients,
measured in the same run.

    .venv/bin/python -m bench.fanout [--sockets 1000] [--changes 20] [--redis] [--processes 1]

Latency is the time from the server's publication (its `at` stamp) to a client's receipt, on one clock.
The server runs as its own process (SQLite, memory channels; `--redis` uses the Redis backend). With
`--processes N` (Redis only), N `refuge serve` processes share the database and the channel; the sockets are
spread over them in turn and the changes are made through the first, so most deliveries cross Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import websockets

from beds.models import BedPool, Facility, FacilityKind, Profile
from bench.common import free_port, wait_until_up
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import hash_password, issue_token
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata

ROOT = Path(__file__).resolve().parent.parent
# Changes are spaced so that each measures one fan-out, not a queue of several.
PACE_S = 0.25

BARE_SERVER = r"""
import asyncio, json, sys, time
import websockets
from websockets.asyncio.server import serve, broadcast

clients = set()

async def handler(ws):
    if ws.request.path == "/control":
        async for message in ws:
            broadcast(clients, json.dumps({"type": "pool.updated", "seq": int(message), "at": time.time(),
                                           "pool": {"id": "p", "free": 1}}))
        return
    clients.add(ws)
    await ws.send(json.dumps({"type": "ready"}))  # as refuge's stream does once a client is registered
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_queue=None):
        print("listening", flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


async def seed(url: str) -> tuple[str, str, str]:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with make_sessionmaker(engine)() as session:
        shelter = Organisation(name="Bench shelter", kind=OrgKind.SHELTER)
        police = Organisation(name="Bench police", kind=OrgKind.POLICE)
        session.add_all([shelter, police])
        await session.flush()
        staff = User(
            username="staff",
            password_hash=hash_password("x" * 12),
            organisation_id=shelter.id,
            roles=[Role.SHELTER_STAFF.value],
        )
        viewer = User(
            username="viewer",
            password_hash=hash_password("x" * 12),
            organisation_id=police.id,
            roles=[Role.POLICE_PLANNER.value],
        )
        facility = Facility(
            organisation_id=shelter.id, name="Bench", kind=FacilityKind.VAW_SHELTER, province="QC", city="Montréal"
        )
        session.add_all([staff, viewer, facility])
        await session.flush()
        pool = BedPool(facility_id=facility.id, profile=Profile.WOMEN, capacity=1000)
        session.add(pool)
        await session.commit()
        staff_token = await issue_token(session, staff)
        viewer_token = await issue_token(session, viewer)
        pool_id = pool.id
    await engine.dispose()
    return staff_token, viewer_token, pool_id


class Receivers:
    """N connected clients; each records (receipt time, raw message) and parses after the run."""

    def __init__(self, expected: int) -> None:
        self.expected = expected  # messages each client should get
        self.received: list[list[tuple[float, str]]] = []
        self.tasks: list[asyncio.Task] = []
        self.sockets: list = []
        self.complete = 0
        self.all_complete = asyncio.Event()

    async def connect(self, urls: list[str], n: int, headers: dict[str, str] | None = None) -> None:
        """Returns once every client has its ready frame: each is registered, none can miss a change. Client i
        connects to urls[i % len(urls)]."""

        async def one(i: int) -> None:
            url = urls[i % len(urls)]
            ws = await websockets.connect(url, additional_headers=headers, max_queue=None, open_timeout=60)
            self.sockets.append(ws)
            ready = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert ready == {"type": "ready"}, ready
            log: list[tuple[float, str]] = []
            self.received.append(log)
            self.tasks.append(asyncio.create_task(self._pump(ws, log)))

        for start in range(0, n, 100):  # connect in waves, as a morning of shift changes would
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100))))

    async def _pump(self, ws, log: list[tuple[float, str]]) -> None:  # type: ignore[no-untyped-def]
        try:
            async for message in ws:
                log.append((time.time(), message))
                if len(log) == self.expected:
                    self.complete += 1
                    if self.complete == len(self.received):
                        self.all_complete.set()
        except websockets.ConnectionClosed:
            return

    async def until_received(self, within_s: float = 10.0) -> None:
        """Until every client has its messages, or the time is up (the summary then shows what is missing)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_complete.wait(), within_s)

    def latencies_ms(self, at_of: callable) -> list[float]:  # type: ignore[valid-type]
        out = []
        for log in self.received:
            for t, message in log:
                sent = at_of(json.loads(message))
                if sent is not None:
                    out.append((t - sent) * 1000)
        return out

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        for task in self.tasks:
            task.cancel()


def summary(name: str, values: list[float], expected: int) -> tuple[float, float]:
    values = sorted(values)
    p50 = statistics.median(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    print(f"  {name:<34} deliveries {len(values):>6}/{expected:<6} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    return p50, p99


@dataclass
class Servers:
    """`refuge serve` (one or more processes) with its stream, and the bare broadcast server, all answering."""

    ports: list[int]
    bare_port: int
    staff_token: str
    viewer_token: str
    pool_id: str


def start_servers(use_redis: bool, count: int = 1) -> tuple[Servers, list[subprocess.Popen]]:
    folder = tempfile.mkdtemp(prefix="refuge-fanout-")
    url = f"sqlite+aiosqlite:///{folder}/fanout.db"
    staff_token, viewer_token, pool_id = asyncio.run(seed(url))
    ports, bare_port = [free_port() for _ in range(count)], free_port()
    apps = []
    for port in ports:
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "BASE_URL": f"http://127.0.0.1:{port}"}
        if use_redis:
            env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        else:
            env.pop("REDIS_URL", None)
        apps.append(
            subprocess.Popen(
                [sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    bare = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(bare_port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    processes = [*apps, bare]
    try:
        for port, app in zip(ports, apps, strict=True):
            wait_until_up(f"http://127.0.0.1:{port}", app)
        assert bare.stdout is not None and bare.stdout.readline().strip() == b"listening", "bare server did not start"
    except BaseException:
        stop(processes)
        raise
    return Servers(ports, bare_port, staff_token, viewer_token, pool_id), processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


async def measure(servers: Servers, clients: int, changes: int) -> tuple[Receivers, Receivers]:
    ours = Receivers(expected=changes)
    await ours.connect(
        [f"ws://127.0.0.1:{port}/api/v1/stream" for port in servers.ports],
        clients,
        {"Authorization": f"Bearer {servers.viewer_token}"},
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{servers.ports[0]}", timeout=30) as http:
        for i in range(changes):
            delta = 1 if i % 2 == 0 else -1
            response = await http.post(
                f"/api/v1/pools/{servers.pool_id}/adjust",
                json={"occupied_delta": delta},
                headers={"Authorization": f"Bearer {servers.staff_token}"},
            )
            response.raise_for_status()
            await asyncio.sleep(PACE_S)
    await ours.until_received()
    await ours.close()

    baseline = Receivers(expected=changes)
    await baseline.connect([f"ws://127.0.0.1:{servers.bare_port}/"], clients)
    async with websockets.connect(f"ws://127.0.0.1:{servers.bare_port}/control") as control:
        for i in range(changes):
            await control.send(str(i))
            await asyncio.sleep(PACE_S)
        await baseline.until_received()
    await baseline.close()
    return ours, baseline


def run(clients: int, changes: int, use_redis: bool, count: int = 1) -> None:
    servers, processes = start_servers(use_redis, count)
    try:
        ours, baseline = asyncio.run(measure(servers, clients, changes))
    finally:
        stop(processes)

    def our_at(message: dict) -> float | None:
        if message.get("type") != "pool.updated":
            return None
        return datetime.fromisoformat(message["at"]).timestamp()

    expected = clients * changes
    backend = "redis pub/sub" if use_redis else "memory"
    print(
        f"fan-out to {clients} websocket clients over {count} process(es), {changes} pool changes, "
        f"channels backend: {backend}"
    )
    _, ours_p99 = summary("refuge /api/v1/stream", ours.latencies_ms(our_at), expected)
    _, bare_p99 = summary("bare websockets broadcast", baseline.latencies_ms(lambda m: m.get("at")), expected)
    print(f"  ratio p99 refuge / bare: {ours_p99 / bare_p99:.2f}   (targets: ratio <= 1.1, p99 < 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", "--clients", dest="clients", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--processes", type=int, default=1, help="refuge serve processes (more than one: --redis)")
    args = parser.parse_args()
    if args.processes > 1 and not args.redis:
        parser.error("--processes above 1 needs --redis: processes share live events only through Redis")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Each client holds a socket in this process (and the bare server's side in its own).
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192, args.clients * 2 + 1024)), hard))
    run(args.clients, args.changes, args.redis, args.processes)


if __name__ == "__main__":
    main()
