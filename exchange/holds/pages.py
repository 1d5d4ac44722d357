"""Pages for holds: a police planner's operations, a shelter's hold requests, standing agreements.

Writes are plain forms (POST, then 303 back), so every page works without JavaScript and on a phone;
htmx only previews a plan in place and reloads a list when the board socket says a hold changed.
"""

from __future__ import annotations

from typing import Annotated, Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from beds.errors import Invalid
from beds.models import PROVINCES, Profile
from beds.planner import PlanOptions
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.holds.schemas import (
    AgreementForm,
    ClaimForm,
    DeclineForm,
    DeclineRequesterForm,
    IncidentForm,
    NextForm,
    OperationForm,
    PlanForm,
)
from exchange.holds.service import SERVICE, HoldService
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM, safe_next
from exchange.web.nav import page_context


def _confirmed(value: str) -> None:
    """A bulk step runs only once its box is ticked: the page asks before it acts."""
    if value != "yes":
        raise Invalid("confirmation_required", "Tick the box to confirm this step; it acts on several holds at once.")


def _page(request: Request, template: str, block: str, context: dict[str, Any]) -> Template:
    """The whole page, or only `block` when htmx asks for it (a plan preview, a live refresh)."""
    if request.htmx:
        return HTMXBlockTemplate(template_name=template, block_name=block, context=context)
    return Template(template, context=context)


class OperationPages(Controller):
    """A police planner's operations; coordinators read them."""

    dependencies = SERVICE

    @get("/operations", guards=[requires_roles(Role.POLICE_PLANNER, Role.COORDINATOR)])
    async def operations(self, request: Request[User, str, object], service: HoldService) -> Template:
        rows = await service.operations()
        context = page_context(
            request,
            operations=[operation for operation, _needs in rows],
            needs={operation.id: needs for operation, needs in rows},
            provinces=PROVINCES,
            profiles=[p.value for p in Profile],
            can_create=request.user.has(Role.POLICE_PLANNER),
            now=utcnow(),
        )
        return Template("operations.html", context=context)

    @post("/operations", guards=[requires_roles(Role.POLICE_PLANNER)], status_code=303)
    async def create_operation(self, service: HoldService, data: Annotated[OperationForm, FORM]) -> Redirect:
        operation, _needs = await service.create_operation(data.new_operation())
        return Redirect(path=f"/operations/{operation.id}", status_code=303)

    async def _context(self, request: Request[User, str, object], service: HoldService, operation_id: str) -> dict:
        found = await service.operation(operation_id)
        labels = await service.pools_with_facilities({h.pool_id for h in found.holds})
        return page_context(
            request,
            operation=found.operation,
            needs=found.needs,
            holds=found.holds,
            labels=labels,
            # Shown (and written to the audit log) only once a hold there is confirmed.
            contacts=await service.contacts(facility for _pool, facility in labels.values()),
            can_act=request.user.has(Role.POLICE_PLANNER),
            now=utcnow(),
            plan=None,
            options=PlanOptions(),
        )

    @get("/operations/{operation_id:str}")
    async def operation(self, request: Request[User, str, object], service: HoldService, operation_id: str) -> Template:
        context = await self._context(request, service, operation_id)
        return _page(request, "operation.html", "operation_holds", context)

    @post("/operations/{operation_id:str}/plan", status_code=200)
    async def plan(
        self,
        request: Request[User, str, object],
        service: HoldService,
        operation_id: str,
        data: Annotated[PlanForm, FORM],
    ) -> Template:
        _operation, plan = await service.plan(operation_id, data.options())
        context = await self._context(request, service, operation_id)
        context.update(plan=plan, options=data.options())
        return _page(request, "operation.html", "plan_block", context)

    @post("/operations/{operation_id:str}/allocate", status_code=303)
    async def allocate(self, service: HoldService, operation_id: str, data: Annotated[PlanForm, FORM]) -> Redirect:
        await service.allocate(operation_id, data.options())
        return Redirect(path=f"/operations/{operation_id}", status_code=303)


class HoldPages(Controller):
    """A shelter's hold requests, and the four steps either side takes on a hold."""

    dependencies = SERVICE

    @get("/requests", guards=[requires_roles(Role.SHELTER_STAFF)])
    async def requests(self, request: Request[User, str, object], service: HoldService) -> Template:
        now = utcnow()
        holds = await service.requests()
        labels = await service.pools_with_facilities({h.pool_id for h in holds})
        # Open requests by requester, for "decline every open request of this requester" (largest first).
        open_by: dict[str, dict[str, Any]] = {}
        for hold in holds:
            if hold.status == "requested":
                entry = open_by.setdefault(
                    hold.requested_by,
                    {"requested_by": hold.requested_by, "service_name": hold.service_name, "holds": 0, "beds": 0},
                )
                entry["holds"] += 1
                entry["beds"] += hold.beds
        requesters = sorted(open_by.values(), key=lambda e: -e["beds"])
        context = page_context(request, holds=holds, labels=labels, now=now, requesters=requesters)
        return _page(request, "requests.html", "requests_list", context)

    @post("/requests/decline-requester", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=303)
    async def decline_requester(self, service: HoldService, data: Annotated[DeclineRequesterForm, FORM]) -> Redirect:
        _confirmed(data.confirm)
        await service.decline_requester(data.requested_by, data.reason)
        return Redirect(path="/requests", status_code=303)

    @get("/holds/incident", guards=[requires_roles(Role.COORDINATOR)])
    async def incident(self, request: Request[User, str, object], service: HoldService) -> Template:
        users, orgs = await service.holders()
        incidents = await service.incidents()
        context = page_context(
            request, users=users, orgs=orgs, incidents=incidents, names=await service.names(incidents)
        )
        return Template("hold_incident.html", context=context)

    @post("/holds/incident", guards=[requires_roles(Role.COORDINATOR)], status_code=303)
    async def release_all(self, service: HoldService, data: Annotated[IncidentForm, FORM]) -> Redirect:
        _confirmed(data.confirm)
        await service.release_all(**data.whom(), reason=data.reason)
        return Redirect(path="/holds/incident", status_code=303)

    @post("/holds/{hold_id:str}/confirm", status_code=303)
    async def confirm(self, service: HoldService, hold_id: str, data: Annotated[NextForm, FORM]) -> Redirect:
        await service.confirm(hold_id)
        return Redirect(path=safe_next(data.next), status_code=303)

    @post("/holds/{hold_id:str}/decline", status_code=303)
    async def decline(self, service: HoldService, hold_id: str, data: Annotated[DeclineForm, FORM]) -> Redirect:
        await service.decline(hold_id, data.reason)
        return Redirect(path=safe_next(data.next), status_code=303)

    @post("/holds/{hold_id:str}/release", status_code=303)
    async def release(self, service: HoldService, hold_id: str, data: Annotated[NextForm, FORM]) -> Redirect:
        await service.release(hold_id)
        return Redirect(path=safe_next(data.next), status_code=303)

    @post("/holds/{hold_id:str}/claim", status_code=303)
    async def claim(self, service: HoldService, hold_id: str, data: Annotated[ClaimForm, FORM]) -> Redirect:
        await service.claim(hold_id, data.beds_used)
        return Redirect(path=safe_next(data.next), status_code=303)


class AgreementPages(Controller):
    """A shelter's standing agreements."""

    dependencies = SERVICE
    guards = [requires_roles(Role.SHELTER_STAFF)]

    @get("/agreements")
    async def agreements(self, request: Request[User, str, object], service: HoldService) -> Template:
        agreements = await service.agreements()
        partners = await service.partners()
        context = page_context(
            request,
            agreements=agreements,
            partners=partners,
            partner_names={o.id: o.name for o in partners},
            own_pools=await service.own_pools(),
            labels=await service.pools_with_facilities({a.pool_id for a in agreements}),
        )
        return Template("agreements.html", context=context)

    @post("/agreements", status_code=303)
    async def create_agreement(self, service: HoldService, data: Annotated[AgreementForm, FORM]) -> Redirect:
        await service.create_agreement(
            pool_id=data.pool_id, beds=data.beds, partner_org_id=data.partner_org_id, scope=data.scope, note=data.note
        )
        return Redirect(path="/agreements", status_code=303)

    @post("/agreements/{agreement_id:str}/end", status_code=303)
    async def end_agreement(self, service: HoldService, agreement_id: str) -> Redirect:
        await service.end_agreement(agreement_id)
        return Redirect(path="/agreements", status_code=303)
