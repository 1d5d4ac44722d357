"""Operations, holds and standing agreements in the JSON API (API.md, "Operations and holds")."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncSession

from beds import holds as hold_ops
from beds import operations as op_ops
from beds.errors import Invalid
from beds.holds_models import Agreement, Hold, Operation, OperationNeed
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.board.schemas import Body
from exchange.holds.live import (
    hold_for_viewer,
    notify_new_holds,
    operation_requester,
    publish_change,
    requester_for,
    response_window,
)
from exchange.live.events import publish_pool
from exchange.settings import Settings
from exchange.web.auth import requires_roles, viewer_for

IDEMPOTENCY_KEY_MAX = 200


class HoldRequest(Body):
    pool_id: str
    beds: int
    expires_at: datetime
    operation_id: str | None = None
    case_code: str | None = None


class DeclineRequest(Body):
    reason: str = ""


class ClaimRequest(Body):
    beds_used: int


class NeedIn(Body):
    profile: str
    count: int


class OperationRequest(Body):
    code_name: str
    province: str
    window_start: datetime
    window_end: datetime
    needs: list[NeedIn]
    city: str = ""
    notes: str = ""


class PlanRequest(Body):
    allow_other_cities: bool = False
    allow_other_provinces: bool = False


class AgreementRequest(Body):
    pool_id: str
    beds: int
    scope: str = "all"
    note: str = ""


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise Invalid("invalid_idempotency_key", f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.")
    return key


def body_sha(data: msgspec.Struct | None) -> str:
    return hold_ops.request_sha256(msgspec.to_builtins(data) if data is not None else {})


def operation_json(operation: Operation, needs: list[OperationNeed], holds: list[Any], user: User) -> dict[str, Any]:
    return {
        "id": operation.id,
        "code_name": operation.code_name,
        "province": operation.province,
        "city": operation.city,
        "window_start": operation.window_start.isoformat(),
        "window_end": operation.window_end.isoformat(),
        "notes": operation.notes,
        "organisation_id": operation.organisation_id,
        "needs": [{"profile": n.profile, "count": n.count} for n in needs],
        "holds": [hold_for_viewer(h, user) for h in holds],
        "created_at": operation.created_at.isoformat(),
    }


async def refresh_expiry(db: AsyncSession, channels: ChannelsPlugin, hold_ids: list[str]) -> None:
    """The check on read: whatever is past its expiry reads as expired, with its beds back."""
    for hold_id in hold_ids:
        change = await hold_ops.expire_if_due(db, hold_id)
        if change is not None:
            publish_change(channels, change)


async def visible_hold(db: AsyncSession, channels: ChannelsPlugin, user: User, hold_id: str) -> Hold:
    """The hold if the user is a party (else 404), expired first when it is overdue: a read never says
    "requested" about a hold whose time has passed. Only an overdue hold costs a second transaction."""
    hold = await hold_ops.get_hold(db, hold_id, viewer_for(user))
    if not (hold.is_active and hold.expires_at <= utcnow()):
        return hold
    change = await hold_ops.expire_if_due(db, hold_id)
    if change is None:  # another request expired or moved it in between: read what it is now
        return await hold_ops.get_hold(db, hold_id)
    publish_change(channels, change)
    return change.hold


async def load_operation(db: AsyncSession, channels: ChannelsPlugin, user: User, operation_id: str) -> dict[str, Any]:
    operation = await op_ops.get_operation(db, viewer_for(user), operation_id)
    holds = await hold_ops.holds_of_operation(db, operation_id)
    now = utcnow()
    due = [h.id for h in holds if h.is_active and h.expires_at <= now]
    if due:
        await refresh_expiry(db, channels, due)
        holds = await hold_ops.holds_of_operation(db, operation_id)
    return operation_json(operation, await op_ops.needs_of(db, operation_id), holds, user)


def plan_json(operation: Operation, plan: op_ops.Plan) -> dict[str, Any]:
    return {
        "operation_id": operation.id,
        "covered": plan.covered,
        "proposed": [dataclasses.asdict(p) for p in plan.proposals],
        "missing": [{"profile": m.profile, "count": m.count} for m in plan.missing],
    }


class OperationController(Controller):
    path = "/api/v1/operations"
    tags = ["holds"]

    @post("/", guards=[requires_roles(Role.POLICE_PLANNER)], status_code=201)
    async def create(self, request: Request[User, str, object], db: AsyncSession, data: OperationRequest) -> dict:
        operation, needs = await op_ops.create_operation(
            db,
            viewer_for(request.user),
            code_name=data.code_name,
            province=data.province,
            window_start=data.window_start,
            window_end=data.window_end,
            needs=[op_ops.Need(n.profile, n.count) for n in data.needs],
            city=data.city,
            notes=data.notes,
        )
        return operation_json(operation, needs, [], request.user)

    @get("/")
    async def list_operations(self, request: Request[User, str, object], db: AsyncSession) -> list[dict]:
        operations = await op_ops.operations_for(db, viewer_for(request.user))
        user = request.user
        visible = [o for o in operations if op_ops.may_see_operation(viewer_for(user), o)]
        return [operation_json(o, await op_ops.needs_of(db, o.id), [], user) for o in visible]

    @get("/{operation_id:str}")
    async def get_operation(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, operation_id: str
    ) -> dict:
        return await load_operation(db, channels, request.user, operation_id)

    @post("/{operation_id:str}/plan", status_code=200)
    async def plan(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        operation_id: str,
        data: PlanRequest | None = None,
    ) -> dict:
        options = op_ops.PlanOptions(
            allow_other_cities=bool(data and data.allow_other_cities),
            allow_other_provinces=bool(data and data.allow_other_provinces),
        )
        operation, plan = await op_ops.plan_operation(db, viewer_for(request.user), operation_id, options)
        return plan_json(operation, plan)

    @post("/{operation_id:str}/allocate", status_code=201)
    async def allocate(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        settings: Settings,
        operation_id: str,
        data: PlanRequest | None = None,
    ) -> dict:
        options = op_ops.PlanOptions(
            allow_other_cities=bool(data and data.allow_other_cities),
            allow_other_provinces=bool(data and data.allow_other_provinces),
        )
        viewer = viewer_for(request.user)
        operation = await op_ops.get_operation(db, viewer, operation_id)
        requester = await operation_requester(db, request.user, operation.organisation_id)
        result = await op_ops.allocate(
            db,
            viewer,
            requester,
            operation_id,
            options,
            response_window=response_window(settings),
            idempotency_key=idempotency_key(request),
            sha=body_sha(data),
        )
        if not result.replayed:
            for hold in result.holds:
                publish_change(channels, hold_ops.HoldChange(hold, None, "requested"))
            for pool in result.pools:
                publish_pool(channels, pool)
            await notify_new_holds(db, settings, result.holds)
        return {
            "operation_id": operation_id,
            "holds": [hold_for_viewer(h, request.user) for h in result.holds],
        }


class HoldController(Controller):
    path = "/api/v1/holds"
    tags = ["holds"]

    @post("/", guards=[requires_roles(Role.POLICE_PLANNER, Role.CASE_WORKER)], status_code=201)
    async def create(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        settings: Settings,
        data: HoldRequest,
    ) -> dict:
        change = await hold_ops.create_hold(
            db,
            await requester_for(db, request.user),
            pool_id=data.pool_id,
            beds=data.beds,
            expires_at=data.expires_at,
            operation_id=data.operation_id,
            case_code=data.case_code,
            response_window=response_window(settings),
            idempotency_key=idempotency_key(request),
            sha=body_sha(data),
        )
        if not change.replayed:
            publish_change(channels, change)
            await notify_new_holds(db, settings, [change.hold])
        return hold_for_viewer(change.hold, request.user)

    @get("/{hold_id:str}")
    async def get_hold(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, hold_id: str
    ) -> dict:
        hold = await visible_hold(db, channels, request.user, hold_id)
        return hold_for_viewer(hold, request.user)

    @post("/{hold_id:str}/confirm", status_code=200)
    async def confirm(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, hold_id: str
    ) -> dict:
        await visible_hold(db, channels, request.user, hold_id)
        change = await hold_ops.confirm(db, viewer_for(request.user), hold_id)
        publish_change(channels, change)
        return hold_for_viewer(change.hold, request.user)

    @post("/{hold_id:str}/decline", status_code=200)
    async def decline(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        hold_id: str,
        data: DeclineRequest | None = None,
    ) -> dict:
        await visible_hold(db, channels, request.user, hold_id)
        change = await hold_ops.decline(db, viewer_for(request.user), hold_id, data.reason if data else "")
        publish_change(channels, change)
        return hold_for_viewer(change.hold, request.user)

    @post("/{hold_id:str}/release", status_code=200)
    async def release(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, hold_id: str
    ) -> dict:
        await visible_hold(db, channels, request.user, hold_id)
        change = await hold_ops.release(db, viewer_for(request.user), hold_id)
        publish_change(channels, change)
        return hold_for_viewer(change.hold, request.user)

    @post("/{hold_id:str}/claim", status_code=200)
    async def claim(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        hold_id: str,
        data: ClaimRequest,
    ) -> dict:
        await visible_hold(db, channels, request.user, hold_id)
        change = await hold_ops.claim(db, viewer_for(request.user), hold_id, data.beds_used)
        publish_change(channels, change)
        return hold_for_viewer(change.hold, request.user)


def agreement_json(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "pool_id": agreement.pool_id,
        "facility_id": agreement.facility_id,
        "beds": agreement.beds,
        "beds_in_use": agreement.beds_in_use,
        "scope": agreement.scope,
        "note": agreement.note,
        "active": agreement.active,
        "created_at": agreement.created_at.isoformat(),
        "ended_at": agreement.ended_at.isoformat() if agreement.ended_at else None,
    }


class AgreementController(Controller):
    path = "/api/v1/agreements"
    tags = ["holds"]

    @post("/", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=201)
    async def create(self, request: Request[User, str, object], db: AsyncSession, data: AgreementRequest) -> dict:
        agreement = await hold_ops.create_agreement(
            db, viewer_for(request.user), pool_id=data.pool_id, beds=data.beds, scope=data.scope, note=data.note
        )
        return agreement_json(agreement)

    @get("/", guards=[requires_roles(Role.SHELTER_STAFF, Role.COORDINATOR, Role.NETWORK_ADMIN)])
    async def list_agreements(self, request: Request[User, str, object], db: AsyncSession) -> list[dict]:
        return [agreement_json(a) for a in await hold_ops.agreements_for(db, viewer_for(request.user))]

    @post("/{agreement_id:str}/end", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=200)
    async def end(self, request: Request[User, str, object], db: AsyncSession, agreement_id: str) -> dict:
        return agreement_json(await hold_ops.end_agreement(db, viewer_for(request.user), agreement_id))
