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
from sqlalchemy.ext.asyncio import AsyncSession

from beds import agreements as agreement_ops
from beds import holds as hold_ops
from beds import operations as op_ops
from beds.holds import HoldChange, NewHold, Requester, requester_kind
from beds.holds_models import Agreement, AgreementScope, Hold, Operation, OperationNeed
from beds.models import BedPool, Facility
from beds.operations import NewOperation
from beds.planner import Plan, PlanOptions
from beds.timeutil import utcnow
from beds.visibility import Viewer
from exchange.accounts.models import Organisation, User
from exchange.board.addresses import reveal_address, viewer_with_grants
from exchange.holds.live import publish_change, publish_hold
from exchange.holds.mail import notify_new_holds
from exchange.live.events import publish_pool
from exchange.registry import GrantSource
from exchange.settings import Settings
from exchange.web.auth import viewer_for


def response_window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.response_window_minutes)


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
                publish_change(self.channels, change)

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
        publish_change(self.channels, change)
        return change.hold

    async def requests(self) -> list[Hold]:
        """The holds asked of the user's facilities (the shelter's requests page)."""
        return await self._fresh(lambda: hold_ops.holds_for_facilities(self.db, self.user.organisation_id))

    async def operations(self) -> list[tuple[Operation, list[OperationNeed]]]:
        operations = await op_ops.operations_for(self.db, self.viewer)
        return [(o, await op_ops.needs_of(self.db, o.id)) for o in operations]

    async def operation(self, operation_id: str) -> OperationDetail:
        operation = await op_ops.get_operation(self.db, self.viewer, operation_id)
        holds = await self._fresh(lambda: hold_ops.holds_of_operation(self.db, operation_id))
        return OperationDetail(operation, await op_ops.needs_of(self.db, operation_id), holds)

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

    async def create_operation(self, new: NewOperation) -> tuple[Operation, list[OperationNeed]]:
        return await op_ops.create_operation(self.db, self.viewer, new)

    async def plan(self, operation_id: str, options: PlanOptions) -> tuple[Operation, Plan]:
        return await op_ops.plan_operation(self.db, self.viewer, operation_id, options)

    async def allocate(
        self,
        operation_id: str,
        options: PlanOptions,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> list[Hold]:
        """Place the operation's holds, all or none, for the police service that runs it."""
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
        )
        if not result.replayed:
            await self._announce(result.holds, result.pools)
        return result.holds

    # --- holds ---------------------------------------------------------------------------------------------

    async def _announce(self, holds: list[Hold], pools: Iterable[BedPool]) -> None:
        """New holds: each side's live event, the pools' new counts, the facilities' on-call e-mail."""
        for hold in holds:
            publish_hold(self.channels, hold, "requested")
        for pool in pools:
            publish_pool(self.channels, pool)
        await notify_new_holds(self.db, self.settings, holds)

    async def create_hold(
        self, new: NewHold, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> Hold:
        requester = await requester_for(self.db, self.user)
        window = response_window(self.settings)
        change = await hold_ops.create_hold(
            self.db, requester, new, response_window=window, idempotency_key=idempotency_key, request_hash=request_hash
        )
        if not change.replayed:
            await self._announce([change.hold], [change.pool] if change.pool else [])
        return change.hold

    async def _act(self, hold_id: str, step: Callable[..., Awaitable[HoldChange]], *args: object) -> Hold:
        """One of the four steps a party takes on a hold it can see, told to both sides."""
        await self.visible_hold(hold_id)
        change = await step(self.db, self.viewer, hold_id, *args)
        publish_change(self.channels, change)
        return change.hold

    async def confirm(self, hold_id: str) -> Hold:
        return await self._act(hold_id, hold_ops.confirm)

    async def decline(self, hold_id: str, reason: str) -> Hold:
        return await self._act(hold_id, hold_ops.decline, reason)

    async def release(self, hold_id: str) -> Hold:
        return await self._act(hold_id, hold_ops.release)

    async def claim(self, hold_id: str, beds_used: int) -> Hold:
        return await self._act(hold_id, hold_ops.claim, beds_used)

    # --- standing agreements -------------------------------------------------------------------------------

    async def agreements(self) -> list[Agreement]:
        return await agreement_ops.agreements_for(self.db, self.viewer)

    async def own_pools(self) -> list[tuple[BedPool, Facility]]:
        return await agreement_ops.own_pools(self.db, self.viewer)

    async def create_agreement(self, *, pool_id: str, beds: int, scope: str, note: str) -> Agreement:
        return await agreement_ops.create_agreement(
            self.db, self.viewer, pool_id=pool_id, beds=beds, scope=scope, note=note
        )

    async def end_agreement(self, agreement_id: str) -> Agreement:
        return await agreement_ops.end_agreement(self.db, self.viewer, agreement_id)


def provide_hold_service(
    request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, settings: Settings
) -> HoldService:
    return HoldService(db, channels, settings, request.user, request.app.state.registry.grant_sources)


# The controllers of holds declare this: their handlers take `service: HoldService`.
SERVICE = {"service": Provide(provide_hold_service, sync_to_thread=False)}
