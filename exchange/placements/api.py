"""Placements in the JSON API (API.md, "Additions"): `GET /api/v1/placements`, one placement, its end (a
departure: the bed is no longer occupied), its expected end, and a follow-up marked done.

Who: the facility's staff, the case's workers, the coordinators, each seeing only what beds/placements.py
`may_see` lets them (404 for the rest); police planners see no placement (they see no case codes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, patch, post

from beds.errors import Invalid
from beds.placements import PLACEMENTS_PAGE, PlacementFilter
from beds.placements_models import FollowUp, Placement
from exchange.accounts.models import Role
from exchange.board.live import pool_json
from exchange.placements.schemas import ExpectedEndRequest
from exchange.placements.service import SERVICE, PlacementService
from exchange.web.auth import requires_roles
from exchange.web.forms import idempotency_key, request_hash


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def follow_up_json(follow_up: FollowUp) -> dict[str, Any]:
    return {
        "id": follow_up.id,
        "days_after": follow_up.days_after,
        "due_at": follow_up.due_at.isoformat(),
        "done_at": _at(follow_up.done_at),
    }


def placement_json(placement: Placement, follow_ups: list[FollowUp] | None = None) -> dict[str, Any]:
    return {
        "id": placement.id,
        "pool_id": placement.pool_id,
        "facility_id": placement.facility_id,
        "hold_id": placement.hold_id,
        "case_code": placement.case_code,
        "start": placement.started_at.isoformat(),
        "expected_end": _at(placement.expected_end_at),
        "end": _at(placement.ended_at),
        "follow_ups": [follow_up_json(f) for f in follow_ups or []],
    }


def _open_filter(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in {"true", "1"}:
        return True
    if value.lower() in {"false", "0"}:
        return False
    raise Invalid("invalid_filter", "open is true or false.")


def _parse_expected_end(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("invalid_expected_end", "expected_end is an ISO 8601 time with an offset, or null.") from None
    if parsed.tzinfo is None:
        raise Invalid("invalid_expected_end", "expected_end needs a UTC offset.")
    return parsed


class PlacementController(Controller):
    path = "/api/v1/placements"
    tags = ["placements"]
    guards = [requires_roles(Role.SHELTER_STAFF, Role.CASE_WORKER, Role.COORDINATOR)]
    dependencies = SERVICE

    @get("/")
    async def list_placements(
        self,
        service: PlacementService,
        facility_id: str | None = None,
        pool_id: str | None = None,
        case_code: str | None = None,
        open: str | None = None,
        limit: int = PLACEMENTS_PAGE,
    ) -> list[dict]:
        where = PlacementFilter(
            facility_id=facility_id, pool_id=pool_id, case_code=case_code, open=_open_filter(open), limit=limit
        )
        found = await service.placements(where)
        follow_ups = await service.follow_ups_of(found)
        return [placement_json(p, follow_ups.get(p.id)) for p in found]

    @get("/{placement_id:str}")
    async def get_placement(self, service: PlacementService, placement_id: str) -> dict:
        placement = await service.placement(placement_id)
        return placement_json(placement, (await service.follow_ups_of([placement])).get(placement.id))

    @post("/{placement_id:str}/end", status_code=200)
    async def end(self, request: Request, service: PlacementService, placement_id: str) -> dict:
        once = idempotency_key(request)
        idempotency = None
        if once:
            idempotency = service.idempotency(once, request_hash(None, action="end", placement_id=placement_id))
        ended = await service.end(placement_id, idempotency)
        follow_ups = (await service.follow_ups_of([ended.placement])).get(ended.placement.id)
        return {**placement_json(ended.placement, follow_ups), "pool": pool_json(ended.pool)}

    @patch("/{placement_id:str}", status_code=200)
    async def set_expected_end(self, service: PlacementService, placement_id: str, data: ExpectedEndRequest) -> dict:
        placement = await service.set_expected_end(placement_id, _parse_expected_end(data.expected_end))
        return placement_json(placement, (await service.follow_ups_of([placement])).get(placement.id))

    @post("/follow-ups/{follow_up_id:str}/done", status_code=200)
    async def follow_up_done(self, service: PlacementService, follow_up_id: str) -> dict:
        return follow_up_json(await service.mark_done(follow_up_id))
