"""The address grant source of placements (exchange/plugin.py wires it): a case's stay lets the case's workers see
the facility's address while it lasts and `CLAIM_GRANT_HOURS` after it ends. The rule itself is
beds/placements.py `address_grants`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from beds import placements as placement_ops
from exchange.accounts.models import User
from exchange.registry import GrantSource
from exchange.settings import Settings
from exchange.web.auth import viewer_for


def placement_address_grants(settings: Settings) -> GrantSource:
    """The grant source under these settings (how long after a stay ends the address stays open)."""
    after = timedelta(hours=settings.claim_grant_hours)

    async def placement_address_grants(session: AsyncSession, user: User) -> dict[str, str]:
        return await placement_ops.address_grants(session, viewer_for(user), after=after)

    return placement_address_grants
