"""Test harness: one database and one app per run, emptied between tests; a network of organisations and users.

Fixtures, and what each really does:
- `database_url` (session): a database of the run's own: a SQLite file in a temporary folder, or, with
  `TEST_DATABASE_URL=postgresql+asyncpg://...`, a `test_<random>` database created beside it and dropped at the
  end. Its schema comes from the models (`metadata.create_all`), not from Alembic: tests/test_migrations.py
  proves the migrations build the same schema.
- `engine`, `sessionmaker` (session): SQLAlchemy on that database, for tests that read or write rows directly.
- `_clean_database` (autouse, every test): empties every table before the test (TRUNCATE on PostgreSQL, DELETE
  on SQLite). Nothing else is reset between tests except what `client` and `live_server` say.
- `settings` (session): that database, a random secret, `http://testserver.local` as base URL, the login and
  donation rate limits out of the way, and the sweeper every 0.2 s.
- `app` (session): one `create_app(settings)` for the whole run. A test that needs other settings builds its own
  app (`create_app(replace(settings, ...))`) and client.
- `client` (every test): a Litestar `AsyncTestClient` on `app`; it runs the app's lifespan (sweeper, channels,
  live hub) for the test, and empties the app's stores (sessions, rate limits, login failures) first.
  `own_app_client` is the same on an app built for the test alone (for what an app does on first use).
- `network` (every test): rows written straight through the models, not the API: six organisations, shelter A
  (Montréal, pools women 10/4 occupied and family 3) and shelter B (Toronto, men 8/2), and a user of each role in
  `PEOPLE`, each with an API token from the domain (`network["police"].headers`). It starts `client`.
- `live_server` (one per test module, stores emptied before each test): the app served by uvicorn in a thread on
  a free port with its own URL as base URL, for real websocket and browser clients.

Helpers: `until_live(ws)` waits for a socket's first message, which the server sends once the socket is
registered with its hub; `eventually(check)` polls a condition the sweeper or a live event makes true.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import hash_password, issue_token
from exchange.app import create_app
from exchange.db import make_engine, make_sessionmaker
from exchange.models import metadata
from exchange.settings import Settings

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)
BASE_DB = os.environ.get("TEST_DATABASE_URL", "sqlite")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _create_pg_database(base_url: str) -> str:
    import asyncpg

    url = make_url(base_url)
    name = "test_" + secrets.token_hex(6)

    async def create() -> None:
        conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(db_url: str) -> None:
    import asyncpg

    url = make_url(db_url)

    async def drop() -> None:
        conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database="postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await conn.close()

    asyncio.run(drop())


def _create_schema(url: str) -> None:
    """The schema straight from the models; tests/test_migrations.py proves Alembic builds the same one."""

    async def create() -> None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await engine.dispose()

    asyncio.run(create())


@pytest.fixture(name="database_url", scope="session")
def fixture_database_url() -> Iterator[str]:
    if BASE_DB.startswith("postgresql"):
        url = _create_pg_database(BASE_DB)
        _create_schema(url)
        yield url
        _drop_pg_database(url)
    else:
        folder = tempfile.mkdtemp(prefix="refuge-test-")
        url = f"sqlite+aiosqlite:///{folder}/test.db"
        _create_schema(url)
        yield url


@pytest.fixture(name="is_postgres", scope="session")
def fixture_is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(name="settings", scope="session")
def fixture_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-" + secrets.token_hex(8),
        base_url="http://testserver.local",
        login_attempts_per_minute=10_000,
        donations_per_minute=10_000,
        sweep_interval_seconds=0.2,
    )


@pytest.fixture(name="engine", scope="session")
async def fixture_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(name="sessionmaker", scope="session")
def fixture_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return make_sessionmaker(engine)


async def _empty_tables(engine: AsyncEngine) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture(autouse=True)
async def _clean_database(engine: AsyncEngine) -> AsyncIterator[None]:
    await _empty_tables(engine)
    yield


@pytest.fixture(name="app", scope="session")
def fixture_app(settings: Settings) -> Litestar:
    return create_app(settings)


async def empty_stores(app: Litestar) -> None:
    """Sessions, rate-limit counters and login failures of earlier tests must not leak into the next one."""
    for store in app.stores._stores.values():  # StoreRegistry has no public listing of its stores
        await store.delete_all()


@pytest.fixture(name="client")
async def fixture_client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    await empty_stores(app)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client


@pytest.fixture(name="own_app_client")
async def fixture_own_app_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """A client on an app built for this test alone, for a test that must see what the app does on first use:
    structlog binds each route's logger to the stdout of the first request through it (`capsys` sees it only if
    that request is the test's own)."""
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        yield client


@dataclass
class Person:
    user: User
    token: str = ""

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Network:
    orgs: dict[str, Organisation] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    facilities: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]


# username -> (organisation key, roles, lead worker)
PEOPLE: dict[str, tuple[str, list[Role], bool]] = {
    "shelter_a": ("shelter_a", [Role.SHELTER_STAFF], False),
    "shelter_b": ("shelter_b", [Role.SHELTER_STAFF], False),
    "police": ("police", [Role.POLICE_PLANNER], False),
    "police_other": ("police_other", [Role.POLICE_PLANNER], False),
    "worker": ("community", [Role.CASE_WORKER], True),
    "worker_plain": ("community", [Role.CASE_WORKER], False),
    "approver": ("coalition", [Role.FUND_APPROVER], False),
    "approver_community": ("community", [Role.FUND_APPROVER], False),
    "dual": ("community", [Role.CASE_WORKER, Role.FUND_APPROVER], True),
    "auditor": ("coalition", [Role.AUDITOR], False),
    "coordinator": ("coalition", [Role.COORDINATOR], False),
    "admin": ("coalition", [Role.NETWORK_ADMIN], False),
}

ORGS: dict[str, OrgKind] = {
    "shelter_a": OrgKind.SHELTER,
    "shelter_b": OrgKind.SHELTER,
    "police": OrgKind.POLICE,
    "police_other": OrgKind.POLICE,
    "community": OrgKind.COMMUNITY,
    "coalition": OrgKind.COALITION,
}


@pytest.fixture(name="network")
async def fixture_network(sessionmaker: async_sessionmaker, client: AsyncTestClient) -> Network:
    """Two shelters (A in Montréal, B in Toronto) with pools, two police services, a coalition, and everyone."""
    from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel

    net = Network()
    async with sessionmaker() as session:
        for key, kind in ORGS.items():
            org = Organisation(name=f"{key} org", kind=kind, province="QC")
            session.add(org)
            net.orgs[key] = org
        await session.flush()
        for username, (org_key, roles, lead) in PEOPLE.items():
            user = User(
                username=username,
                display_name=username.replace("_", " ").title(),
                password_hash=PASSWORD_HASH,
                organisation_id=net.orgs[org_key].id,
                roles=[r.value for r in roles],
                lead_worker=lead,
            )
            session.add(user)
            net.people[username] = Person(user)
        fa = Facility(
            organisation_id=net.orgs["shelter_a"].id,
            name="Maison Alpha",
            kind=FacilityKind.VAW_SHELTER,
            province="QC",
            city="Montréal",
            area="Plateau",
            address="123 rue Secrète",
            intake_phone="+1-555-000-1111",
            oncall_email="alpha@shelter.test",
            security_level=SecurityLevel.HEIGHTENED,
            genders="women",
        )
        fb = Facility(
            organisation_id=net.orgs["shelter_b"].id,
            name="Bravo House",
            kind=FacilityKind.MEN,
            province="ON",
            city="Toronto",
            area="East York",
            address="77 Hidden Lane",
            intake_phone="+1-555-000-2222",
            oncall_email="bravo@shelter.test",
            genders="men",
        )
        session.add_all([fa, fb])
        await session.flush()
        pa = BedPool(facility_id=fa.id, profile=Profile.WOMEN, capacity=10, occupied=4)
        pa2 = BedPool(facility_id=fa.id, profile=Profile.FAMILY, capacity=3, occupied=0)
        pb = BedPool(facility_id=fb.id, profile=Profile.MEN, capacity=8, occupied=2)
        session.add_all([pa, pa2, pb])
        await session.commit()
        net.facilities = {"a": fa, "b": fb}
        net.pools = {"a": pa, "a_family": pa2, "b": pb}
        # Tokens straight from the domain: logging twelve people in through argon2 would slow every test.
        for person in net.people.values():
            person.token = await issue_token(session, person.user)
    return net


async def login_page_session(client: AsyncTestClient, username: str, password: str = PASSWORD) -> Any:
    """Log in through the HTML form (GET for the CSRF cookie, then POST with the token)."""
    page = await client.get("/login")
    token = page.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    return await client.post(
        "/login",
        data={"username": username, "password": password, "next": "/", "_csrf_token": token},
        follow_redirects=False,
    )


async def log_in_page(http: Any, username: str, password: str = PASSWORD) -> str:
    """Log an httpx client into a live server's pages; returns the Cookie header its sockets send."""
    await http.get("/login")
    response = await http.post(
        "/login", data={"username": username, "password": password, "_csrf_token": http.cookies["csrftoken"]}
    )
    assert response.status_code in (200, 303), response.text
    return f"session={http.cookies['session']}"


def ws_url(server: LiveServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def page_socket(server: LiveServer, cookie: str, path: str = "/board/ws") -> Any:
    """A page's websocket, with the session cookie and the site's own Origin, as a browser opens it."""
    import websockets

    return websockets.connect(ws_url(server, path), additional_headers={"Cookie": cookie, "Origin": server.url})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by uvicorn in a thread of its own, for real websocket and browser clients."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = replace(settings, base_url=self.url)
        self.app = create_app(self.settings)
        self.app.on_startup.append(self._remember_loop)
        self.loop: asyncio.AbstractEventLoop | None = None
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _remember_loop(self) -> None:
        self.loop = asyncio.get_running_loop()

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:  # uvicorn sets it once the app's startup ran and the socket listens
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def empty_stores(self) -> None:
        """On the server's own event loop: its stores belong to it."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(empty_stores(self.app), self.loop).result(timeout=10)


@pytest.fixture(name="module_live_server", scope="module")
def fixture_module_live_server(settings: Settings) -> Iterator[LiveServer]:
    # Per module rather than per run: its sweeper would otherwise keep taking SQLite's write lock in every
    # later test.
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(name="live_server")
def fixture_live_server(module_live_server: LiveServer) -> LiveServer:
    module_live_server.empty_stores()
    return module_live_server


ROOT = Path(__file__).resolve().parent.parent


async def until_live(ws: Any, within_s: float = 5.0) -> str:
    """Read a socket's first message and return it: the server sends it once the socket is registered with its
    hub (the JSON stream's `{"type": "ready"}`, the board socket's live-status fragment), so every change made
    after this returns reaches the socket."""
    async with asyncio.timeout(within_s):
        hello = await ws.recv()
    assert 'id="live-status"' in hello or json.loads(hello) == {"type": "ready"}, hello
    return hello


async def eventually(check: Any, within_s: float = 5.0, interval: float = 0.05) -> Any:
    """Wait for the background sweeper (or a live event) to make `check()` truthy; return its value."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)
