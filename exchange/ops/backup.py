"""`refuge backup PATH` and `refuge restore PATH`: a consistent copy of the whole database, taken while the app
runs, and its return into an empty database.

PostgreSQL: `pg_dump --format=custom` (one snapshot, so beds and money are copied as of one instant) and
`pg_restore`; both must be on PATH, of the server's major version (Debian/Ubuntu: `postgresql-client`).
SQLite: the online backup API of `sqlite3`, page by page under SQLite's own locking.
The password never appears on a command line (PGPASSWORD in the child's environment only).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"


class BackupError(Exception):
    """What went wrong, in plain words; nothing was changed."""


def _is_sqlite(url: URL) -> bool:
    return url.drivername.startswith("sqlite")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("DATABASE_URL points at an in-memory SQLite database: there is nothing to back up.")
    return Path(url.database)


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"`{name}` is not on PATH. Install the PostgreSQL client tools of your server's major version "
            "(Debian/Ubuntu: apt-get install postgresql-client; the Docker image has them) and try again."
        )
    return found


def _pg_environment(url: URL) -> dict[str, str]:
    """The libpq variables for the database of `url`, so no password shows in the process list."""
    env = {**os.environ, "PGHOST": url.host or "localhost", "PGPORT": str(url.port or 5432)}
    if url.username:
        env["PGUSER"] = url.username
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    env["PGDATABASE"] = url.database or ""
    return env


def _run(command: list[str], env: dict[str, str], doing: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{doing} failed: {detail[-1] if detail else 'exit code ' + str(result.returncode)}")


def backup(database_url: str, path: Path) -> str:
    """Write a backup of the database to `path` (which must not exist yet); return what was written."""
    url = make_url(database_url)
    if path.exists():
        raise BackupError(f"{path} already exists; a backup never overwrites one. Choose a new name (e.g. dated).")
    if not path.parent.is_dir():
        raise BackupError(f"The folder {path.parent} does not exist.")
    if _is_sqlite(url):
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"The SQLite database {source} does not exist.")
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        dst.close()
        src.close()
        path.chmod(0o600)  # it holds addresses and case codes: its owner only
        return f"SQLite {source} copied to {path} ({path.stat().st_size} bytes)"
    env = _pg_environment(url)
    _run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={path}"],
        env,
        "pg_dump",
    )
    path.chmod(0o600)
    return f"PostgreSQL {url.database} dumped to {path} ({path.stat().st_size} bytes, pg_dump custom format)"


def _kind_of(path: Path) -> str:
    with path.open("rb") as file:
        head = file.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_CUSTOM_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a backup made by `refuge backup` (neither SQLite nor pg_dump custom format).")


async def _pg_table_count(database_url: str) -> int:
    from exchange.db import make_engine

    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            return int((await conn.execute(text(query))).scalar_one())
    finally:
        await engine.dispose()


def _sqlite_table_count(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        count = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    db.close()
    return int(count)


def restore(database_url: str, path: Path, *, force: bool = False) -> str:
    """Put the backup at `path` into the database of `database_url`, which must be empty unless `force`
    (then what it holds is replaced). Return what was done."""
    url = make_url(database_url)
    if not path.is_file():
        raise BackupError(f"There is no backup file at {path}.")
    kind = _kind_of(path)
    target_kind = "sqlite" if _is_sqlite(url) else "postgresql"
    if kind != target_kind:
        raise BackupError(f"{path} is a {kind} backup; DATABASE_URL points at {target_kind}. Restore it into {kind}.")
    if kind == "sqlite":
        target = _sqlite_path(url)
        tables = _sqlite_table_count(target)
    else:
        tables = asyncio.run(_pg_table_count(database_url))
    if tables and not force:
        raise BackupError(
            f"The target database is not empty ({tables} tables): restoring would mix two databases. Restore into "
            "a new, empty database, or add --force to replace everything it holds with the backup."
        )
    if kind == "sqlite":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        dst.close()
        src.close()
        return f"{path} restored into SQLite {target}"
    command = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    if tables:
        command += ["--clean", "--if-exists"]
    _run([*command, f"--dbname={url.database}", str(path)], _pg_environment(url), "pg_restore")
    return f"{path} restored into PostgreSQL {url.database}"
