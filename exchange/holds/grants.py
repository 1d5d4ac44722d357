"""The address grant source of holds (exchange/plugin.py wires it): a confirmed hold lets its holder see
where the beds are while it is confirmed; a claimed one for `CLAIM_GRANT_HOURS` after the claim (until
placements exist). The rule itself is beds/holds.py `address_grants`."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from beds import holds as hold_ops
from exchange.accounts.models import User
from exchange.settings import Settings
from exchange.web.auth import viewer_for


@cache
def claim_grant() -> timedelta:
    # A grant source takes (session, user) only, so the setting is read from the environment, once.
    return timedelta(hours=Settings.from_env().claim_grant_hours)


async def hold_address_grants(session: AsyncSession, user: User) -> dict[str, str]:
    return await hold_ops.address_grants(session, viewer_for(user), claim_grant=claim_grant())
