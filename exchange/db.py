"""Async engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30}, **kwargs)
        _make_sqlite_transactions_immediate(engine)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(database_url, pool_pre_ping=False, **kwargs)


# True while an HTTP request that only reads (GET, HEAD) is being answered (exchange/web/reads.py sets it).
# On SQLite its transactions then begin DEFERRED: a read takes no lock and never waits for a writer.
reading: ContextVar[bool] = ContextVar("reading", default=False)

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _make_sqlite_transactions_immediate(engine: AsyncEngine) -> None:
    """Every SQLite transaction that may write takes the write lock at BEGIN.

    pysqlite's own deferred BEGIN lets two transactions read the same pool row and then
    both write; BEGIN IMMEDIATE serialises writers so a bed or a cent is never moved twice.
    Transactions begun while `reading` is set begin DEFERRED instead (WAL readers see the last commit and
    block nobody); if one of them writes after all (a GET noting a token's last use), the write lock is
    taken before its first write, by ending the read and beginning IMMEDIATE, rather than by upgrading the
    read, which SQLite refuses at once (SQLITE_BUSY) when another writer committed in between. The writes
    made that way are conditional UPDATEs that do not depend on what the read saw.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        deferred = reading.get()
        conn.info["deferred"] = deferred
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before_write(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get("deferred") and statement.lstrip()[:7].upper().startswith(_WRITES):
            conn.info["deferred"] = False
            cursor.execute("COMMIT")
            cursor.execute("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
