"""The board's pages: the live board, one facility with its staff's forms, and occupancy reports.

The board lists every facility by province and city, filtered by htmx; a shelter's staff get +1/-1 on their own
pools, and on their facility's page the forms to set counts, open surge beds and confirm counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from msgspec import Struct
from msgspec.structs import asdict

from beds.board import group_by_city
from beds.models import PROVINCES
from beds.pools import SURGE_MAX
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.board.schemas import WHERE, AdjustRequest, BoardQuery, PutPoolRequest
from exchange.board.service import SERVICE, BoardService
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM
from exchange.web.nav import page_context


# A page's form is the API's body, but for refusing unknown fields: it carries the CSRF token beside.
class AdjustForm(AdjustRequest, forbid_unknown_fields=False):
    pass


class CountsForm(PutPoolRequest, forbid_unknown_fields=False):
    pass


class SurgeForm(Struct):
    beds: int
    hours: int
    reason: str = ""

    def until(self) -> datetime:
        """The end the form asks for. Hours past the cap stay just past it, for the domain to refuse (so that no
        number, however large, overflows a datetime)."""
        hours = min(max(self.hours, 0), SURGE_MAX // timedelta(hours=1) + 1)
        return utcnow() + timedelta(hours=hours)


def _csrf_input(request: Request) -> str:
    """The same hidden field Litestar's `csrf_input` renders, for cards rendered outside the page template."""
    token = value_or_default(ScopeState.from_scope(request.scope).csrf_token, "")
    return f'<input type="hidden" name="_csrf_token" value="{token}" />' if token else ""


def _to_facility(facility_id: str) -> Redirect:
    return Redirect(path=f"/facilities/{facility_id}", status_code=303)


class BoardPages(Controller):
    dependencies = SERVICE

    @get("/", dependencies=WHERE)
    async def board(
        self,
        request: Request[User, str, object],
        service: BoardService,
        where: BoardQuery,
        criteria: list[str] | None = None,
        only_free: bool = False,
    ) -> Template:
        board_filter = where.to_filter(criteria=criteria or (), min_free=1 if only_free else 0, lenient=True)
        board = await service.board(board_filter)
        cards = request.app.state.facility_cards.render(
            request.app.template_engine.engine,
            board.listings,
            editable=board.own_facility_ids,
            now=board.now,
            csrf_input=_csrf_input(request),
        )
        context = page_context(
            request,
            groups=group_by_city(board.listings),
            cards=cards,
            my_stale=board.stale,
            now=board.now,
            facility_count=len(board.listings),
            free_total=sum(li.free for li in board.listings),
            filter=board_filter,
            only_free=only_free,
            provinces=PROVINCES,
        )
        if request.htmx:
            return HTMXBlockTemplate(template_name="board.html", block_name="board_list", context=context)
        return Template("board.html", context=context)

    @post("/pools/{pool_id:str}/adjust", status_code=200)
    async def adjust(
        self, request: Request, service: BoardService, pool_id: str, data: Annotated[AdjustForm, FORM]
    ) -> Template | Redirect:
        pool = await service.adjust_pool(pool_id, **asdict(data))
        if not request.htmx:
            return _to_facility(pool.facility_id)
        context = {"pool": pool, "facility_id": pool.facility_id, "can_edit": True}
        return Template("fragments/pool_row.html", context=context)


class FacilityPages(Controller):
    dependencies = SERVICE

    @get("/facilities/{facility_id:str}")
    async def facility(self, request: Request, service: BoardService, facility_id: str) -> Template:
        view = await service.facility(facility_id, channel="page", history=10)
        return Template(
            "facility.html",
            context=page_context(
                request,
                listing=view.listing,
                show_contact=view.show_contact,
                can_edit=view.can_edit,
                history=view.history,
                readers=view.readers,
                now=utcnow(),
            ),
        )

    @post("/facilities/{facility_id:str}/confirm", status_code=303)
    async def confirm_counts(self, service: BoardService, facility_id: str) -> Redirect:
        await service.confirm_counts(facility_id)
        return Redirect(path="/", status_code=303)

    @post("/pools/{pool_id:str}/counts", status_code=303)
    async def set_counts(self, service: BoardService, pool_id: str, data: Annotated[CountsForm, FORM]) -> Redirect:
        pool = await service.set_pool_counts(pool_id, **asdict(data))
        return _to_facility(pool.facility_id)

    @post("/pools/{pool_id:str}/surge", status_code=303)
    async def add_surge(self, service: BoardService, pool_id: str, data: Annotated[SurgeForm, FORM]) -> Redirect:
        pool = await service.add_surge(pool_id, beds=data.beds, until=data.until(), reason=data.reason)
        return _to_facility(pool.facility_id)


class ReportPages(Controller):
    path = "/reports"
    guards = [requires_roles(Role.SHELTER_STAFF, Role.COORDINATOR, Role.NETWORK_ADMIN)]
    dependencies = SERVICE

    @get("/occupancy")
    async def occupancy(
        self, request: Request, service: BoardService, province: str | None = None, days: int = 14
    ) -> Template:
        days = min(max(days, 1), 90)
        occupancy = await service.occupancy(province=province, days=days)
        return Template(
            "occupancy.html",
            context=page_context(
                request,
                report=occupancy.days,
                peak=max((d.occupancy_percent for d in occupancy.days), default=0),
                network_wide=occupancy.network_wide,
                province=occupancy.province or "",
                provinces=PROVINCES,
                days=days,
            ),
        )
