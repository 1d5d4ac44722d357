"""The board's operations for one request's user, shared by the board's API and pages.

Read the board and one facility (an address is released only to whoever may see it, and every release is audited,
the facility's own organisation's included; its staff see who read it); police-held beds count as not free for
whoever is not party to the hold; move a pool's counts (a +1/-1 or a surge once per Idempotency-Key), open surge
beds and confirm counts, for the facility's own staff only, and publish every change to the live boards, each
audience its own version. exchange/board/api.py and pages.py reach it as the `service` dependency (`SERVICE`) and
call nothing else for behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import pools
from beds.audit import ReleaseFilter
from beds.board import (
    BoardFilter,
    FacilityListing,
    as_seen_by,
    get_listing,
    home_place,
    known_cities,
    list_facilities,
    partner_ids,
    with_partner_names,
)
from beds.board import pool_histories as histories_of
from beds.board import pool_history as changes_of
from beds.facilities import facility_ids_of
from beds.models import PROVINCES, BedPool, Facility, PoolChange
from beds.pools import Idempotency
from beds.reports import DayOccupancy, StayFigures, daily_occupancy, stay_report
from beds.timeutil import utcnow
from beds.visibility import may_edit_pool
from exchange.accounts.models import Organisation, Role, User
from exchange.board.addresses import ReleaseRow, release_rows, reveal_address, viewer_with_grants
from exchange.board.live import publish_pool_views
from exchange.registry import GrantSource
from exchange.settings import Settings
from exchange.web.auth import viewer_for
from exchange.web.personal_data import refuse_personal_data

# The latest reads of its address a facility's page shows its staff.
READERS_SHOWN = 50


@dataclass(frozen=True)
class Board:
    """What the board page shows a user: the listings, which of them they may edit, and their stale facilities."""

    listings: list[FacilityListing]
    own_facility_ids: frozenset[str]
    stale: list[Facility]
    now: datetime


@dataclass(frozen=True)
class FacilityView:
    listing: FacilityListing
    show_contact: bool
    can_edit: bool
    # The latest changes of each pool, for its own staff only.
    history: dict[str, list[PoolChange]] = field(default_factory=dict)
    # Who read the facility's address, when and on what grounds: for its own staff only.
    readers: list[ReleaseRow] = field(default_factory=list)


@dataclass(frozen=True)
class Occupancy:
    days: list[DayOccupancy]
    network_wide: bool
    province: str | None
    # Stays ended in the same days: their average length and turnover (counts only).
    stays: StayFigures | None = None


@dataclass
class BoardService:
    db: AsyncSession
    channels: ChannelsPlugin
    settings: Settings
    user: User
    grant_sources: Sequence[GrantSource] = ()

    # Reading

    async def own_facility_ids(self) -> frozenset[str]:
        """The facilities whose counts this user may change (none unless they are shelter staff)."""
        if not self.user.has(Role.SHELTER_STAFF):
            return frozenset()
        return await facility_ids_of(self.db, self.user.organisation_id)

    async def _as_seen(self, listings: list[FacilityListing]) -> list[FacilityListing]:
        """Police-held beds this user is not party to count as not free (DESIGN.md, Visibility)."""
        seen = await as_seen_by(
            self.db, listings, organisation_id=self.user.organisation_id, sees_all=self.user.has(Role.COORDINATOR)
        )
        partners = partner_ids(seen)
        if not partners:
            return seen
        rows = await self.db.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(partners))  # type: ignore[attr-defined]
        )
        return with_partner_names(seen, {str(i): str(n) for i, n in rows.all()})

    async def board(self, board_filter: BoardFilter) -> Board:
        listings = await list_facilities(self.db, board_filter, stale_after=self.settings.stale_after)
        listings = await self._as_seen(listings)
        now = utcnow()
        stale: list[Facility] = []
        if self.user.has(Role.SHELTER_STAFF):
            stale = await pools.stale_facilities(self.db, self.user.organisation_id, now - self.settings.stale_after)
        return Board(listings, await self.own_facility_ids(), stale, now)

    async def home(self) -> tuple[str, str]:
        """Where this user works, (province, city): the board opens there. ("", "") for a national organisation."""
        organisation = await self.db.get(Organisation, self.user.organisation_id)
        return await home_place(self.db, self.user.organisation_id, organisation.province if organisation else "")

    async def cities(self) -> dict[str, list[str]]:
        """The cities with a facility, by province: the board's city picker."""
        return await known_cities(self.db)

    async def facilities(self, board_filter: BoardFilter) -> list[tuple[FacilityListing, bool]]:
        """The listings the filter matches, each with whether this user may see its address."""
        listings = await self._as_seen(
            await list_facilities(self.db, board_filter, stale_after=self.settings.stale_after)
        )
        viewer, grants = await viewer_with_grants(self.db, self.user, self.grant_sources)
        return [
            (listing, await reveal_address(self.db, viewer, grants, listing.facility, "api")) for listing in listings
        ]

    async def facility(self, facility_id: str, *, channel: str, history: int = 0) -> FacilityView:
        """One facility as this user may see it; its own staff also get the last `history` changes of each pool."""
        listing = (
            await self._as_seen([await get_listing(self.db, facility_id, stale_after=self.settings.stale_after)])
        )[0]
        viewer, grants = await viewer_with_grants(self.db, self.user, self.grant_sources)
        show_contact = await reveal_address(self.db, viewer, grants, listing.facility, channel)
        can_edit = may_edit_pool(viewer, listing.facility.organisation_id)
        changes, readers = {}, []
        if can_edit and history:
            changes = await histories_of(self.db, [pool.id for pool in listing.pools], limit=history)
        if can_edit:
            readers = await release_rows(self.db, ReleaseFilter(facility_id=facility_id), limit=READERS_SHOWN)
        return FacilityView(listing, show_contact, can_edit, changes, readers)

    async def pool_history(self, pool_id: str) -> list[PoolChange]:
        await self.staffed_pool(pool_id)
        return await changes_of(self.db, pool_id)

    async def occupancy(self, *, province: str | None, days: int) -> Occupancy:
        """End-of-day occupancy: of the network for coordinators and network admins, else of the user's own
        facilities. An unknown province is no filter."""
        network_wide = self.user.has(Role.COORDINATOR, Role.NETWORK_ADMIN)
        province = province if province in PROVINCES else None
        report = await daily_occupancy(
            self.db, organisation_id=None if network_wide else self.user.organisation_id, province=province, days=days
        )
        if network_wide and not self.user.has(Role.COORDINATOR):
            # A network admin is party to no police hold: held beds read as not free (DESIGN.md, Visibility).
            report = [day.held_as_not_free() for day in report]
        stays = await stay_report(
            self.db, organisation_id=None if network_wide else self.user.organisation_id, province=province, days=days
        )
        return Occupancy(report, network_wide, province, stays)

    # Changing counts: the facility's own staff only

    async def staffed_facility(self, facility_id: str) -> Facility:
        """The facility, if this user is one of its staff; 403 otherwise (every user may read every facility)."""
        facility = await self.db.get(Facility, facility_id)
        if facility is None or not may_edit_pool(viewer_for(self.user), facility.organisation_id):
            raise PermissionDeniedException("Only the facility's own staff may change its counts.")
        return facility

    async def staffed_pool(self, pool_id: str) -> BedPool:
        """The pool (404 if there is none), if this user staffs its facility; 403 otherwise."""
        pool = await pools.get_pool(self.db, pool_id)
        await self.staffed_facility(pool.facility_id)
        return pool

    async def adjust_pool(
        self,
        pool_id: str,
        *,
        occupied_delta: int,
        out_of_service_delta: int,
        idempotency: Idempotency | None = None,
        version: int | None = None,
    ) -> BedPool:
        """A shelter's Arrival/Departure: move occupied and out-of-service beds by these deltas; once per key;
        with `version`, only if nobody changed the pool since the person saw it (409 `version_conflict`)."""
        await self.staffed_pool(pool_id)
        write = await pools.adjust(
            self.db,
            pool_id,
            occupied_delta=occupied_delta,
            out_of_service_delta=out_of_service_delta,
            actor_user_id=self.user.id,
            idempotency=idempotency,
            version=version,
        )
        return await self._published(write)

    async def set_pool_counts(
        self, pool_id: str, *, capacity: int, occupied: int, out_of_service: int, version: int
    ) -> BedPool:
        """Replace the counts a shelter reports, if nobody changed the pool since it read `version`."""
        await self.staffed_pool(pool_id)
        counts = {"capacity": capacity, "occupied": occupied, "out_of_service": out_of_service, "version": version}
        pool = await pools.set_counts(self.db, pool_id, **counts, actor_user_id=self.user.id)
        await publish_pool_views(self.db, self.channels, pool)
        return pool

    async def add_surge(
        self, pool_id: str, *, beds: int, until: datetime, reason: str, idempotency: Idempotency | None = None
    ) -> BedPool:
        """Open surge beds until `until` (the domain refuses an end in the past or beyond its cap); once per key."""
        refuse_personal_data("reason", reason)
        await self.staffed_pool(pool_id)
        write = await pools.add_surge(
            self.db,
            pool_id,
            beds=beds,
            expires_at=until,
            reason=reason,
            actor_user_id=self.user.id,
            idempotency=idempotency,
        )
        return await self._published(write)

    def idempotency(self, key: str | None, request_hash: str) -> Idempotency | None:
        """This user's Idempotency-Key for a write, if the request carried one."""
        return Idempotency(self.user.id, key, request_hash) if key else None

    async def _published(self, write: pools.PoolWrite) -> BedPool:
        """A first write goes to every board; a replay changed nothing and publishes nothing."""
        if not write.replayed:
            await publish_pool_views(self.db, self.channels, write.pool)
        return write.pool

    async def confirm_counts(self, facility_id: str) -> None:
        """The facility's staff say its counts are still right: it is no longer stale on any board."""
        await self.staffed_facility(facility_id)
        for pool in await pools.confirm_counts(self.db, facility_id):
            await publish_pool_views(self.db, self.channels, pool)


def provide_board_service(
    request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, settings: Settings
) -> BoardService:
    return BoardService(db, channels, settings, request.user, request.app.state.registry.grant_sources)


# The board's controllers declare this: their handlers take `service: BoardService`.
SERVICE = {"service": Provide(provide_board_service, sync_to_thread=False)}
