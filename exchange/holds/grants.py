"""The address grant source of holds (exchange/plugin.py wires it): a confirmed hold lets its holder see
where the beds are while it is confirmed; a claimed one for `CLAIM_GRANT_HOURS` after the claim (until
placements exist). The rule itself is beds/holds.py `address_grants`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from beds import holds as hold_ops
from exchange.accounts.models import User
from exchange.registry import GrantSource
from exchange.settings import Settings
from exchange.web.auth import viewer_for


def hold_address_grants(settings: Settings) -> GrantSource:
    """The grant source under these settings (how long a claim keeps the address open)."""
    claim_grant = timedelta(hours=settings.claim_grant_hours)

    async def hold_address_grants(session: AsyncSession, user: User) -> dict[str, str]:
        return await hold_ops.address_grants(session, viewer_for(user), claim_grant=claim_grant)

    return hold_address_grants
