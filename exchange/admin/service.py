"""The network admin's operations: organisations, users and their roles, facilities and their pools.

The admin pages' guard admits network admins only; these check what the forms say and refuse what would lock
the admin out. exchange/admin/pages.py reaches them as the `service` dependency (`SERVICE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds import facilities
from beds.audit import ReleaseFilter
from beds.errors import Invalid
from beds.models import BedPool, Facility
from exchange.accounts import service as accounts
from exchange.accounts.models import Organisation, OrgKind, Role, RoleGrant, User
from exchange.admin import grants
from exchange.board.addresses import ReleaseRow, release_rows
from exchange.live.events import publish_session_end
from exchange.web import throttle
from ledger.network_audit import record_network_event

# Written by the shelter, never read back by the coalition (see `edit_facility`).
CONFIDENTIAL_FIELDS = ("address", "intake_phone")


@dataclass(frozen=True)
class Overview:
    organisations: list[Organisation]
    users: list[User]
    facilities: list[Facility]
    pool_counts: dict[str, int]


@dataclass(frozen=True)
class GrantView:
    """A pending role grant as the pages and the API show it: whose, what, who asked, and whether the
    person looking may decide it."""

    grant: RoleGrant
    username: str
    organisation: str
    requested_by: str
    may_decide: bool


@dataclass(frozen=True)
class Releases:
    rows: list[ReleaseRow]
    filter: ReleaseFilter
    organisations: list[Organisation]
    users: list[User]
    facilities: list[Facility]


def _known_roles(roles: Iterable[str]) -> list[str]:
    roles = list(roles)
    if not roles or any(r not in set(Role) for r in roles):
        raise Invalid("invalid_roles", "Choose at least one known role.")
    return roles


class AdminService:
    def __init__(
        self,
        db: AsyncSession,
        actor: User,
        channels: ChannelsPlugin | None = None,
        limiter: throttle.LoginThrottle | None = None,
    ) -> None:
        self.db = db
        self.actor = actor
        # To close a user's live sockets when their rights change; to lift the login waits of an account.
        self.channels = channels
        self.limiter = limiter

    def _end_sessions_live(self, user_id: str) -> None:
        if self.channels is not None:
            publish_session_end(self.channels, user_id)

    async def _audit(self, action: str, **detail: Any) -> None:
        """Every admin action goes into the hash-chained network audit (ledger/network_audit.py), ids only."""
        await record_network_event(self.db, action, self.actor.id, detail)

    async def overview(self) -> Overview:
        return Overview(
            await accounts.organisations(self.db),
            await accounts.users(self.db),
            await facilities.all_facilities(self.db),
            await facilities.pool_counts(self.db),
        )

    async def add_organisation(self, *, name: str, kind: str, province: str) -> Organisation:
        if kind not in set(OrgKind) or not name.strip():
            raise Invalid("invalid_organisation", "An organisation needs a name and a known kind.")
        try:
            organisation = await accounts.create_organisation(self.db, name=name, kind=kind, province=province)
        except IntegrityError as exc:
            await self.db.rollback()
            raise Invalid("duplicate_name", "An organisation with this name exists.") from exc
        await self._audit("organisation_added", organisation=organisation.id, kind=kind)
        return organisation

    async def _organisation(self, organisation_id: str) -> Organisation:
        organisation = await self.db.get(Organisation, organisation_id)
        if organisation is None:
            raise Invalid("invalid_organisation", "No such organisation.")
        return organisation

    async def add_user(
        self,
        *,
        username: str,
        password: str,
        organisation_id: str,
        roles: Iterable[str],
        lead_worker: bool = False,
        **profile: Any,
    ) -> User:
        """A new user; `profile` is display_name and email. The roles that wait for a second person
        (exchange/admin/grants.py) go into a pending grant: the account starts without them."""
        known = _known_roles(roles)
        if len(password) < accounts.PASSWORD_MIN:
            raise Invalid("weak_password", f"Passwords need at least {accounts.PASSWORD_MIN} characters.")
        await self._organisation(organisation_id)
        change = grants.split(
            known, lead_worker, organisation_id=organisation_id, admin_org_id=self.actor.organisation_id
        )
        try:
            user = await accounts.create_user(
                self.db,
                username=username.strip(),
                password=password,
                organisation_id=organisation_id,
                roles=change.now,
                lead_worker=change.lead_worker_now,
                **profile,
            )
        except IntegrityError as exc:
            await self.db.rollback()
            raise Invalid("duplicate_username", "This username is taken.") from exc
        grant = await grants.request_grant(self.db, user, change, requested_by=self.actor)
        await self._audit(
            "user_added",
            user=user.id,
            organisation=organisation_id,
            roles=known,
            lead_worker=lead_worker,
            granted=change.now,
            grant=grant.id if grant else None,
        )
        return user

    async def set_active(self, user_id: str, active: bool) -> None:
        if not active and user_id == self.actor.id:
            raise Invalid("self_disable", "You cannot disable your own account.")
        await accounts.set_user_active(self.db, user_id, active)
        await self._audit("user_enabled" if active else "user_disabled", user=user_id)
        if not active:
            self._end_sessions_live(user_id)

    async def unlock(self, user_id: str) -> None:
        """Lift every login wait of this account, from every address."""
        user = await self.db.get(User, user_id)
        if user is None:
            raise NotFoundException("No such user.")
        if self.limiter is not None:
            await self.limiter.unlock(user.username)
        await self._audit("user_unlocked", user=user_id)

    async def set_roles(self, user_id: str, roles: Iterable[str], *, lead_worker: bool) -> User:
        """What is taken away applies at once; what is added waits for a second person (a pending grant, which
        replaces any older one of this user)."""
        known = _known_roles(roles)
        if user_id == self.actor.id and Role.NETWORK_ADMIN.value not in known:
            # The last door into these pages must not close behind the person holding it.
            raise Invalid("self_demotion", "You cannot remove your own network admin role.")
        user = await self.db.get(User, user_id)
        if user is None:
            raise NotFoundException("No such user.")
        change = grants.split(
            known,
            lead_worker,
            current=user.roles,
            lead_current=user.lead_worker,
            organisation_id=user.organisation_id,
            admin_org_id=self.actor.organisation_id,
        )
        user = await accounts.set_user_roles(self.db, user_id, change.now, change.lead_worker_now)
        if user is None:
            raise NotFoundException("No such user.")
        grant = await grants.request_grant(self.db, user, change, requested_by=self.actor)
        await self._audit(
            "user_roles",
            user=user_id,
            roles=known,
            lead_worker=lead_worker,
            granted=change.now,
            grant=grant.id if grant else None,
        )
        # Open sockets filter by the roles they were opened with: they close, and the client reconnects with these.
        self._end_sessions_live(user_id)
        return user

    async def pending_grants(self) -> list[GrantView]:
        """Pending role grants: a network admin sees them all, anyone else those they may decide."""
        everyone = {u.id: u for u in await accounts.users(self.db)}
        names = {o.id: o.name for o in await accounts.organisations(self.db)}
        views = []
        sponsors = await grants.sponsors_of(self.db, self.actor.id)
        for grant in await grants.pending_grants(self.db):
            may = grants.refusal(grant, self.actor, sponsors) is None
            if not (may or self.actor.has(Role.NETWORK_ADMIN)):
                continue
            user, asker = everyone.get(grant.user_id), everyone.get(grant.requested_by_user_id)
            views.append(
                GrantView(
                    grant,
                    user.username if user else "",
                    names.get(grant.organisation_id, ""),
                    asker.username if asker else "",
                    may,
                )
            )
        return views

    async def decide_grant(self, grant_id: str, *, approve: bool) -> RoleGrant:
        """Approve or refuse a pending grant (exchange/admin/grants.py says who may)."""
        grant = await grants.decide(self.db, grant_id, self.actor, approve=approve)
        if approve:
            # The user's open sockets reconnect with the roles they now hold.
            self._end_sessions_live(grant.user_id)
        return grant

    async def add_facility(self, organisation_id: str, fields: dict[str, Any]) -> Facility:
        await self._organisation(organisation_id)
        facility = await facilities.create_facility(self.db, organisation_id=organisation_id, **fields)
        await self._audit("facility_added", facility=facility.id, organisation=organisation_id)
        return facility

    async def facility_for_edit(self, facility_id: str) -> tuple[Facility, list[Organisation]]:
        """The facility and every organisation it could belong to."""
        facility = await self.db.get(Facility, facility_id)
        if facility is None:
            raise NotFoundException("No such facility.")
        return facility, await accounts.organisations(self.db)

    async def edit_facility(self, facility_id: str, fields: dict[str, Any]) -> Facility:
        """The address and phone are write-only here: the coalition manages facilities without reading where
        people sleep, and an empty field keeps what the shelter gave."""
        kept = {k: v for k, v in fields.items() if v or k not in CONFIDENTIAL_FIELDS}
        facility = await facilities.update_facility(self.db, facility_id, **kept)
        await self._audit("facility_edited", facility=facility_id, fields=sorted(kept))
        return facility

    async def add_pool(self, facility_id: str, *, profile: str, capacity: int) -> BedPool:
        pool = await facilities.add_pool(self.db, facility_id, profile=profile, capacity=capacity)
        await self._audit("pool_added", facility=facility_id, pool=pool.id, capacity=capacity)
        return pool

    async def address_releases(self, release_filter: ReleaseFilter) -> Releases:
        """Every read of a confidential address in the network the filter matches, newest first, with what the
        filter form offers to choose from."""
        return Releases(
            await release_rows(self.db, release_filter),
            release_filter,
            await accounts.organisations(self.db),
            await accounts.users(self.db),
            await facilities.all_facilities(self.db),
        )


def provide_admin_service(request: Request[User, str, object], db: AsyncSession) -> AdminService:
    return AdminService(db, request.user, request.app.plugins.get(ChannelsPlugin), throttle.for_app(request.app))


# The admin controller declares this: its handlers take `service: AdminService`.
SERVICE = {"service": Provide(provide_admin_service, sync_to_thread=False)}
