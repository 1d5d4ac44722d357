"""Which confidential addresses a user may see, and recording each time one is shown, to anyone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.audit import OWN_ORGANISATION, RELEASES_PAGE, ReleaseFilter, address_releases, record_address_release
from beds.models import Facility
from beds.visibility import Viewer, may_see_address
from exchange.accounts.models import Organisation, User
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
    """True if the viewer may see the address; every release is audited, the facility's own organisation's
    included (DESIGN.md: "every read of a confidential address by anyone")."""
    if not may_see_address(viewer, facility.id, facility.organisation_id):
        return False
    own = viewer.organisation_id == facility.organisation_id
    await record_address_release(
        session,
        facility_id=facility.id,
        user_id=viewer.user_id,
        organisation_id=viewer.organisation_id,
        grounds=OWN_ORGANISATION if own else grants.get(facility.id, ""),
        channel=channel,
    )
    return True


@dataclass(frozen=True)
class ReleaseRow:
    """One read of an address, as the facility's staff and the network admins read the log: who, from which
    organisation, when, through which channel and on what grounds."""

    at: datetime
    facility_id: str
    facility_name: str
    user_id: str
    username: str
    display_name: str
    organisation_id: str
    organisation_name: str
    grounds: str
    channel: str

    @property
    def own_organisation(self) -> bool:
        return self.grounds == OWN_ORGANISATION


async def release_rows(
    session: AsyncSession, release_filter: ReleaseFilter, *, limit: int = RELEASES_PAGE
) -> list[ReleaseRow]:
    """The releases the filter matches, newest first, with the names of whoever read and of the facility."""
    releases = await address_releases(session, release_filter, limit=limit)
    users = await _by_id(session, User, {r.user_id for r in releases})
    orgs = await _by_id(session, Organisation, {r.organisation_id for r in releases})
    facilities = await _by_id(session, Facility, {r.facility_id for r in releases})
    rows = []
    for r in releases:
        user, org, facility = users.get(r.user_id), orgs.get(r.organisation_id), facilities.get(r.facility_id)
        rows.append(
            ReleaseRow(
                at=r.at,
                facility_id=r.facility_id,
                facility_name=facility.name if facility else "",
                user_id=r.user_id,
                username=user.username if user else "",
                display_name=user.display_name if user else "",
                organisation_id=r.organisation_id,
                organisation_name=org.name if org else "",
                grounds=r.grounds,
                channel=r.channel,
            )
        )
    return rows


async def _by_id(session: AsyncSession, model: Any, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    rows = await session.execute(select(model).where(model.id.in_(ids)))
    return {row.id: row for row in rows.scalars().all()}
