"""Which confidential addresses a user may see, and recording each time one is shown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from beds.audit import record_address_release
from beds.models import Facility
from beds.visibility import Viewer, may_see_address
from exchange.accounts.models import User
from exchange.web.auth import viewer_for

# Each source maps a user to {facility_id: grounds}; holds and placements register theirs.
GrantSource = Callable[[AsyncSession, User], Awaitable[dict[str, str]]]
GRANT_SOURCES: list[GrantSource] = []


async def address_grants(session: AsyncSession, user: User) -> dict[str, str]:
    grants: dict[str, str] = {}
    for source in GRANT_SOURCES:
        grants.update(await source(session, user))
    return grants


async def viewer_with_grants(session: AsyncSession, user: User) -> tuple[Viewer, dict[str, str]]:
    grants = await address_grants(session, user)
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


# Confirmed (and claimed) holds open a facility's address to the holder (exchange/holds_live.py).
from exchange.holds.live import hold_address_grants  # noqa: E402

GRANT_SOURCES.append(hold_address_grants)
