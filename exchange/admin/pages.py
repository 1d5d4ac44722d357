"""Network admin: organisations, users and facilities."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds import facilities
from beds.errors import Invalid
from beds.models import PROVINCES, BedPool, Facility
from exchange.accounts.models import (
    Organisation,
    OrgKind,
    Role,
    User,
    create_organisation,
    create_user,
    set_user_active,
    set_user_roles,
)
from exchange.web.auth import requires_roles
from exchange.web.nav import page_context

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


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


class FacilityEditForm(Struct):
    name: str
    kind: str
    province: str
    city: str
    area: str = ""
    address: str = ""
    intake_phone: str = ""
    oncall_email: str = ""
    security_level: str = "standard"
    genders: str = "women"
    age_min: int = 18
    languages: str = "en,fr"
    accepts_trafficking: bool = False
    accepts_worker_referral: bool = False
    sobriety_required: bool = False
    asylum_seekers_only: bool = False
    accessible: bool = False
    children_accompanied: bool = False
    active: bool = False


class FacilityForm(FacilityEditForm, kw_only=True):
    """A new facility: the same fields, plus the shelter organisation it belongs to."""

    organisation_id: str
    active: bool = True  # the add form has no such box: a new facility is listed at once


class PoolForm(Struct):
    profile: str
    capacity: int


class AdminPages(Controller):
    path = "/admin"
    guards = [requires_roles(Role.NETWORK_ADMIN)]

    @get("/")
    async def index(self, request: Request, db: AsyncSession, notice: str | None = None) -> Template:
        orgs = (await db.execute(select(Organisation).order_by(Organisation.name))).scalars().all()
        users = (await db.execute(select(User).order_by(User.username))).scalars().all()
        facility_rows = (await db.execute(select(Facility).order_by(Facility.province, Facility.name))).scalars().all()
        pool_counts: dict[str, int] = {}
        for pool in (await db.execute(select(BedPool))).scalars():
            pool_counts[pool.facility_id] = pool_counts.get(pool.facility_id, 0) + 1
        return Template(
            "admin.html",
            context=page_context(
                request,
                orgs=orgs,
                org_names={o.id: o.name for o in orgs},
                users=users,
                facilities=facility_rows,
                pool_counts=pool_counts,
                roles=[r.value for r in Role],
                org_kinds=[k.value for k in OrgKind],
                provinces=PROVINCES,
                notice=notice,
            ),
        )

    @post("/organisations", status_code=303)
    async def add_organisation(self, db: AsyncSession, data: Annotated[OrganisationForm, FORM]) -> Redirect:
        if data.kind not in set(OrgKind) or not data.name.strip():
            raise Invalid("invalid_organisation", "An organisation needs a name and a known kind.")
        try:
            await create_organisation(db, name=data.name, kind=data.kind, province=data.province)
        except IntegrityError as exc:
            await db.rollback()
            raise Invalid("duplicate_name", "An organisation with this name exists.") from exc
        return Redirect(path="/admin", query_params={"notice": "organisation_created"}, status_code=303)

    @post("/users", status_code=303)
    async def add_user(self, db: AsyncSession, data: Annotated[UserForm, FORM]) -> Redirect:
        roles = [data.roles] if isinstance(data.roles, str) else data.roles
        if not roles or any(r not in set(Role) for r in roles):
            raise Invalid("invalid_roles", "Choose at least one known role.")
        if len(data.password) < 12:
            raise Invalid("weak_password", "Passwords need at least 12 characters.")
        if await db.get(Organisation, data.organisation_id) is None:
            raise Invalid("invalid_organisation", "No such organisation.")
        try:
            await create_user(
                db,
                username=data.username.strip(),
                password=data.password,
                organisation_id=data.organisation_id,
                roles=roles,
                display_name=data.display_name,
                email=data.email,
                lead_worker=data.lead_worker,
            )
        except IntegrityError as exc:
            await db.rollback()
            raise Invalid("duplicate_username", "This username is taken.") from exc
        return Redirect(path="/admin", query_params={"notice": "user_created"}, status_code=303)

    @post("/users/{user_id:str}/disable", status_code=303)
    async def disable_user(self, request: Request[User, str, object], db: AsyncSession, user_id: str) -> Redirect:
        if user_id == request.user.id:
            raise Invalid("self_disable", "You cannot disable your own account.")
        await set_user_active(db, user_id, False)
        return Redirect(path="/admin", query_params={"notice": "user_disabled"}, status_code=303)

    @post("/users/{user_id:str}/enable", status_code=303)
    async def enable_user(self, db: AsyncSession, user_id: str) -> Redirect:
        await set_user_active(db, user_id, True)
        return Redirect(path="/admin", query_params={"notice": "user_enabled"}, status_code=303)

    @post("/users/{user_id:str}/roles", status_code=303)
    async def set_roles(
        self, request: Request[User, str, object], db: AsyncSession, user_id: str, data: Annotated[RolesForm, FORM]
    ) -> Redirect:
        roles = [data.roles] if isinstance(data.roles, str) else data.roles
        if not roles or any(r not in set(Role) for r in roles):
            raise Invalid("invalid_roles", "Choose at least one known role.")
        if user_id == request.user.id and Role.NETWORK_ADMIN.value not in roles:
            # The last door into this page must not close behind the person holding it.
            raise Invalid("self_demotion", "You cannot remove your own network admin role.")
        if await set_user_roles(db, user_id, roles, data.lead_worker) is None:
            raise NotFoundException("No such user.")
        return Redirect(path="/admin", query_params={"notice": "roles_saved"}, status_code=303)

    @post("/facilities", status_code=303)
    async def add_facility(self, db: AsyncSession, data: Annotated[FacilityForm, FORM]) -> Redirect:
        if await db.get(Organisation, data.organisation_id) is None:
            raise Invalid("invalid_organisation", "No such organisation.")
        fields = {k: getattr(data, k) for k in data.__struct_fields__ if k != "organisation_id"}
        await facilities.create_facility(db, organisation_id=data.organisation_id, **fields)
        return Redirect(path="/admin", query_params={"notice": "facility_created"}, status_code=303)

    @get("/facilities/{facility_id:str}")
    async def edit_facility_page(self, request: Request, db: AsyncSession, facility_id: str) -> Template:
        facility = await db.get(Facility, facility_id)
        if facility is None:
            raise NotFoundException("No such facility.")
        orgs = (await db.execute(select(Organisation).order_by(Organisation.name))).scalars().all()
        return Template(
            "admin_facility.html",
            context=page_context(request, facility=facility, orgs=orgs, provinces=PROVINCES),
        )

    @post("/facilities/{facility_id:str}", status_code=303)
    async def edit_facility(
        self, db: AsyncSession, facility_id: str, data: Annotated[FacilityEditForm, FORM]
    ) -> Redirect:
        fields = {k: getattr(data, k) for k in data.__struct_fields__}
        # The address and phone are write-only here: the coalition manages facilities without reading
        # where people sleep; an empty field keeps what the shelter gave.
        for secret in ("address", "intake_phone"):
            if not fields[secret]:
                del fields[secret]
        await facilities.update_facility(db, facility_id, **fields)
        return Redirect(path="/admin", query_params={"notice": "facility_saved"}, status_code=303)

    @post("/facilities/{facility_id:str}/pools", status_code=303)
    async def add_pool(self, db: AsyncSession, facility_id: str, data: Annotated[PoolForm, FORM]) -> Redirect:
        await facilities.add_pool(db, facility_id, profile=data.profile, capacity=data.capacity)
        return Redirect(path="/admin", query_params={"notice": "pool_created"}, status_code=303)
