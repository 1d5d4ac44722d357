"""Network admin: organisations, users and facilities, and the log of every read of a confidential address."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from msgspec import Struct
from msgspec.structs import asdict

from beds.audit import RELEASES_PAGE, ReleaseFilter
from beds.errors import Conflict
from beds.models import PROVINCES
from exchange.accounts.models import OrgKind, Role
from exchange.admin.grants import DECIDERS
from exchange.admin.service import SERVICE, AdminService
from exchange.web.auth import requires_roles
from exchange.web.forms import FORM, safe_next
from exchange.web.nav import page_context


class OrganisationForm(Struct):
    name: str
    kind: str
    province: str = ""


class UserForm(Struct):
    username: str
    password: str
    organisation_id: str
    roles: list[str] | str
    display_name: str = ""
    email: str = ""
    lead_worker: bool = False


class RolesForm(Struct):
    roles: list[str] | str
    lead_worker: bool = False


class FacilityEditForm(Struct, kw_only=True):
    # What it is and where, as the board shows it.
    name: str
    kind: str
    security_level: str = "standard"
    province: str
    city: str
    area: str = ""
    # Write-only: an empty field keeps what the shelter gave.
    address: str = ""
    intake_phone: str = ""
    oncall_email: str = ""
    # Whom it takes.
    genders: str = "women"
    age_min: int = 18
    languages: str = "en,fr"
    accepts_trafficking: bool = False
    accepts_worker_referral: bool = False
    sobriety_required: bool = False
    asylum_seekers_only: bool = False
    accessible: bool = False
    children_accompanied: bool = False
    # Culturally specific help (beds/fit.py): the board filters on it, a plan's group may prefer it.
    indigenous_led: bool = False
    culturally_specific: bool = False
    cultural_support: str = ""
    active: bool = False

    def fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in FacilityEditForm.__struct_fields__}


class FacilityForm(FacilityEditForm, kw_only=True):
    """A new facility: the same fields, plus the shelter organisation it belongs to."""

    organisation_id: str
    active: bool = True  # the add form has no such box: a new facility is listed at once


class DecisionForm(Struct):
    # The page the decision was taken from, to go back to.
    next: str = "/admin"


class PoolForm(Struct):
    profile: str
    capacity: int


def _listed(roles: list[str] | str) -> list[str]:
    """A form with one box ticked posts a string, with several a list."""
    return [roles] if isinstance(roles, str) else roles


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _done(notice: str) -> Redirect:
    return Redirect(path="/admin", query_params={"notice": notice}, status_code=303)


class AdminPages(Controller):
    path = "/admin"
    guards = [requires_roles(Role.NETWORK_ADMIN)]
    dependencies = SERVICE

    @get("/")
    async def index(self, request: Request, service: AdminService, notice: str | None = None) -> Template:
        overview = await service.overview()
        pending = await service.pending_grants()
        return Template(
            "admin.html",
            context=page_context(
                request,
                orgs=overview.organisations,
                org_names={o.id: o.name for o in overview.organisations},
                users=overview.users,
                facilities=overview.facilities,
                pool_counts=overview.pool_counts,
                roles=[r.value for r in Role],
                org_kinds=[k.value for k in OrgKind],
                provinces=PROVINCES,
                notice=notice,
                grants=pending,
                waiting={view.grant.user_id: view.grant for view in pending},
            ),
        )

    @post("/organisations", status_code=303)
    async def add_organisation(self, service: AdminService, data: Annotated[OrganisationForm, FORM]) -> Redirect:
        await service.add_organisation(name=data.name, kind=data.kind, province=data.province)
        return _done("organisation_created")

    @post("/users", status_code=303)
    async def add_user(self, service: AdminService, data: Annotated[UserForm, FORM]) -> Redirect:
        user = await service.add_user(**{**asdict(data), "roles": _listed(data.roles)})
        return _done("user_created" if set(user.roles) >= set(_listed(data.roles)) else "grant_requested")

    @post("/users/{user_id:str}/disable", status_code=303)
    async def disable_user(self, service: AdminService, user_id: str) -> Redirect:
        await service.set_active(user_id, False)
        return _done("user_disabled")

    @post("/users/{user_id:str}/enable", status_code=303)
    async def enable_user(self, service: AdminService, user_id: str) -> Redirect:
        await service.set_active(user_id, True)
        return _done("user_enabled")

    @post("/users/{user_id:str}/unlock", status_code=303)
    async def unlock_user(self, service: AdminService, user_id: str) -> Redirect:
        await service.unlock(user_id)
        return _done("user_unlocked")

    @post("/users/{user_id:str}/roles", status_code=303)
    async def set_roles(self, service: AdminService, user_id: str, data: Annotated[RolesForm, FORM]) -> Redirect:
        user = await service.set_roles(user_id, _listed(data.roles), lead_worker=data.lead_worker)
        waits = not set(user.roles) >= set(_listed(data.roles)) or (data.lead_worker and not user.lead_worker)
        return _done("grant_requested" if waits else "roles_saved")

    @post("/facilities", status_code=303)
    async def add_facility(self, service: AdminService, data: Annotated[FacilityForm, FORM]) -> Redirect:
        await service.add_facility(data.organisation_id, data.fields())
        return _done("facility_created")

    @get("/facilities/{facility_id:str}")
    async def edit_facility_page(self, request: Request, service: AdminService, facility_id: str) -> Template:
        facility, orgs = await service.facility_for_edit(facility_id)
        return Template(
            "admin_facility.html",
            context=page_context(request, facility=facility, orgs=orgs, provinces=PROVINCES),
        )

    @post("/facilities/{facility_id:str}", status_code=303)
    async def edit_facility(
        self, service: AdminService, facility_id: str, data: Annotated[FacilityEditForm, FORM]
    ) -> Redirect:
        await service.edit_facility(facility_id, data.fields())
        return _done("facility_saved")

    @get("/address-releases")
    async def address_releases(
        self,
        request: Request,
        service: AdminService,
        facility_id: str | None = None,
        organisation_id: str | None = None,
        user_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Template:
        """Every read of a confidential address, filterable by facility, reader's organisation, user and dates
        (`since` and `until` are days, both included; a malformed day is no filter)."""
        start, end = _day(since), _day(until)
        release_filter = ReleaseFilter(
            facility_id=facility_id or None,
            organisation_id=organisation_id or None,
            user_id=user_id or None,
            since=datetime.combine(start, time(), UTC) if start else None,
            until=datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
        )
        releases = await service.address_releases(release_filter)
        return Template(
            "admin_releases.html",
            context=page_context(
                request,
                releases=releases,
                since=start.isoformat() if start else "",
                until=end.isoformat() if end else "",
                limit=RELEASES_PAGE,
            ),
        )

    @post("/facilities/{facility_id:str}/pools", status_code=303)
    async def add_pool(self, service: AdminService, facility_id: str, data: Annotated[PoolForm, FORM]) -> Redirect:
        await service.add_pool(facility_id, profile=data.profile, capacity=data.capacity)
        return _done("pool_created")


class GrantPages(Controller):
    """Role grants waiting for a second person: another network admin (also on /admin), or someone of the
    account's organisation who holds the role, or a fund approver of another organisation for fund roles."""

    path = "/admin/grants"
    guards = [requires_roles(*DECIDERS)]
    dependencies = SERVICE

    @get("/")
    async def grants(self, request: Request, service: AdminService, notice: str | None = None) -> Template:
        return Template(
            "admin_grants.html",
            context=page_context(request, grants=await service.pending_grants(), notice=notice),
        )

    @post("/{grant_id:str}/approve", status_code=303)
    async def approve(self, service: AdminService, grant_id: str, data: Annotated[DecisionForm, FORM]) -> Redirect:
        return await _decided(service, grant_id, data, approve=True)

    @post("/{grant_id:str}/refuse", status_code=303)
    async def refuse(self, service: AdminService, grant_id: str, data: Annotated[DecisionForm, FORM]) -> Redirect:
        return await _decided(service, grant_id, data, approve=False)


async def _decided(service: AdminService, grant_id: str, data: DecisionForm, *, approve: bool) -> Redirect:
    """Back to the page the decision came from, saying what happened; someone else deciding first is said too."""
    try:
        await service.decide_grant(grant_id, approve=approve)
        notice = "grant_approved" if approve else "grant_refused"
    except Conflict:
        notice = "grant_decided"
    return Redirect(path=safe_next(data.next), query_params={"notice": notice}, status_code=303)
