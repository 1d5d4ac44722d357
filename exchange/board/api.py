"""Facilities and pools in the JSON API."""

from __future__ import annotations

from litestar import Controller, Request, get, post, put
from litestar.channels import ChannelsPlugin
from litestar.exceptions import PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession

from beds import pools as pool_ops
from beds.board import BoardFilter, get_listing, list_facilities, pool_history
from beds.errors import Invalid
from beds.models import Facility, FacilityKind
from beds.visibility import may_edit_pool
from exchange.accounts.models import Role, User
from exchange.board.addresses import reveal_address, viewer_with_grants
from exchange.board.schemas import (
    AdjustRequest,
    FacilityOut,
    PoolChangeOut,
    PoolOut,
    PutPoolRequest,
    SurgeRequest,
)
from exchange.live.events import publish_pool
from exchange.settings import Settings
from exchange.web.auth import requires_roles, viewer_for


class FacilityController(Controller):
    path = "/api/v1/facilities"
    tags = ["beds"]

    @get("/")
    async def list_facilities(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        settings: Settings,
        province: str | None = None,
        city: str | None = None,
        profile: str | None = None,
        kind: str | None = None,
        min_free: int = 0,
    ) -> list[FacilityOut]:
        if min_free < 0:
            raise Invalid("invalid_filter", "min_free cannot be negative.")
        if kind and kind not in FacilityKind.__members__.values():
            # PostgreSQL refuses an unknown enum value with an error: answer 422, not 500.
            raise Invalid("invalid_filter", "Unknown facility kind.")
        listings = await list_facilities(
            db,
            BoardFilter(province=province, city=city, profile=profile, kind=kind, min_free=min_free),
            stale_after=settings.stale_after,
        )
        viewer, grants = await viewer_with_grants(db, request.user, request.app.state.registry.grant_sources)
        return [
            FacilityOut.of(listing, with_contact=await reveal_address(db, viewer, grants, listing.facility, "api"))
            for listing in listings
        ]

    @get("/{facility_id:str}")
    async def get_facility(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, facility_id: str
    ) -> FacilityOut:
        listing = await get_listing(db, facility_id, stale_after=settings.stale_after)
        viewer, grants = await viewer_with_grants(db, request.user, request.app.state.registry.grant_sources)
        return FacilityOut.of(listing, with_contact=await reveal_address(db, viewer, grants, listing.facility, "api"))


async def _pool_for_staff(db: AsyncSession, user: User, pool_id: str) -> str:
    """The pool's facility id, if this user staffs it; otherwise 403 (every user may see every pool)."""
    pool = await pool_ops.get_pool(db, pool_id)
    facility = await db.get(Facility, pool.facility_id)
    if facility is None or not may_edit_pool(viewer_for(user), facility.organisation_id):
        raise PermissionDeniedException("Only the facility's own staff may change its counts.")
    return facility.id


class PoolController(Controller):
    path = "/api/v1/pools"
    tags = ["beds"]
    guards = [requires_roles(Role.SHELTER_STAFF)]

    @post("/{pool_id:str}/adjust", status_code=200)
    async def adjust(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        pool_id: str,
        data: AdjustRequest,
    ) -> PoolOut:
        await _pool_for_staff(db, request.user, pool_id)
        pool = await pool_ops.adjust(
            db,
            pool_id,
            occupied_delta=data.occupied_delta,
            out_of_service_delta=data.out_of_service_delta,
            actor_user_id=request.user.id,
        )
        publish_pool(channels, pool)
        return PoolOut.of(pool)

    @put("/{pool_id:str}")
    async def put_pool(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        pool_id: str,
        data: PutPoolRequest,
    ) -> PoolOut:
        await _pool_for_staff(db, request.user, pool_id)
        pool = await pool_ops.set_counts(
            db,
            pool_id,
            capacity=data.capacity,
            occupied=data.occupied,
            out_of_service=data.out_of_service,
            version=data.version,
            actor_user_id=request.user.id,
        )
        publish_pool(channels, pool)
        return PoolOut.of(pool)

    @post("/{pool_id:str}/surge", status_code=201)
    async def add_surge(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        pool_id: str,
        data: SurgeRequest,
    ) -> PoolOut:
        await _pool_for_staff(db, request.user, pool_id)
        if data.expires_at.tzinfo is None:
            raise Invalid("invalid_expiry", "expires_at needs a UTC offset.")
        await pool_ops.add_surge(
            db,
            pool_id,
            beds=data.beds,
            expires_at=data.expires_at,
            reason=data.reason,
            actor_user_id=request.user.id,
        )
        pool = await pool_ops.get_pool(db, pool_id)
        publish_pool(channels, pool)
        return PoolOut.of(pool)

    @get("/{pool_id:str}/history")
    async def history(self, request: Request[User, str, object], db: AsyncSession, pool_id: str) -> list[PoolChangeOut]:
        await _pool_for_staff(db, request.user, pool_id)
        return [
            PoolChangeOut(
                at=c.at,
                reason=c.reason,
                actor_user_id=c.actor_user_id,
                before={
                    "capacity": c.capacity_before,
                    "occupied": c.occupied_before,
                    "out_of_service": c.out_of_service_before,
                    "held": c.held_before,
                },
                after={
                    "capacity": c.capacity_after,
                    "occupied": c.occupied_after,
                    "out_of_service": c.out_of_service_after,
                    "held": c.held_after,
                },
            )
            for c in await pool_history(db, pool_id)
        ]
