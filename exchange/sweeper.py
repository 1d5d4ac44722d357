"""Background work that must happen with nobody acting: expiring surge beds and holds, flagging silence."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from litestar import Litestar
from litestar.channels import ChannelsPlugin

from beds.pools import expire_surges
from exchange.live.events import publish_pool

log = structlog.get_logger()

# Extra sweep steps registered by other parts of the shell (holds, ledger), each given the app.
SWEEP_STEPS: list[Callable[[Litestar], Awaitable[None]]] = []


async def sweep_surges(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for pool in await expire_surges(session):
            publish_pool(channels, pool)


async def sweep_once(app: Litestar) -> None:
    for step in (sweep_surges, *SWEEP_STEPS):
        try:
            await step(app)
        except Exception:  # a failing step must not stop the others, nor the loop
            log.exception("sweep_step_failed", step=step.__name__)


async def run_sweeper(app: Litestar) -> None:
    interval = app.state.settings.sweep_interval_seconds
    while True:
        await asyncio.sleep(interval)
        await sweep_once(app)


# Holds: expired holds give their beds back, unanswered requests are flagged (exchange/holds_live.py).
from exchange.holds.live import sweep_expired_holds, sweep_unanswered_holds  # noqa: E402

SWEEP_STEPS.extend([sweep_expired_holds, sweep_unanswered_holds])

# Stripe: a virtual card past its validity is cancelled and its unspent commitment released.
from exchange.stripe.api import sweep_expired_cards  # noqa: E402

SWEEP_STEPS.append(sweep_expired_cards)
