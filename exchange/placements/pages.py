"""The placements' pages: a shelter's Departure that asks which stay ends, the stays list (end one, set its
expected end), and a case worker's follow-up marked done from their home.

Every form works without JavaScript (a page, then a redirect); with htmx, the Departure's choice opens in the pool's
row and its answer is the row with the new counts.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import MediaType
from litestar.response import Redirect, Response, Template

from beds.errors import BedsError, Conflict, Invalid
from beds.placements import PlacementFilter
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.placements.schemas import EndForm, ExpectedEndForm
from exchange.placements.service import SERVICE, PlacementService
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM, safe_next
from exchange.web.i18n import gettext as _
from exchange.web.localtime import parse_local, zone_for
from exchange.web.nav import page_context

# The ended stays the list shows below the open ones.
ENDED_SHOWN = 20


def _ended_notice(refused: BedsError) -> str:
    if refused.code == "placement_ended":
        return _("Nothing was changed: this stay had already ended.")
    return _("Nothing was changed: nobody is counted as occupied here. Correct the counts on the facility's page.")


class PlacementPages(Controller):
    dependencies = SERVICE
    guards = [requires_roles(Role.SHELTER_STAFF, Role.CASE_WORKER, Role.COORDINATOR)]

    @get("/placements")
    async def placements(self, request: Request[User, str, object], service: PlacementService) -> Template:
        return Template("placements/list.html", context=await _list_context(request, service))

    @get("/placements/departure/{pool_id:str}", guards=[requires_roles(Role.SHELTER_STAFF)])
    async def departure(
        self, request: Request[User, str, object], service: PlacementService, pool_id: str, cancel: bool = False
    ) -> Template | Response:
        """Which stay ends? In the row (htmx) or as a page; `cancel` folds the question away."""
        choice = await service.departure_choice(pool_id)
        if cancel and request.htmx:
            empty = f'<div id="departure-{choice.pool.id}" class="departure-choice" hidden></div>'
            return Response(empty, media_type=MediaType.HTML)
        if request.htmx:
            return Template("placements/departure_choice.html", context={"choice": choice})
        return Template("placements/departure.html", context=page_context(request, choice=choice))

    @post("/placements/{placement_id:str}/end", status_code=200)
    async def end(
        self,
        request: Request[User, str, object],
        service: PlacementService,
        placement_id: str,
        data: Annotated[EndForm, FORM],
    ) -> Template | Redirect:
        """The person of this stay left. From a pool's row (htmx) the row comes back with the new counts and a
        word of what happened; a refusal comes back the same way, with why."""
        # Read before the attempt: a refusal rolls back and expires what the session loaded.
        pool_id = (await service.placement(placement_id)).pool_id
        try:
            ended = await service.end(placement_id)
        except (Conflict, Invalid) as refused:
            if not request.htmx:
                raise
            choice = await service.departure_choice(pool_id)
            return _row(choice.pool, _ended_notice(refused))
        if not request.htmx:
            return Redirect(path=safe_next(data.next or f"/facilities/{ended.placement.facility_id}"), status_code=303)
        return _row(ended.pool, _("Stay ended: %(free)s free.", free=ended.pool.free))

    @post("/placements/{placement_id:str}/expected-end", status_code=303)
    async def expected_end(
        self,
        request: Request[User, str, object],
        service: PlacementService,
        placement_id: str,
        data: Annotated[ExpectedEndForm, FORM],
    ) -> Template | Redirect:
        """The expected end as a date on the facility's clock (noon that day); empty clears it. A bad date comes
        back as the list with the date typed and what to do."""
        facility = await service.facility_of(await service.placement(placement_id))
        province = facility.province  # read before a refusal's rollback expires it
        typed = data.expected_end.strip()
        try:
            when = parse_local(f"{typed}T12:00", zone_for(province)) if typed else None
            await service.set_expected_end(placement_id, when)
        except BedsError:
            errors = {placement_id: _("Enter a date after the start of the stay, like 2026-12-20.")}
            context = await _list_context(request, service, errors=errors, typed={placement_id: typed})
            return Template("placements/list.html", context=context, status_code=422)
        return Redirect(path=safe_next(data.next or "/placements"), status_code=303)

    @post("/placements/follow-ups/{follow_up_id:str}/done", status_code=200, guards=[requires_roles(Role.CASE_WORKER)])
    async def follow_up_done(
        self, request: Request[User, str, object], service: PlacementService, follow_up_id: str
    ) -> Template | Redirect:
        try:
            follow_up = await service.mark_done(follow_up_id)
        except Conflict:
            follow_up = await service.follow_up(follow_up_id)
        if not request.htmx:
            return Redirect(path="/home", status_code=303)
        placement = await service.placement(follow_up.placement_id)
        return Template("placements/follow_up_item.html", context={"f": follow_up, "p": placement, "now": utcnow()})


def _row(pool: Any, notice: str) -> Template:
    context = {"pool": pool, "facility_id": pool.facility_id, "can_edit": True, "notice": notice}
    return Template("fragments/pool_row.html", context=context)


async def _list_context(
    request: Request[User, str, object],
    service: PlacementService,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> dict[str, Any]:
    open_ = await service.placements(PlacementFilter(open=True))
    ended = await service.placements(PlacementFilter(open=False, limit=ENDED_SHOWN))
    return page_context(
        request,
        open_placements=open_,
        ended_placements=ended,
        facilities=await service.facilities_of(open_ + ended),
        follow_ups=await service.follow_ups_of(ended),
        now=utcnow(),
        errors=errors or {},
        typed=typed or {},
    )
