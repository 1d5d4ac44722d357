"""`refuge db upgrade` (Alembic) builds exactly the schema the models describe."""

from __future__ import annotations

import asyncio
import tempfile

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exchange.db import make_engine
from exchange.migrations import upgrade
from exchange.models import metadata
from tests.conftest import BASE_DB, _create_pg_database, _drop_pg_database


def _differences(url: str) -> list:
    async def compare() -> list:
        engine = make_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync_conn: compare_metadata(
                    MigrationContext.configure(sync_conn, opts={"compare_type": True}), metadata
                )
            )
        await engine.dispose()
        return diff

    return asyncio.run(compare())


def test_migrations_build_the_models_schema() -> None:
    if BASE_DB.startswith("postgresql"):
        url = _create_pg_database(BASE_DB)
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='refuge-mig-')}/m.db"
    try:
        upgrade(url)
        assert _differences(url) == []
        upgrade(url)  # running it again is a no-op
    finally:
        if url.startswith("postgresql"):
            _drop_pg_database(url)
