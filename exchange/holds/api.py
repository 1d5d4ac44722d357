"""Operations, holds and standing agreements in the JSON API (API.md, "Operations and holds")."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Controller, Request, get, post

from beds.coverage import Coverage
from beds.holds import BulkResult
from beds.holds_models import Agreement, Hold, Operation, OperationNeed
from beds.planner import Plan, PlanOptions
from beds.visibility import Viewer
from exchange.accounts.models import Role, User
from exchange.holds.fit import nearest_first, need_json
from exchange.holds.live import hold_for_viewer
from exchange.holds.schemas import (
    AgreementRequest,
    ClaimRequest,
    DeclineRequest,
    DeclineRequesterRequest,
    HoldRequest,
    KeptRequest,
    OperationRequest,
    PlanRequest,
    ReleaseAllRequest,
)
from exchange.holds.service import SERVICE, HoldService, OperationDetail
from exchange.web.auth import requires_roles
from exchange.web.forms import idempotency_key, request_hash


def coverage_json(found: Coverage) -> dict[str, Any]:
    """Per needed group: beds needed, requested (waiting for an answer), confirmed, claimed, declined, released,
    expired, and still missing; `profile` is null for holds that cover no listed need. Totals beside."""

    def counts(item: Any) -> dict[str, int]:
        names = ("needed", "requested", "confirmed", "claimed", "declined", "missing")
        return {name: getattr(item, name) for name in names}

    return {
        "groups": [
            {"profile": g.profile, **counts(g), "released": g.released, "expired": g.expired} for g in found.groups
        ],
        **counts(found),
        "covered": found.covered,
    }


def operation_json(
    operation: Operation, needs: list[OperationNeed], holds: list[Hold], viewer: Viewer
) -> dict[str, Any]:
    return {
        "id": operation.id,
        "code_name": operation.code_name,
        "province": operation.province,
        "city": operation.city,
        "window_start": operation.window_start.isoformat(),
        "window_end": operation.window_end.isoformat(),
        "notes": operation.notes,
        "organisation_id": operation.organisation_id,
        "needs": [need_json(n) for n in needs],
        "max_per_facility": operation.max_per_facility,
        "holds": [hold_for_viewer(h, viewer) for h in holds],
        "created_at": operation.created_at.isoformat(),
    }


def detail_json(found: OperationDetail, viewer: Viewer, *, with_holds: bool = True) -> dict[str, Any]:
    """The operation with its status (planned, active, ended) and coverage; its holds when `with_holds`."""
    return {
        **operation_json(found.operation, found.needs, found.holds if with_holds else [], viewer),
        "status": found.status.value,
        "coverage": coverage_json(found.coverage),
    }


def plan_json(operation: Operation, plan: Plan) -> dict[str, Any]:
    return {
        "operation_id": operation.id,
        "covered": plan.covered,
        "proposed": [dataclasses.asdict(p) for p in nearest_first(plan.proposals)],
        "missing": [{"profile": m.profile, "count": m.count} for m in plan.missing],
    }


def agreement_json(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "pool_id": agreement.pool_id,
        "facility_id": agreement.facility_id,
        "beds": agreement.beds,
        "beds_in_use": agreement.beds_in_use,
        "beds_lent": agreement.beds_lent,
        "kept_unused": agreement.beds - agreement.beds_in_use - agreement.beds_lent if agreement.active else 0,
        "partner_org_id": agreement.partner_org_id,
        "scope": agreement.scope,
        "note": agreement.note,
        "active": agreement.active,
        "created_at": agreement.created_at.isoformat(),
        "ended_at": agreement.ended_at.isoformat() if agreement.ended_at else None,
    }


def bulk_json(result: BulkResult, viewer: Viewer) -> dict[str, Any]:
    incident = result.incident
    return {
        "incident_id": incident.id,
        "kind": incident.kind,
        "holds": [hold_for_viewer(c.hold, viewer) for c in result.changes],
        "count": incident.holds,
        "beds": incident.beds,
        "at": incident.at.isoformat(),
    }


def _options(data: PlanRequest | None) -> PlanOptions:
    return data.options() if data else PlanOptions()


class OperationController(Controller):
    path = "/api/v1/operations"
    tags = ["holds"]
    dependencies = SERVICE

    @post("/", guards=[requires_roles(Role.POLICE_PLANNER)], status_code=201)
    async def create(self, request: Request[User, str, object], service: HoldService, data: OperationRequest) -> dict:
        operation, needs = await service.create_operation(
            data.new_operation(), idempotency_key=idempotency_key(request), request_hash=request_hash(data)
        )
        return operation_json(operation, needs, [], service.viewer)

    @get("/")
    async def list_operations(self, service: HoldService) -> list[dict]:
        return [detail_json(found, service.viewer, with_holds=False) for found in await service.operations()]

    @get("/{operation_id:str}")
    async def get_operation(self, service: HoldService, operation_id: str) -> dict:
        return detail_json(await service.operation(operation_id), service.viewer)

    @post("/{operation_id:str}/plan", status_code=200)
    async def plan(self, service: HoldService, operation_id: str, data: PlanRequest | None = None) -> dict:
        if data:
            data.is_partial()  # an unknown mode is refused here too
        return plan_json(*await service.plan(operation_id, _options(data)))

    @post("/{operation_id:str}/allocate", status_code=201)
    async def allocate(
        self,
        request: Request[User, str, object],
        service: HoldService,
        operation_id: str,
        data: PlanRequest | None = None,
    ) -> dict:
        """All or none by default (409 `insufficient_capacity` with `missing`); with `"mode": "partial"` (or
        `"partial": true`) the holds that exist are placed and `missing` says what is still to find."""
        key, body_hash = idempotency_key(request), request_hash(data)
        partial = data.is_partial() if data else False
        result = await service.allocate(
            operation_id, _options(data), partial=partial, idempotency_key=key, request_hash=body_hash
        )
        return {
            "operation_id": operation_id,
            "mode": "partial" if partial else "all_or_none",
            "holds": [hold_for_viewer(h, service.viewer) for h in result.holds],
            "missing": [{"profile": m.profile, "count": m.count} for m in result.missing],
            "hold_limit_reached": result.limited,
        }


class HoldController(Controller):
    path = "/api/v1/holds"
    tags = ["holds"]
    dependencies = SERVICE

    @post("/", guards=[requires_roles(Role.POLICE_PLANNER, Role.CASE_WORKER)], status_code=201)
    async def create(self, request: Request[User, str, object], service: HoldService, data: HoldRequest) -> dict:
        hold = await service.create_hold(
            data, idempotency_key=idempotency_key(request), request_hash=request_hash(data)
        )
        return hold_for_viewer(hold, service.viewer)

    @post("/decline-requester", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=200)
    async def decline_requester(self, service: HoldService, data: DeclineRequesterRequest) -> dict:
        """Decline every open request of one requester at the caller's facilities, in one action."""
        return bulk_json(await service.decline_requester(data.requested_by, data.reason), service.viewer)

    @post("/release-all", guards=[requires_roles(Role.COORDINATOR)], status_code=200)
    async def release_all(self, service: HoldService, data: ReleaseAllRequest) -> dict:
        """The incident button: release every active hold of one user or organisation, recorded."""
        result = await service.release_all(
            user_id=data.user_id, organisation_id=data.organisation_id, reason=data.reason
        )
        return bulk_json(result, service.viewer)

    @get("/{hold_id:str}")
    async def get_hold(self, service: HoldService, hold_id: str) -> dict:
        return hold_for_viewer(await service.visible_hold(hold_id), service.viewer)

    @post("/{hold_id:str}/confirm", status_code=200)
    async def confirm(self, service: HoldService, hold_id: str) -> dict:
        return hold_for_viewer(await service.confirm(hold_id), service.viewer)

    @post("/{hold_id:str}/decline", status_code=200)
    async def decline(self, service: HoldService, hold_id: str, data: DeclineRequest | None = None) -> dict:
        return hold_for_viewer(await service.decline(hold_id, data.reason if data else ""), service.viewer)

    @post("/{hold_id:str}/release", status_code=200)
    async def release(self, service: HoldService, hold_id: str) -> dict:
        return hold_for_viewer(await service.release(hold_id), service.viewer)

    @post("/{hold_id:str}/claim", status_code=200)
    async def claim(self, service: HoldService, hold_id: str, data: ClaimRequest) -> dict:
        return hold_for_viewer(await service.claim(hold_id, data.beds_used), service.viewer)


class AgreementController(Controller):
    path = "/api/v1/agreements"
    tags = ["holds"]
    dependencies = SERVICE

    @post("/", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=201)
    async def create(self, service: HoldService, data: AgreementRequest) -> dict:
        agreement = await service.create_agreement(
            pool_id=data.pool_id, beds=data.beds, partner_org_id=data.partner_org_id, scope=data.scope, note=data.note
        )
        return agreement_json(agreement)

    @get("/", guards=[requires_roles(Role.SHELTER_STAFF, Role.COORDINATOR, Role.NETWORK_ADMIN)])
    async def list_agreements(self, service: HoldService) -> list[dict]:
        return [agreement_json(a) for a in await service.agreements()]

    @post("/{agreement_id:str}/end", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=200)
    async def end(self, service: HoldService, agreement_id: str) -> dict:
        return agreement_json(await service.end_agreement(agreement_id))

    @post("/{agreement_id:str}/kept", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=200)
    async def set_kept(self, service: HoldService, agreement_id: str, data: KeptRequest) -> dict:
        """Keep `beds` from now on: more needs free beds (409 `kept_needs_free_beds`), fewer never goes below
        the beds the partner's holds use (409 `kept_below_in_use`)."""
        return agreement_json(await service.set_kept(agreement_id, data.beds))
