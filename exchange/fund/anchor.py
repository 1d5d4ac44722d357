"""Signing the ledger's checkpoints on a schedule (a sweep step) and on demand (`refuge ledger checkpoint`).

The private key comes from the settings (the environment) only. Without it the app runs as before: the
sweep step says so once in the log and does nothing.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.settings import Settings
from ledger.anchor_models import Checkpoint
from ledger.checkpoints import write_checkpoints

log = structlog.get_logger()
_warned: set[int] = set()


async def checkpoint_now(session: AsyncSession, settings: Settings, *, scheduled: bool = False) -> list[Checkpoint]:
    """Sign every chain head that moved (on a schedule: only once its last checkpoint is old enough)."""
    if not settings.ledger_signing_key:
        return []
    every = timedelta(minutes=settings.ledger_checkpoint_minutes) if scheduled else None
    return await write_checkpoints(
        session, settings.ledger_signing_key, every=every, file=settings.ledger_checkpoint_file
    )


async def sweep_checkpoints(app: Litestar) -> None:
    settings: Settings = app.state.settings
    if not settings.ledger_signing_key:
        if id(app) not in _warned:
            _warned.add(id(app))
            log.warning("ledger_checkpoints_off", reason="LEDGER_SIGNING_KEY is not set")
        return
    async with app.state.sessionmaker() as session:
        written = await checkpoint_now(session, settings, scheduled=True)
    if written:
        log.info("ledger_checkpoints", chains=[cp.chain for cp in written])
