"""The sweeper's steps for holds (exchange/plugin.py wires them): expire what is past its time, flag what
nobody answered. Each acts once however many processes run it (conditional updates in beds/holds.py)."""

from __future__ import annotations

from litestar import Litestar
from litestar.channels import ChannelsPlugin

from beds import holds as hold_ops
from exchange.holds.live import publish_change, publish_unanswered


async def sweep_expired_holds(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for change in await hold_ops.expire_due(session):
            publish_change(channels, change)


async def sweep_unanswered_holds(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for hold in await hold_ops.flag_unanswered(session):
            publish_unanswered(channels, hold)
