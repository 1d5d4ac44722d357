"""Pages for holds: a police planner's operations, a shelter's hold requests, standing agreements.

Writes are plain forms (POST, then 303 back), so every page works without JavaScript and on a phone;
htmx only previews a plan in place and reloads a list when the board socket says a hold changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Controller, Request, get, post
from litestar.channels import ChannelsPlugin
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import holds as hold_ops
from beds import operations as op_ops
from beds.errors import Invalid
from beds.models import PROVINCES, BedPool, Facility, Profile
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.board.addresses import reveal_address, viewer_with_grants
from exchange.holds.api import load_operation, refresh_expiry, visible_hold
from exchange.holds.live import notify_new_holds, operation_requester, publish_change, response_window
from exchange.live.events import publish_pool
from exchange.settings import Settings
from exchange.web.auth import requires_roles, viewer_for
from exchange.web.nav import page_context

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)

# Planners type local times; each province's main time zone reads them (the operation's own province).
PROVINCE_TZ = {
    "AB": "America/Edmonton",
    "BC": "America/Vancouver",
    "MB": "America/Winnipeg",
    "NB": "America/Moncton",
    "NL": "America/St_Johns",
    "NS": "America/Halifax",
    "NT": "America/Yellowknife",
    "NU": "America/Iqaluit",
    "ON": "America/Toronto",
    "PE": "America/Halifax",
    "QC": "America/Toronto",
    "SK": "America/Regina",
    "YT": "America/Whitehorse",
}


class OperationForm(Struct):
    code_name: str
    province: str
    window_start: str
    window_end: str
    city: str = ""
    notes: str = ""
    need_women: int = 0
    need_men: int = 0
    need_youth: int = 0
    need_family: int = 0
    need_any: int = 0


class PlanForm(Struct):
    allow_other_cities: bool = False
    allow_other_provinces: bool = False


class DeclineForm(Struct):
    reason: str = ""
    next: str = "/requests"


class ClaimForm(Struct):
    beds_used: int
    next: str = "/requests"


class NextForm(Struct):
    next: str = "/requests"


class AgreementForm(Struct):
    pool_id: str
    beds: int
    scope: str = "all"
    note: str = ""


def _local_time(value: str, province: str) -> datetime:
    """A `datetime-local` value, read in the province's time zone (or taken as is when it has an offset)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("invalid_window", "Dates must look like 2026-05-01T21:30.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(PROVINCE_TZ.get(province, "America/Toronto")))
    return parsed


def _back(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def _pool_labels(db: AsyncSession, pool_ids: set[str]) -> dict[str, tuple[BedPool, Facility]]:
    if not pool_ids:
        return {}
    rows = await db.execute(
        select(BedPool, Facility)
        .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
        .where(BedPool.id.in_(pool_ids))  # type: ignore[attr-defined]
    )
    return {pool.id: (pool, facility) for pool, facility in rows.all()}


class HoldPages(Controller):
    # --- police planner: operations ----------------------------------------------------------------------

    @get("/operations", guards=[requires_roles(Role.POLICE_PLANNER, Role.COORDINATOR)])
    async def operations(self, request: Request[User, str, object], db: AsyncSession) -> Template:
        viewer = viewer_for(request.user)
        operations = [o for o in await op_ops.operations_for(db, viewer) if op_ops.may_see_operation(viewer, o)]
        needs = {o.id: await op_ops.needs_of(db, o.id) for o in operations}
        return Template(
            "operations.html",
            context=page_context(
                request,
                operations=operations,
                needs=needs,
                provinces=PROVINCES,
                profiles=[p.value for p in Profile],
                can_create=request.user.has(Role.POLICE_PLANNER),
                now=utcnow(),
            ),
        )

    @post("/operations", guards=[requires_roles(Role.POLICE_PLANNER)], status_code=303)
    async def create_operation(
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[OperationForm, FORM]
    ) -> Redirect:
        counts = {
            "women": data.need_women,
            "men": data.need_men,
            "youth": data.need_youth,
            "family": data.need_family,
            "any": data.need_any,
        }
        if any(c < 0 for c in counts.values()):
            raise Invalid("invalid_needs", "Counts cannot be negative.")
        operation, _needs = await op_ops.create_operation(
            db,
            viewer_for(request.user),
            code_name=data.code_name,
            province=data.province,
            city=data.city,
            window_start=_local_time(data.window_start, data.province),
            window_end=_local_time(data.window_end, data.province),
            needs=[op_ops.Need(profile, count) for profile, count in counts.items() if count > 0],
            notes=data.notes,
        )
        return Redirect(path=f"/operations/{operation.id}", status_code=303)

    async def _operation_context(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, operation_id: str
    ) -> dict[str, Any]:
        data = await load_operation(db, channels, request.user, operation_id)
        # The page formats times in the reader's locale, so it wants datetimes, not the API's strings.
        for name in ("window_start", "window_end"):
            data[name] = datetime.fromisoformat(data[name])
        holds = await hold_ops.holds_of_operation(db, operation_id)
        labels = await _pool_labels(db, {h.pool_id for h in holds})
        viewer, grants = await viewer_with_grants(db, request.user, request.app.state.registry.grant_sources)
        contacts: dict[str, Facility] = {}
        for _pool, facility in labels.values():
            # Shown (and written to the audit log) only once a hold there is confirmed.
            if facility.id not in contacts and await reveal_address(db, viewer, grants, facility, "page"):
                contacts[facility.id] = facility
        return page_context(
            request,
            operation=data,
            holds=holds,
            labels=labels,
            contacts=contacts,
            can_act=request.user.has(Role.POLICE_PLANNER),
            now=utcnow(),
            plan=None,
            options=op_ops.PlanOptions(),
        )

    @get("/operations/{operation_id:str}")
    async def operation(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, operation_id: str
    ) -> Template:
        context = await self._operation_context(request, db, channels, operation_id)
        if request.htmx:
            return HTMXBlockTemplate(template_name="operation.html", block_name="operation_holds", context=context)
        return Template("operation.html", context=context)

    @post("/operations/{operation_id:str}/plan", status_code=200)
    async def plan(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        operation_id: str,
        data: Annotated[PlanForm, FORM],
    ) -> Template:
        options = op_ops.PlanOptions(data.allow_other_cities, data.allow_other_provinces)
        _operation, plan = await op_ops.plan_operation(db, viewer_for(request.user), operation_id, options)
        context = await self._operation_context(request, db, channels, operation_id)
        context.update(plan=plan, options=options)
        if request.htmx:
            return HTMXBlockTemplate(template_name="operation.html", block_name="plan_block", context=context)
        return Template("operation.html", context=context)

    @post("/operations/{operation_id:str}/allocate", status_code=303)
    async def allocate(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        settings: Settings,
        operation_id: str,
        data: Annotated[PlanForm, FORM],
    ) -> Redirect:
        viewer = viewer_for(request.user)
        operation = await op_ops.get_operation(db, viewer, operation_id)
        requester = await operation_requester(db, request.user, operation.organisation_id)
        result = await op_ops.allocate(
            db,
            viewer,
            requester,
            operation_id,
            op_ops.PlanOptions(data.allow_other_cities, data.allow_other_provinces),
            response_window=response_window(settings),
        )
        for hold in result.holds:
            publish_change(channels, hold_ops.HoldChange(hold, None, "requested"))
        for pool in result.pools:
            publish_pool(channels, pool)
        await notify_new_holds(db, settings, result.holds)
        return Redirect(path=f"/operations/{operation_id}", status_code=303)

    # --- shelter staff: hold requests --------------------------------------------------------------------

    @get("/requests", guards=[requires_roles(Role.SHELTER_STAFF)])
    async def requests(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin
    ) -> Template:
        holds = await hold_ops.holds_for_facilities(db, request.user.organisation_id)
        now = utcnow()
        due = [h.id for h in holds if h.is_active and h.expires_at <= now]
        if due:
            await refresh_expiry(db, channels, due)
            holds = await hold_ops.holds_for_facilities(db, request.user.organisation_id)
        context = page_context(request, holds=holds, labels=await _pool_labels(db, {h.pool_id for h in holds}), now=now)
        if request.htmx:
            return HTMXBlockTemplate(template_name="requests.html", block_name="requests_list", context=context)
        return Template("requests.html", context=context)

    @post("/holds/{hold_id:str}/confirm", status_code=303)
    async def confirm(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        hold_id: str,
        data: Annotated[NextForm, FORM],
    ) -> Redirect:
        await visible_hold(db, channels, request.user, hold_id)
        publish_change(channels, await hold_ops.confirm(db, viewer_for(request.user), hold_id))
        return Redirect(path=_back(data.next), status_code=303)

    @post("/holds/{hold_id:str}/decline", status_code=303)
    async def decline(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        hold_id: str,
        data: Annotated[DeclineForm, FORM],
    ) -> Redirect:
        await visible_hold(db, channels, request.user, hold_id)
        publish_change(channels, await hold_ops.decline(db, viewer_for(request.user), hold_id, data.reason))
        return Redirect(path=_back(data.next), status_code=303)

    @post("/holds/{hold_id:str}/release", status_code=303)
    async def release(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        hold_id: str,
        data: Annotated[NextForm, FORM],
    ) -> Redirect:
        await visible_hold(db, channels, request.user, hold_id)
        publish_change(channels, await hold_ops.release(db, viewer_for(request.user), hold_id))
        return Redirect(path=_back(data.next), status_code=303)

    @post("/holds/{hold_id:str}/claim", status_code=303)
    async def claim(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        hold_id: str,
        data: Annotated[ClaimForm, FORM],
    ) -> Redirect:
        await visible_hold(db, channels, request.user, hold_id)
        publish_change(channels, await hold_ops.claim(db, viewer_for(request.user), hold_id, data.beds_used))
        return Redirect(path=_back(data.next), status_code=303)

    # --- shelter staff: standing agreements --------------------------------------------------------------

    @get("/agreements", guards=[requires_roles(Role.SHELTER_STAFF)])
    async def agreements(self, request: Request[User, str, object], db: AsyncSession) -> Template:
        viewer = viewer_for(request.user)
        agreements = await hold_ops.agreements_for(db, viewer)
        pools = (
            await db.execute(
                select(BedPool, Facility)
                .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
                .where(Facility.organisation_id == request.user.organisation_id)
                .order_by(Facility.name, BedPool.profile)
            )
        ).all()
        return Template(
            "agreements.html",
            context=page_context(
                request,
                agreements=agreements,
                own_pools=pools,
                labels=await _pool_labels(db, {a.pool_id for a in agreements}),
            ),
        )

    @post("/agreements", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=303)
    async def create_agreement(
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[AgreementForm, FORM]
    ) -> Redirect:
        await hold_ops.create_agreement(
            db, viewer_for(request.user), pool_id=data.pool_id, beds=data.beds, scope=data.scope, note=data.note
        )
        return Redirect(path="/agreements", status_code=303)

    @post("/agreements/{agreement_id:str}/end", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=303)
    async def end_agreement(self, request: Request[User, str, object], db: AsyncSession, agreement_id: str) -> Redirect:
        await hold_ops.end_agreement(db, viewer_for(request.user), agreement_id)
        return Redirect(path="/agreements", status_code=303)
