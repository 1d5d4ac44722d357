"""The loop that runs background work with nobody acting: every step of `app.state.registry.sweep_steps`.

Every process runs it; each step acts once however many do (conditional updates or SKIP LOCKED in the step).
"""

from __future__ import annotations

import asyncio

import structlog
from litestar import Litestar

log = structlog.get_logger()


async def sweep_once(app: Litestar) -> None:
    for step in app.state.registry.sweep_steps:
        try:
            await step(app)
        except Exception:  # a failing step must not stop the others, nor the loop
            log.exception("sweep_step_failed", step=step.__name__)


async def run_sweeper(app: Litestar) -> None:
    interval = app.state.settings.sweep_interval_seconds
    while True:
        await asyncio.sleep(interval)
        await sweep_once(app)
