"""`refuge demo` as a new user meets it: a taken port, `--reset`, a consistent network, the tour; and a websocket
client that leaves mid-handshake is a normal disconnect."""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
from pathlib import Path

import anyio.to_thread
import click
import pytest
from click.testing import CliRunner, Result
from uvicorn.protocols.utils import ClientDisconnected

from exchange.cli import main

DEMO_ENV = {"BASE_URL": "http://127.0.0.1:8000", "SECRET_KEY": "test-only-demo-secret-key-0123456789abcdef"}


def run_demo(database: Path, *args: str) -> Result:
    # Every variable the command sets by default is given here, so CliRunner restores them all afterwards.
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
