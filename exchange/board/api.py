"""Facilities and pools in the JSON API."""

from __future__ import annotations

from litestar import Controller, Request, get, post, put
from msgspec.structs import asdict

from exchange.accounts.models import Role
from exchange.board.nearby import facility_place, fit_criteria, near_place, nearest_first, with_distance
from exchange.board.schemas import (
    WHERE,
    AdjustRequest,
    BoardQuery,
    FacilityOut,
    PoolChangeOut,
    PoolOut,
    PutPoolRequest,
    SurgeRequest,
)
from exchange.board.service import SERVICE, BoardService
from exchange.web.auth import requires_roles
from exchange.web.forms import idempotency_key, request_hash


class FacilityController(Controller):
    path = "/api/v1/facilities"
    tags = ["beds"]
    dependencies = {**SERVICE, **WHERE}

    @get("/")
    async def list_facilities(
        self,
        service: BoardService,
        where: BoardQuery,
        min_free: int = 0,
        indigenous_led: bool = False,
        culturally_specific: bool = False,
        near: str | None = None,
        answers_now: bool = False,
    ) -> list[FacilityOut]:
        """API.md: `language`, `indigenous_led`, `culturally_specific`; with `near` (a city, in `province` when
        given) each facility carries `distance_km` (city precision) and the nearest come first."""
        place = near_place(near, where.province)
        criteria = [name for name, on in fit_criteria(indigenous_led, culturally_specific) if on]
        criteria += ["answers_now"] if answers_now else []  # those whose answering hours cover now (issue 12)
        found = await service.facilities(where.to_filter(criteria=criteria, min_free=min_free))
        if place is None:
            return [FacilityOut.of(listing, with_contact=show_contact) for listing, show_contact in found]
        return [
            with_distance(FacilityOut.of(listing, with_contact=show_contact), km)
            for (listing, show_contact), km in nearest_first(found, place, lambda item: facility_place(item[0]))
        ]

    @get("/{facility_id:str}")
    async def get_facility(self, service: BoardService, facility_id: str) -> FacilityOut:
        view = await service.facility(facility_id, channel="api")
        return FacilityOut.of(view.listing, with_contact=view.show_contact)


class PoolController(Controller):
    path = "/api/v1/pools"
    tags = ["beds"]
    guards = [requires_roles(Role.SHELTER_STAFF)]
    dependencies = SERVICE

    @post("/{pool_id:str}/adjust", status_code=200)
    async def adjust(self, request: Request, service: BoardService, pool_id: str, data: AdjustRequest) -> PoolOut:
        once = service.idempotency(idempotency_key(request), request_hash(data, action="adjust", pool_id=pool_id))
        return PoolOut.of(await service.adjust_pool(pool_id, **asdict(data), idempotency=once))

    @put("/{pool_id:str}")
    async def put_pool(self, service: BoardService, pool_id: str, data: PutPoolRequest) -> PoolOut:
        return PoolOut.of(await service.set_pool_counts(pool_id, **asdict(data)))

    @post("/{pool_id:str}/surge", status_code=201)
    async def add_surge(self, request: Request, service: BoardService, pool_id: str, data: SurgeRequest) -> PoolOut:
        once = service.idempotency(idempotency_key(request), request_hash(data, action="surge", pool_id=pool_id))
        pool = await service.add_surge(
            pool_id, beds=data.beds, until=data.expires_at, reason=data.reason, idempotency=once
        )
        return PoolOut.of(pool)

    @get("/{pool_id:str}/history")
    async def history(self, service: BoardService, pool_id: str) -> list[PoolChangeOut]:
        return [PoolChangeOut.of(change) for change in await service.pool_history(pool_id)]
