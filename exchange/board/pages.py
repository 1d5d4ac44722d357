"""The board's pages: the live board, one facility with its staff's forms, and occupancy reports.

The board is a summary by province and city (free beds per profile), opening on the viewer's own province and city;
a city opens into its facilities' cards (htmx, or a link with the city as filter). Filters by htmx; a city matches
whatever its accents and case. A shelter's staff get Arrival / Departure (with Undo) on their own pools, and on
their facility's page the forms to set counts, open surge beds and confirm counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Controller, Request, get, post
from litestar.enums import MediaType
from litestar.response import Redirect, Response, Template
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup
from msgspec import Struct
from msgspec.structs import asdict

from beds.board import BoardFilter, ProvinceSummary, summarize
from beds.errors import BedsError, Conflict, Invalid
from beds.geo import nearest_summaries
from beds.models import PROVINCES
from beds.places import city_key, closest_city, same_city
from beds.pools import SURGE_MAX
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.board.schemas import WHERE, AdjustRequest, BoardQuery, PutPoolRequest
from exchange.board.service import SERVICE, Board, BoardService
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM
from exchange.web.i18n import N_
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context


# A page's form is the API's body, but for refusing unknown fields: it carries the CSRF token beside.
class AdjustForm(AdjustRequest, forbid_unknown_fields=False):
    # The counts' version the person tapped on: a tap on counts someone has changed since is refused and the row
    # shows the current ones. `undo`: this tap reverses the one before, and offers no undo of its own.
    version: int | None = None
    undo: bool = False


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


# Up to this many facilities, every city of the board shows its cards at once; past it, only the viewer's own city
# and a searched city do, and the others open on demand (a national board is a summary first: issue 10).
CARDS_AT_ONCE = 12

# What the board's sort menu offers: by name, or by free beds for the chosen profile (most first).
SORTS = {"name": N_("By name"), "free": N_("Most free beds first"), "near": N_("Nearest first")}

# The province menu's "every province": an explicit value, so that no province in the address is the viewer's own.
ALL_PROVINCES = "all"


@dataclass(frozen=True)
class BoardView:
    """What the board's list shows: the summary, which provinces and cities are open, and their cards."""

    summaries: list[ProvinceSummary]
    open_provinces: frozenset[str]
    open_cities: frozenset[tuple[str, str]]
    cards: dict[str, Markup]
    facility_count: int
    free_total: int


def _board_filter(where: BoardQuery, criteria: list[str] | None, only_free: bool) -> BoardFilter:
    if where.province == ALL_PROVINCES:
        where = replace(where, province=None)
    return where.to_filter(criteria=criteria or (), min_free=1 if only_free else 0, lenient=True)


def _city_query(board_filter: BoardFilter, *, sort: str, only_free: bool, **changes: str) -> str:
    """The address of the board with these filters (and `changes`), for links that work without JavaScript."""
    query = board_filter.as_query()
    query.pop("min_free", None)
    query["province"] = query.get("province") or ALL_PROVINCES
    if only_free:
        query["only_free"] = "true"
    if sort != "name":
        query["sort"] = sort
    query.update(changes)
    return urlencode(query, doseq=True)


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
        sort: str = "name",
    ) -> Template:
        sort = sort if sort in SORTS else "name"
        board_filter = _board_filter(where, criteria, only_free)
        board = await service.board(board_filter)
        home = await service.home()
        cities = await service.cities()
        view = self._view(request, board, board_filter, home=home, sort=sort)
        unknown_city, suggestion = "", None
        if board_filter.city and not board.listings:
            known = [
                c
                for p, names in cities.items()
                if p == board_filter.province or not board_filter.province
                for c in names
            ]
            if not any(same_city(board_filter.city, c) for c in known):
                unknown_city, suggestion = board_filter.city, closest_city(board_filter.city, known)

        def city_link(province: str, city: str) -> str:
            return "?" + _city_query(board_filter, sort=sort, only_free=only_free, province=province, city=city)

        context = page_context(
            request,
            view=view,
            my_stale=board.stale,
            now=board.now,
            filter=board_filter,
            only_free=only_free,
            sort=sort,
            sorts=SORTS,
            home=home,
            provinces=PROVINCES,
            all_provinces=ALL_PROVINCES,
            city_names=sorted(
                {
                    c
                    for p, names in cities.items()
                    if p == board_filter.province or not board_filter.province
                    for c in names
                },
                key=city_key,
            ),
            unknown_city=unknown_city,
            suggestion=suggestion,
            suggestion_link=city_link(board_filter.province or ALL_PROVINCES, suggestion) if suggestion else "",
            city_link=city_link,
            city_cards_link=lambda province, city: "/board/city" + city_link(province, city),
        )
        if request.htmx:
            return HTMXBlockTemplate(template_name="board.html", block_name="board_list", context=context)
        return Template("board.html", context=context)

    @get("/board/city", dependencies=WHERE, media_type=MediaType.HTML)
    async def city(
        self,
        request: Request[User, str, object],
        service: BoardService,
        where: BoardQuery,
        criteria: list[str] | None = None,
        only_free: bool = False,
        sort: str = "name",
    ) -> Response[str]:
        """The cards of one city, for the board's summary opening it (htmx); the city's board page without it."""
        board_filter = _board_filter(where, criteria, only_free)
        if not board_filter.city:
            return Response(_("Choose a city."), media_type=MediaType.HTML)
        board = await service.board(board_filter)
        view = self._view(request, board, board_filter, home=("", ""), sort=sort if sort in SORTS else "name")
        listings = [li for province in view.summaries for city in province.cities for li in city.listings]
        if not listings:
            return Response(_("No facility matches these filters."), media_type=MediaType.HTML)
        return Response("".join(view.cards[li.facility.id] for li in listings), media_type=MediaType.HTML)

    def _view(
        self, request: Request, board: Board, board_filter: BoardFilter, *, home: tuple[str, str], sort: str
    ) -> BoardView:
        """The summary of what the filter found, with the cards of the open cities only."""
        summaries = summarize(board.listings, profile=board_filter.profile, by_free=sort == "free", first=home)
        if sort == "near":  # from the viewer's own place (beds/geo.py, city precision)
            summaries = nearest_summaries(summaries, home)
        everything = len(board.listings) <= CARDS_AT_ONCE or bool(board_filter.city)
        open_cities = {
            (c.province, c.key)
            for p in summaries
            for c in p.cities
            if everything or (c.province == home[0] and c.key == city_key(home[1]))
        }
        open_provinces = {p.province for p in summaries if everything or board_filter.province or p.province == home[0]}
        shown = [li for p in summaries for c in p.cities if (c.province, c.key) in open_cities for li in c.listings]
        cards = request.app.state.facility_cards.render(
            request.app.template_engine.engine,
            shown,
            editable=board.own_facility_ids,
            now=board.now,
            csrf_input=_csrf_input(request),
        )
        return BoardView(
            summaries=summaries,
            open_provinces=frozenset(open_provinces),
            open_cities=frozenset(open_cities),
            cards=cards,
            facility_count=len(board.listings),
            free_total=sum(li.free for li in board.listings),
        )

    @post("/pools/{pool_id:str}/adjust", status_code=200, media_type=MediaType.HTML)
    async def adjust(
        self, request: Request, service: BoardService, pool_id: str, data: Annotated[AdjustForm, FORM]
    ) -> Template | Redirect:
        """Arrival (+1 occupied) or Departure (-1), from a pool's row: the row comes back with the new counts, a
        word of what happened and, for a few seconds, Undo. A refused tap (someone changed the counts meanwhile,
        no bed free, nobody to leave) comes back as the row with the current counts and why, never an error page."""
        try:
            pool = await service.adjust_pool(
                pool_id,
                occupied_delta=data.occupied_delta,
                out_of_service_delta=data.out_of_service_delta,
                version=data.version,
            )
        except (Conflict, Invalid) as refused:
            pool = await service.staffed_pool(pool_id)
            notice = _refusal(refused, pool)
            if not request.htmx:
                return await _facility_page(request, service, pool.facility_id, notice=notice)
            context = {"pool": pool, "facility_id": pool.facility_id, "can_edit": True, "notice": notice}
            return Template("fragments/pool_row.html", context=context)
        if not request.htmx:
            return _to_facility(pool.facility_id)
        undo = 0 if data.undo or data.out_of_service_delta else data.occupied_delta
        context = {
            "pool": pool,
            "facility_id": pool.facility_id,
            "can_edit": True,
            "undo": undo,
            "notice": _done(data, pool),
        }
        return Template("fragments/pool_row.html", context=context)


def _done(data: AdjustForm, pool: Any) -> str:
    """What a tap did, in words, with the free count it left."""
    if data.undo:
        return _("Undone: %(free)s free.", free=pool.free)
    if data.occupied_delta > 0:
        return _("Arrival counted: %(free)s free.", free=pool.free)
    if data.occupied_delta < 0:
        return _("Departure counted: %(free)s free.", free=pool.free)
    return _("Counts saved: %(free)s free.", free=pool.free)


def _refusal(refused: BedsError, pool: Any) -> str:
    """Why a tap changed nothing, with the counts as they are now."""
    if refused.code == "version_conflict":
        return _(
            "Someone else changed these counts; they are now %(occupied)s occupied. "
            "Tap again if your change is still needed.",
            occupied=pool.occupied,
        )
    if refused.code == "insufficient_capacity":
        return _("No bed is free here any more (%(occupied)s occupied); nothing was changed.", occupied=pool.occupied)
    return (
        _("Nothing was changed: nobody is counted as occupied here.")
        if pool.occupied <= 0
        else _("Nothing was changed: these counts cannot go below zero or above the beds of this pool.")
    )


async def _facility_page(
    request: Request, service: BoardService, facility_id: str, *, notice: str = "", status_code: int = 200
) -> Template:
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
            notice=notice,
        ),
        status_code=status_code,
    )


class FacilityPages(Controller):
    dependencies = SERVICE

    @get("/facilities/{facility_id:str}")
    async def facility(self, request: Request, service: BoardService, facility_id: str) -> Template:
        return await _facility_page(request, service, facility_id)

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
                stays=occupancy.stays,
            ),
        )
