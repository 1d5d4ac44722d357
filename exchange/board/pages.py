"""The live board: every facility by province and city, filters by htmx, +1/-1 for a shelter's own pools."""

from __future__ import annotations

from typing import Annotated

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Controller, Request, get, post
from litestar.channels import ChannelsPlugin
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import pools as pool_ops
from beds.board import CRITERIA, BoardFilter, group_by_city, list_facilities
from beds.models import PROVINCES, Facility, FacilityKind
from beds.timeutil import utcnow
from beds.visibility import may_edit_pool
from exchange.accounts.models import Role, User
from exchange.live.events import publish_pool
from exchange.settings import Settings
from exchange.web.auth import viewer_for
from exchange.web.nav import page_context


class AdjustForm(Struct):
    occupied_delta: int = 0
    out_of_service_delta: int = 0


async def staffed_facility(db: AsyncSession, user: User, facility_id: str) -> Facility:
    """The facility, if this user is one of its staff; 403 otherwise (every user may read every facility)."""
    facility = await db.get(Facility, facility_id)
    if facility is None or not may_edit_pool(viewer_for(user), facility.organisation_id):
        raise PermissionDeniedException("Only the facility's own staff may change its counts.")
    return facility


async def own_facility_ids(db: AsyncSession, user: User) -> frozenset[str]:
    if "shelter_staff" not in user.roles:
        return frozenset()
    rows = await db.execute(select(Facility.id).where(Facility.organisation_id == user.organisation_id))
    return frozenset(rows.scalars().all())


def _csrf_input(request: Request) -> str:
    """The same hidden field Litestar's `csrf_input` renders, for cards rendered outside the page template."""
    token = value_or_default(ScopeState.from_scope(request.scope).csrf_token, "")
    return f'<input type="hidden" name="_csrf_token" value="{token}" />' if token else ""


class BoardPages(Controller):
    @get("/")
    async def board(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        settings: Settings,
        province: str | None = None,
        city: str | None = None,
        profile: str | None = None,
        kind: str | None = None,
        criteria: list[str] | None = None,
        only_free: bool = False,
    ) -> Template:
        board_filter = BoardFilter(
            province=province or None,
            city=city or None,
            profile=profile or None,
            # An unknown kind matches nothing (and must not reach PostgreSQL's enum as an error).
            kind=kind if kind in FacilityKind.__members__.values() else None,
            criteria=frozenset(c for c in criteria or [] if c in CRITERIA),
            min_free=1 if only_free else 0,
        )
        listings = await list_facilities(db, board_filter, stale_after=settings.stale_after)
        now = utcnow()
        cards = request.app.state.facility_cards.render(
            request.app.template_engine.engine,
            listings,
            editable=await own_facility_ids(db, request.user),
            now=now,
            csrf_input=_csrf_input(request),
        )
        my_stale = []
        if request.user.has(Role.SHELTER_STAFF):
            my_stale = await pool_ops.stale_facilities(db, request.user.organisation_id, now - settings.stale_after)
        context = page_context(
            request,
            groups=group_by_city(listings),
            cards=cards,
            my_stale=my_stale,
            now=now,
            facility_count=len(listings),
            free_total=sum(li.free for li in listings),
            filter=board_filter,
            only_free=only_free,
            provinces=PROVINCES,
        )
        if request.htmx:
            return HTMXBlockTemplate(template_name="board.html", block_name="board_list", context=context)
        return Template("board.html", context=context)

    @post("/pools/{pool_id:str}/adjust", status_code=200)
    async def adjust(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        pool_id: str,
        data: Annotated[AdjustForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        pool = await pool_ops.get_pool(db, pool_id)
        facility = await staffed_facility(db, request.user, pool.facility_id)
        pool = await pool_ops.adjust(
            db,
            pool_id,
            occupied_delta=data.occupied_delta,
            out_of_service_delta=data.out_of_service_delta,
            actor_user_id=request.user.id,
        )
        publish_pool(channels, pool)
        if not request.htmx:
            return Redirect(path=f"/facilities/{facility.id}", status_code=303)
        return Template(
            "fragments/pool_row.html",
            context={"pool": pool, "facility_id": facility.id, "can_edit": True},
        )
