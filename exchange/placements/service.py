"""The shell's operations on placements (stays), for one request's user.

Read the placements the user may see (the facility's staff, the case's workers, the coordinators: beds/placements.py
`may_see`), end one (a departure: the pool's count moves in the same transaction and goes to every board), set its
expected end, offer a shelter's Departure the choice of which stay ends, and give a case worker their follow-up
dates. exchange/placements/api.py and pages.py reach it as the `service` dependency (`SERVICE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import placements as placement_ops
from beds.errors import NotFound
from beds.models import BedPool, Facility
from beds.placements import Ended, PlacementFilter
from beds.placements_models import FollowUp, Placement
from beds.pools import Idempotency, get_pool
from beds.visibility import Viewer, may_edit_pool
from exchange.accounts.models import Role, User
from exchange.board.live import publish_pool_views
from exchange.settings import Settings
from exchange.web.auth import viewer_for

# The follow-ups a case worker's home shows, soonest first.
FOLLOW_UPS_SHOWN = 5


@dataclass(frozen=True)
class DepartureChoice:
    """What a shelter's Departure asks: which open stay of this pool ends, or none (a walk-in)."""

    pool: BedPool
    facility: Facility
    placements: list[Placement]


@dataclass
class PlacementService:
    db: AsyncSession
    channels: ChannelsPlugin
    settings: Settings
    user: User

    @property
    def viewer(self) -> Viewer:
        return viewer_for(self.user)

    async def placements(self, where: PlacementFilter) -> list[Placement]:
        return await placement_ops.list_placements(self.db, self.viewer, where)

    async def placement(self, placement_id: str) -> Placement:
        return await placement_ops.get_placement(self.db, self.viewer, placement_id)

    async def facility_of(self, placement: Placement) -> Facility:
        facility = await self.db.get(Facility, placement.facility_id)
        if facility is None:
            raise NotFound("not_found", "No such facility.")
        return facility

    async def facilities_of(self, placements: list[Placement]) -> dict[str, tuple[Facility, BedPool]]:
        """{placement pool id: (facility, pool)} for the placements shown: names and profiles for the list."""
        pool_ids = {p.pool_id for p in placements}
        if not pool_ids:
            return {}
        rows = await self.db.execute(
            select(BedPool, Facility)
            .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
            .where(BedPool.id.in_(pool_ids))  # type: ignore[attr-defined]
        )
        return {pool.id: (facility, pool) for pool, facility in rows.all()}

    async def follow_ups_of(self, placements: list[Placement]) -> dict[str, list[FollowUp]]:
        return await placement_ops.follow_ups_of(self.db, (p.id for p in placements))

    async def end(self, placement_id: str, idempotency: Idempotency | None = None) -> Ended:
        """A departure that ends this stay; the new counts go to every board (a replay publishes nothing)."""
        ended = await placement_ops.end_placement(
            self.db,
            self.viewer,
            placement_id,
            follow_up_days=self.settings.placement_follow_up_days,
            idempotency=idempotency,
        )
        if not ended.replayed:
            await publish_pool_views(self.db, self.channels, ended.pool)
        return ended

    def idempotency(self, key: str, request_hash: str) -> Idempotency:
        """This user's Idempotency-Key for an end, scoped to them."""
        return Idempotency(self.user.id, key, request_hash)

    async def set_expected_end(self, placement_id: str, expected_end: datetime | None) -> Placement:
        return await placement_ops.set_expected_end(self.db, self.viewer, placement_id, expected_end)

    async def departure_choice(self, pool_id: str) -> DepartureChoice:
        """The pool's open stays, for its facility's own staff only (403 otherwise)."""
        pool = await get_pool(self.db, pool_id)
        facility = await self.db.get(Facility, pool.facility_id)
        if facility is None or not may_edit_pool(self.viewer, facility.organisation_id):
            raise PermissionDeniedException("Only the facility's own staff may count a departure.")
        found = await self.placements(PlacementFilter(pool_id=pool_id, open=True))
        found.sort(key=lambda p: p.started_at)
        return DepartureChoice(pool, facility, found)

    async def follow_ups(self, limit: int = FOLLOW_UPS_SHOWN) -> list[tuple[FollowUp, Placement]]:
        """This case worker's follow-ups not yet done, soonest first."""
        if not self.user.has(Role.CASE_WORKER):
            return []
        return await placement_ops.follow_ups_due(self.db, self.user.id, limit=limit)

    async def follow_up(self, follow_up_id: str) -> FollowUp:
        """A follow-up of one of this user's organisation's cases (404 otherwise)."""
        return await placement_ops.get_follow_up(self.db, self.viewer, follow_up_id)

    async def mark_done(self, follow_up_id: str) -> FollowUp:
        return await placement_ops.mark_follow_up_done(self.db, self.viewer, follow_up_id)


def provide_placement_service(
    request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, settings: Settings
) -> PlacementService:
    return PlacementService(db, channels, settings, request.user)


# The placements' controllers declare this: their handlers take `service: PlacementService`.
SERVICE = {"service": Provide(provide_placement_service, sync_to_thread=False)}
