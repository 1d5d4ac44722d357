"""Which confidential addresses a user may see, and recording each time one is shown."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from beds.audit import record_address_release
from beds.models import Facility
from beds.visibility import Viewer, may_see_address
from exchange.accounts.models import User
from exchange.registry import GrantSource
from exchange.web.auth import viewer_for


async def address_grants(session: AsyncSession, user: User, sources: Sequence[GrantSource]) -> dict[str, str]:
    """Every facility whose address this user may see, with the grounds, from each source the plugin wired."""
    grants: dict[str, str] = {}
    for source in sources:
        grants.update(await source(session, user))
    return grants


async def viewer_with_grants(
    session: AsyncSession, user: User, sources: Sequence[GrantSource]
) -> tuple[Viewer, dict[str, str]]:
    grants = await address_grants(session, user, sources)
    return viewer_for(user, frozenset(grants)), grants


async def reveal_address(
    session: AsyncSession, viewer: Viewer, grants: dict[str, str], facility: Facility, channel: str
) -> bool:
    """True if the viewer may see the address; a release outside the facility's own staff is audited."""
    if not may_see_address(viewer, facility.id, facility.organisation_id):
        return False
    if viewer.organisation_id != facility.organisation_id:
        await record_address_release(
            session,
            facility_id=facility.id,
            user_id=viewer.user_id,
            organisation_id=viewer.organisation_id,
            grounds=grants.get(facility.id, ""),
            channel=channel,
        )
    return True
