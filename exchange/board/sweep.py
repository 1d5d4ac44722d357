"""The board's background step: surge beds past their end leave their pool."""

from __future__ import annotations

from litestar import Litestar
from litestar.channels import ChannelsPlugin

from beds.pools import expire_surges
from exchange.board.live import publish_pool_views


async def sweep_surges(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for pool in await expire_surges(session):
            await publish_pool_views(session, channels, pool)
