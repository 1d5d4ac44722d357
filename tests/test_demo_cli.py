"""`refuge demo` as a new user meets it: a taken port, `--reset`, a consistent network with six weeks of history,
the tour, a quiet terminal; and a websocket client that leaves mid-handshake is a normal disconnect."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import click
import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from uvicorn.protocols.utils import ClientDisconnected
from websockets.sync.client import connect as ws_connect

from beds.models import PoolChange
from beds.reports import daily_occupancy
from exchange.accounts.models import User
from exchange.cli import main
from exchange.db import make_engine, make_sessionmaker
from exchange.demo.environment import demo_environment
from exchange.demo.network import DEMO_PASSWORD

# Every variable the command sets when it is unset, so CliRunner restores them all afterwards.
DEMO_ENV = {**demo_environment("127.0.0.1", 8000), "SECRET_KEY": "test-only-demo-secret-key-0123456789abcdef"}


def run_demo(database: Path, *args: str) -> Result:
    env = {**DEMO_ENV, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    return CliRunner().invoke(main, ["demo", *args], env=env, catch_exceptions=False)


def test_a_taken_port_is_named_before_anything_is_printed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo(tmp_path / "demo.db", "--port", str(port))
    assert result.exit_code != 0
    assert f"Port {port} on 127.0.0.1 is already in use" in result.output
    assert "--port" in result.output
    assert "Open http://" not in result.output
    assert "Demo logins" not in result.output
    assert not (tmp_path / "demo.db").exists()  # it stopped before touching the database


def test_every_option_of_every_command_has_help_text() -> None:
    def commands(group: click.Group, path: str = "refuge") -> list[tuple[str, click.Command]]:
        found: list[tuple[str, click.Command]] = []
        for name, command in group.commands.items():
            found.append((f"{path} {name}", command))
            if isinstance(command, click.Group):
                found += commands(command, f"{path} {name}")
        return found

    missing = [
        f"{path} {param.opts[0]}"
        for path, command in commands(main)
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "refuge demo --port" in readme


@pytest.fixture(name="seeded", scope="module")
def fixture_seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    database = tmp_path_factory.mktemp("demo") / "demo.db"
    result = run_demo(database, "--no-serve")
    assert result.exit_code == 0, result.output
    return database, result.output


def test_reset_deletes_the_demo_database_and_seeds_anew(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    assert "Seeded a new demo network" in run_demo(database, "--no-serve").output
    with sqlite3.connect(database) as db:
        db.execute("UPDATE user_account SET display_name = 'left from before' WHERE username = 'shelter'")
    again = run_demo(database, "--no-serve")
    assert "Reusing the demo network" in again.output and "left from before" in again.output

    reset = run_demo(database, "--no-serve", "--reset")
    assert reset.exit_code == 0, reset.output
    assert f"Deleted the demo database {database}" in reset.output
    assert "Seeded a new demo network" in reset.output
    assert "left from before" not in reset.output
    with sqlite3.connect(database) as db:
        (shelter,) = db.execute("SELECT display_name FROM user_account WHERE username = 'shelter'").fetchone()
    assert shelter.startswith("Nadia (")


def test_reset_refuses_a_database_that_is_not_a_sqlite_file() -> None:
    env = {**DEMO_ENV, "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/production"}
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--reset"], env=env)
    assert result.exit_code != 0
    assert "only deletes a SQLite demo database" in result.output


def test_every_demo_users_display_name_names_where_they_work(seeded: tuple[Path, str]) -> None:
    """The rule: a display name is "<person> (<where>)"; <where> is part of the name of the user's organisation,
    and for shelter staff it is the name of a facility their organisation runs."""
    database, _ = seeded
    with sqlite3.connect(database) as db:
        people = db.execute(
            "SELECT u.username, u.display_name, u.roles, o.id, o.name FROM user_account u "
            "JOIN organisation o ON o.id = u.organisation_id"
        ).fetchall()
        facilities = db.execute("SELECT organisation_id, name FROM facility").fetchall()
    assert len(people) >= 12
    for username, display, roles, org_id, org_name in people:
        match = re.fullmatch(r"(?P<person>[^()]+) \((?P<where>.+)\)", display)
        assert match, f"{username}: {display!r} does not say where they work"
        where = match["where"]
        assert where.casefold() in org_name.casefold(), f"{username}: {display!r} but works for {org_name!r}"
        if "shelter_staff" in roles:
            assert where in {name for owner, name in facilities if owner == org_id}, (username, display)
    nadia = next(display for username, display, *_ in people if username == "shelter")
    assert "Montréal" in nadia


def test_the_demo_prints_a_tour_after_the_logins(seeded: tuple[Path, str]) -> None:
    _, output = seeded
    logins, tour = output.index("Demo logins"), output.index("A first tour")
    assert logins < tour < output.index("Open http://")
    tour_text = output[tour:]
    for what in ("`shelter`", "`police`", "Arrival", "allocate", "confirm", "hotel night", "`approver`", "approve"):
        assert what in tour_text


async def test_the_occupancy_report_covers_the_seeded_weeks(seeded: tuple[Path, str]) -> None:
    """Six weeks of reports per pool: the last 30 days of the report (network-wide and one shelter's) have no day
    at 0 %, and the days differ, as a network's do."""
    database, _ = seeded
    engine = make_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with make_sessionmaker(engine)() as session:
            network = await daily_occupancy(session, days=30)
            shelter = await session.scalar(select(User).where(User.username == "shelter"))
            assert shelter is not None
            own = await daily_occupancy(session, organisation_id=shelter.organisation_id, days=30)
            joined = await session.scalar(select(func.min(PoolChange.at)))
    finally:
        await engine.dispose()
    assert joined is not None and joined <= datetime.now(UTC) - timedelta(days=40)
    for report in (network, own):
        percents = [day.occupancy_percent for day in report]
        assert len(percents) == 30
        assert min(percents) > 0, percents
        assert all(day.capacity > 0 for day in report)
        assert len(set(percents)) > 1 or len({day.occupied for day in report}) > 1, percents
    assert len({day.occupied for day in network}) >= 10  # a network of a hundred shelters moves every day


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(process: subprocess.Popen, url: str, terminal: Path) -> None:
    """Poll the page until the server answers; fail at once with its output if the process ends first."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("refuge demo stopped:\n" + terminal.read_text(encoding="utf-8"))
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # between two polls of the port, not a readiness signal
    pytest.fail("refuge demo did not serve within 180 s:\n" + terminal.read_text(encoding="utf-8"))


def test_the_demo_terminal_stays_quiet_and_keeps_the_logins_on_screen(seeded: tuple[Path, str], tmp_path: Path) -> None:
    """The real command, as a person runs it (on the seeded database, so it starts at once): pages, a login, the
    board's websocket; its terminal shows the logins and the tour and then nothing: no JSON, no warning, no
    traceback, no line per request."""
    database, _ = seeded
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    ours = set(DEMO_ENV) | {"REDIS_URL", "DEBUG"}
    env = {k: v for k, v in os.environ.items() if k not in ours} | {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    refuge = Path(sys.executable).with_name("refuge")
    terminal = tmp_path / "terminal.txt"
    with terminal.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [str(refuge), "demo", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        _wait_until_serving(process, f"{base}/login", terminal)
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/").status_code == 302  # to the login page
            assert http.get("/static/app.css").status_code == 200
            assert http.get("/no-such-page").status_code == 404
            http.get("/login")
            logged_in = http.post(
                "/login",
                data={"username": "shelter", "password": DEMO_PASSWORD, "_csrf_token": http.cookies["csrftoken"]},
            )
            assert logged_in.status_code in (200, 303), logged_in.text
            assert http.get("/").status_code == 200
            assert http.get("/reports/occupancy?days=30").status_code == 200
            cookie = f"session={http.cookies['session']}"
        for _ in range(3):  # pages changing quickly: the board's socket opens and goes
            with ws_connect(
                f"ws://127.0.0.1:{port}/board/ws", additional_headers={"Cookie": cookie, "Origin": base}
            ) as socket_:
                assert "live" in str(socket_.recv(timeout=30)).lower()
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C
        process.wait(timeout=60)
    output = terminal.read_text(encoding="utf-8")
    assert "Demo logins" in output and "A first tour" in output
    after_open = output.split(f"Open {base}/", 1)[1].splitlines()[1:]
    assert [line for line in after_open if line.strip()] == [], output
    for line in output.splitlines():
        assert not line.lstrip().startswith("{"), f"a JSON log line in the demo: {line}"
    for noise in ("warning", "traceback", "exception", "error"):
        assert noise not in output.lower(), output


def _scope(path: str, headers: dict[str, str]) -> dict:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("testserver.local", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "testserver.local", **headers}.items()],
        "subprotocols": [],
        "state": {},
        "extensions": {},
    }


@pytest.mark.parametrize("path", ["/api/v1/stream", "/board/ws"])
@pytest.mark.parametrize("gone_at", ["websocket.accept", "websocket.send"])
async def test_a_client_leaving_mid_handshake_is_a_normal_disconnect(
    app, client, network, caplog: pytest.LogCaptureFixture, path: str, gone_at: str
) -> None:
    """The app driven as an ASGI server drives it, by a server whose client left: from `gone_at` on, every send
    raises the server's ClientDisconnected (an OSError, as the ASGI spec asks). The handler must end quietly."""
    sent: list[str] = []
    received = 0

    async def receive() -> dict:
        nonlocal received
        received += 1
        return {"type": "websocket.connect"} if received == 1 else {"type": "websocket.disconnect", "code": 1006}

    async def send(message: dict) -> None:
        sent.append(message["type"])
        if message["type"] == gone_at or (gone_at == "websocket.accept" and len(sent) > 1):
            raise ClientDisconnected()

    caplog.set_level(logging.INFO)
    scope = _scope(path, network["police"].headers)
    # On the loop that runs the app's lifespan (its live hub), as a server would; nothing may reach the server.
    await anyio.to_thread.run_sync(lambda: client.blocking_portal.call(app, scope, receive, send))
    assert sent[0] == "websocket.accept"
    if gone_at == "websocket.send":
        assert sent == ["websocket.accept", "websocket.send"]  # the hello was the first send, and the last
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Traceback" not in caplog.text
