"""The sweeper's steps for holds (exchange/plugin.py wires them): expire what is past its time, flag what
nobody answered, lapse what nobody answered within the response window plus a grace period. Each acts
once however many processes run it (conditional updates in beds/holds.py)."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.channels import ChannelsPlugin

from beds import holds as hold_ops
from exchange.holds.live import publish_change, publish_unanswered
from exchange.settings import Settings


async def sweep_expired_holds(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for change in await hold_ops.expire_due(session):
            await publish_change(session, channels, change)


async def sweep_unanswered_holds(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    settings: Settings = app.state.settings
    async with app.state.sessionmaker() as session:
        for hold in await hold_ops.flag_unanswered(session):
            publish_unanswered(channels, hold)
        # The same step lapses what stayed unanswered past the grace period (no new registry entry needed).
        grace = timedelta(minutes=settings.hold_lapse_grace_minutes)
        for change in await hold_ops.lapse_unanswered(session, grace):
            await publish_change(session, channels, change)
