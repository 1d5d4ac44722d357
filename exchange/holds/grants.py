"""The address grant source of holds (exchange/plugin.py wires it): a confirmed hold lets its holder see
where the beds are. The rule itself is beds/holds.py `address_grants`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from beds import holds as hold_ops
from exchange.accounts.models import User
from exchange.web.auth import viewer_for


async def hold_address_grants(session: AsyncSession, user: User) -> dict[str, str]:
    return await hold_ops.address_grants(session, viewer_for(user))
