"""The shell's operations on holds, police operations and standing agreements, for one request's user.

Each one calls the domain (beds/holds.py, beds/operations.py, beds/agreements.py) as that user, expires on
read what is past its time, publishes the live events and mails the facility. exchange/holds/api.py and
pages.py reach it as the `service` dependency (`SERVICE`) and call nothing else for behaviour.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import agreements as agreement_ops
from beds import holds as hold_ops
from beds import operations as op_ops
from beds.coverage import Coverage, OperationStatus, coverage, operation_status
from beds.errors import NotFound
from beds.holds import BulkResult, HoldChange, HoldLimits, NewHold, Requester, requester_kind
from beds.holds_models import ACTIVE_STATUSES, Agreement, AgreementScope, Hold, HoldIncident, Operation, OperationNeed
from beds.models import BedPool, Facility
from beds.operations import NewOperation
from beds.planner import Need, Plan, PlanOptions
from beds.timeutil import utcnow
from beds.visibility import Viewer
from exchange.accounts.models import Organisation, User
from exchange.board.addresses import reveal_address, viewer_with_grants
from exchange.board.live import publish_pool_views
from exchange.holds.live import publish_change, publish_hold
from exchange.holds.mail import notify_new_holds
from exchange.registry import GrantSource
from exchange.settings import Settings
from exchange.web.auth import viewer_for
from exchange.web.personal_data import refuse_personal_data
from ledger import cases as ledger_cases
from ledger.errors import Conflict as LedgerConflict
from ledger.errors import NotFound as LedgerNotFound
from ledger.network_audit import record_network_event


def response_window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.response_window_minutes)


def hold_limits(settings: Settings) -> HoldLimits:
    return HoldLimits(settings.hold_limit_per_requester, settings.hold_limit_per_organisation)


async def open_case_code(session: AsyncSession, code: str, organisation_id: str) -> str | None:
    """The case's code if it is an open case led by the organisation (ledger/cases.py), else None: a closed
    case takes no new hold."""
    try:
        case = await ledger_cases.open_case_for_org(session, code, organisation_id)
    except (LedgerNotFound, LedgerConflict):
        return None
    return case.code


async def _organisation_name(session: AsyncSession, organisation_id: str) -> str:
    org = await session.get(Organisation, organisation_id)
    return org.name if org else ""


async def requester_for(session: AsyncSession, user: User) -> Requester:
    name = await _organisation_name(session, user.organisation_id)
    return Requester(user.id, user.organisation_id, name, requester_kind(user.roles))


async def operation_requester(session: AsyncSession, user: User, organisation_id: str) -> Requester:
    """The police service holds an operation's beds, also when a coordinator places them for it."""
    name = await _organisation_name(session, organisation_id)
    return Requester(user.id, organisation_id, name, AgreementScope.POLICE.value)


@dataclass(frozen=True)
class OperationDetail:
    operation: Operation
    needs: list[OperationNeed]
    holds: list[Hold]
    coverage: Coverage
    status: OperationStatus


@dataclass(frozen=True)
class Allocated:
    """What an allocation placed and, for a partial one, what is still missing per need (and whether the
    service's hold limit is what stopped it)."""

    holds: list[Hold]
    missing: list[Need]
    limited: bool = False


def _planner_order(needs: list[Need]) -> list[Need]:
    """Needs in the order the planner places them (and its 409 lists them): by profile, "any" last."""
    return sorted(needs, key=lambda n: (n.profile == "any", n.profile))


@dataclass
class HoldService:
    """One request's user and what the shell's holds operations need: a session, the channels, the settings."""

    db: AsyncSession
    channels: ChannelsPlugin
    settings: Settings
    user: User
    grant_sources: Sequence[GrantSource] = ()
    viewer: Viewer = field(init=False)

    def __post_init__(self) -> None:
        self.viewer = viewer_for(self.user)

    # --- reading: whatever is past its expiry reads as expired, with its beds back -------------------------

    async def refresh_expiry(self, hold_ids: Iterable[str]) -> None:
        for hold_id in hold_ids:
            change = await hold_ops.expire_if_due(self.db, hold_id)
            if change is not None:
                await publish_change(self.db, self.channels, change)

    async def _fresh(self, read: Callable[[], Awaitable[list[Hold]]]) -> list[Hold]:
        """The holds `read` returns, read again after expiring the overdue ones (only if there were any)."""
        holds = await read()
        now = utcnow()
        due = [h.id for h in holds if h.is_active and h.expires_at <= now]
        if not due:
            return holds
        await self.refresh_expiry(due)
        return await read()

    async def visible_hold(self, hold_id: str) -> Hold:
        """The hold if the user is a party (else 404), expired first when it is overdue: a read never says
        "requested" about a hold whose time has passed. Only an overdue hold costs a second transaction."""
        hold = await hold_ops.get_hold(self.db, hold_id, self.viewer)
        if not (hold.is_active and hold.expires_at <= utcnow()):
            return hold
        change = await hold_ops.expire_if_due(self.db, hold_id)
        if change is None:  # another request expired or moved it in between: read what it is now
            return await hold_ops.get_hold(self.db, hold_id)
        await publish_change(self.db, self.channels, change)
        return change.hold

    async def requests(self) -> list[Hold]:
        """The holds asked of the user's facilities (the shelter's requests page)."""
        return await self._fresh(lambda: hold_ops.holds_for_facilities(self.db, self.user.organisation_id))

    async def operations(self) -> list[OperationDetail]:
        """The operations the user may see, each with its status and coverage (overdue holds count as
        expired without being written: a list read changes nothing)."""
        operations = await op_ops.operations_for(self.db, self.viewer)
        holds = await op_ops.holds_by_operation(self.db, [o.id for o in operations])
        needs_of = await op_ops.needs_by_operation(self.db, [o.id for o in operations])
        now = utcnow()
        details = []
        for operation in operations:
            needs = needs_of[operation.id]
            found = holds[operation.id]
            details.append(
                OperationDetail(operation, needs, found, coverage(needs, found, now), operation_status(operation, now))
            )
        return details

    async def operation(self, operation_id: str) -> OperationDetail:
        operation = await op_ops.get_operation(self.db, self.viewer, operation_id)
        holds = await self._fresh(lambda: hold_ops.holds_of_operation(self.db, operation_id))
        needs = await op_ops.needs_of(self.db, operation_id)
        now = utcnow()
        return OperationDetail(operation, needs, holds, coverage(needs, holds, now), operation_status(operation, now))

    async def pools_with_facilities(self, pool_ids: set[str]) -> dict[str, tuple[BedPool, Facility]]:
        return await hold_ops.pools_with_facilities(self.db, pool_ids)

    async def contacts(self, facilities: Iterable[Facility]) -> dict[str, Facility]:
        """The facilities whose confidential address and phone the user may be shown; each release is audited."""
        viewer, grants = await viewer_with_grants(self.db, self.user, self.grant_sources)
        shown: dict[str, Facility] = {}
        for facility in facilities:
            if facility.id not in shown and await reveal_address(self.db, viewer, grants, facility, "page"):
                shown[facility.id] = facility
        return shown

    # --- operations ----------------------------------------------------------------------------------------

    async def create_operation(
        self, new: NewOperation, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> tuple[Operation, list[OperationNeed]]:
        refuse_personal_data("notes", new.notes)
        return await op_ops.create_operation(
            self.db,
            self.viewer,
            new,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            max_beds=self.settings.operation_need_max_beds,
        )

    async def plan(self, operation_id: str, options: PlanOptions) -> tuple[Operation, Plan]:
        return await op_ops.plan_operation(self.db, self.viewer, operation_id, options)

    async def allocate(
        self,
        operation_id: str,
        options: PlanOptions,
        *,
        partial: bool = False,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> Allocated:
        """Place the operation's holds for the police service that runs it: all or none, or with `partial` the
        part of the plan that exists, within the service's hold limit."""
        operation = await op_ops.get_operation(self.db, self.viewer, operation_id)
        requester = await operation_requester(self.db, self.user, operation.organisation_id)
        result = await op_ops.allocate(
            self.db,
            self.viewer,
            requester,
            operation_id,
            options,
            response_window=response_window(self.settings),
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            limits=hold_limits(self.settings),
            partial=partial,
        )
        if result.replayed:
            # What is missing now: the same request answered again says what is still to find.
            missing = await op_ops.remaining_needs(self.db, operation_id)
            await self.db.rollback()
            return Allocated(result.holds, _planner_order(missing))
        await self._announce(result.holds, result.pools)
        return Allocated(result.holds, _planner_order(result.missing), result.limited)

    # --- holds ---------------------------------------------------------------------------------------------

    async def _announce(self, holds: list[Hold], pools: Iterable[BedPool]) -> None:
        """New holds: each side's live event, the pools' new counts, the facilities' on-call e-mail."""
        for hold in holds:
            publish_hold(self.channels, hold, "requested")
        for pool in pools:
            await publish_pool_views(self.db, self.channels, pool)
        await notify_new_holds(self.db, self.settings, holds)

    async def create_hold(
        self, new: NewHold, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> Hold:
        requester = await requester_for(self.db, self.user)
        window = response_window(self.settings)
        verified = None
        if new.case_code is not None and new.case_code.strip():
            verified = await open_case_code(self.db, new.case_code, requester.organisation_id)
        change = await hold_ops.create_hold(
            self.db,
            requester,
            new,
            response_window=window,
            limits=hold_limits(self.settings),
            verified_case_code=verified,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        if not change.replayed:
            await self._announce([change.hold], [change.pool] if change.pool else [])
        return change.hold

    async def _act(self, hold_id: str, step: Callable[..., Awaitable[HoldChange]], *args: object) -> Hold:
        """One of the four steps a party takes on a hold it can see, told to both sides."""
        await self.visible_hold(hold_id)
        change = await step(self.db, self.viewer, hold_id, *args)
        await publish_change(self.db, self.channels, change)
        return change.hold

    async def confirm(self, hold_id: str) -> Hold:
        return await self._act(hold_id, hold_ops.confirm)

    async def decline(self, hold_id: str, reason: str) -> Hold:
        refuse_personal_data("reason", reason)
        return await self._act(hold_id, hold_ops.decline, reason)

    async def release(self, hold_id: str) -> Hold:
        return await self._act(hold_id, hold_ops.release)

    async def claim(self, hold_id: str, beds_used: int) -> Hold:
        return await self._act(hold_id, hold_ops.claim, beds_used)

    # --- bulk steps: a shelter against one requester, a coordinator's incident button --------------------

    async def _publish_bulk(self, result: BulkResult) -> BulkResult:
        for change in result.changes:
            await publish_change(self.db, self.channels, change)
        return result

    async def decline_requester(self, requester_user_id: str, reason: str) -> BulkResult:
        refuse_personal_data("reason", reason)
        return await self._publish_bulk(
            await hold_ops.decline_all_of_requester(self.db, self.viewer, requester_user_id, reason)
        )

    async def release_all(
        self, *, user_id: str | None = None, organisation_id: str | None = None, reason: str = ""
    ) -> BulkResult:
        refuse_personal_data("reason", reason)
        if user_id is not None and await self.db.get(User, user_id) is None:
            raise NotFound("not_found", "No such user.")
        if organisation_id is not None and await self.db.get(Organisation, organisation_id) is None:
            raise NotFound("not_found", "No such organisation.")
        return await self._publish_bulk(
            await hold_ops.release_all_of(
                self.db, self.viewer, user_id=user_id, organisation_id=organisation_id, reason=reason
            )
        )

    async def incidents(self) -> list[HoldIncident]:
        return await hold_ops.incidents(self.db)

    async def names(self, incidents: Iterable[HoldIncident]) -> dict[str, str]:
        """Who is who in the record of bulk steps: {user or organisation id: its name}."""
        names: dict[str, str] = {}
        for incident in incidents:
            for user_id in (incident.actor_user_id, incident.target_user_id):
                if user_id and user_id not in names and (user := await self.db.get(User, user_id)) is not None:
                    names[user_id] = f"{user.display_name} ({user.username})"
            for org_id in (incident.target_org_id,):
                if org_id and org_id not in names and (org := await self.db.get(Organisation, org_id)) is not None:
                    names[org_id] = org.name
        return names

    async def holders(self) -> tuple[list[User], list[Organisation]]:
        """Whose holds the incident page may release: the users and organisations with an active hold."""
        active = select(Hold.requested_by, Hold.requested_by_org).where(Hold.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined]
        rows = (await self.db.execute(active)).all()
        user_ids, org_ids = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
        users = [u for u in [await self.db.get(User, i) for i in user_ids] if u is not None]
        orgs = [o for o in [await self.db.get(Organisation, i) for i in org_ids] if o is not None]
        return users, orgs

    # --- standing agreements -------------------------------------------------------------------------------

    async def agreements(self) -> list[Agreement]:
        return await agreement_ops.agreements_for(self.db, self.viewer)

    async def own_pools(self) -> list[tuple[BedPool, Facility]]:
        return await agreement_ops.own_pools(self.db, self.viewer)

    async def create_agreement(
        self, *, pool_id: str, beds: int, partner_org_id: str, scope: str, note: str
    ) -> Agreement:
        refuse_personal_data("note", note)
        partner = await self.db.get(Organisation, partner_org_id) if partner_org_id else None
        agreement = await agreement_ops.create_agreement(
            self.db,
            self.viewer,
            pool_id=pool_id,
            beds=beds,
            partner_org_id=partner_org_id,
            partner_exists=partner is not None,
            scope=scope,
            note=note,
        )
        detail = {"agreement": agreement.id, "pool": pool_id, "partner": partner_org_id, "beds": beds, "scope": scope}
        await record_network_event(self.db, "agreement_created", self.user.id, detail)  # the hash-chained audit
        await self._kept_moved(agreement)
        return agreement

    async def partners(self) -> list[Organisation]:
        """The organisations an agreement may name as its partner: every other organisation of the network."""
        rows = await self.db.execute(select(Organisation).order_by(Organisation.name))  # type: ignore[arg-type]
        return [o for o in rows.scalars() if o.id != self.user.organisation_id]

    async def end_agreement(self, agreement_id: str) -> Agreement:
        agreement = await agreement_ops.end_agreement(self.db, self.viewer, agreement_id)
        await record_network_event(self.db, "agreement_ended", self.user.id, {"agreement": agreement_id})
        await self._kept_moved(agreement)
        return agreement

    async def set_kept(self, agreement_id: str, beds: int) -> Agreement:
        """The shelter changes how many beds the agreement keeps (beds/agreements.py `set_kept`)."""
        agreement = await agreement_ops.set_kept(self.db, self.viewer, agreement_id, beds)
        detail = {"agreement": agreement_id, "beds": beds}
        await record_network_event(self.db, "agreement_kept_set", self.user.id, detail)
        await self._kept_moved(agreement)
        return agreement

    async def _kept_moved(self, agreement: Agreement) -> None:
        """Kept beds moved the pool's free beds: every board hears of it."""
        pool = await self.db.get(BedPool, agreement.pool_id, populate_existing=True)
        if pool is not None:
            await publish_pool_views(self.db, self.channels, pool)


def provide_hold_service(
    request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, settings: Settings
) -> HoldService:
    return HoldService(db, channels, settings, request.user, request.app.state.registry.grant_sources)


# The controllers of holds declare this: their handlers take `service: HoldService`.
SERVICE = {"service": Provide(provide_hold_service, sync_to_thread=False)}
