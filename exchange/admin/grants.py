"""Role grants that wait for a second person: one network admin alone cannot give an account power over money
or over where people sleep.

A role given by an admin goes into a pending `RoleGrant` row, not into `User.roles` (which is all that guards,
visibility, address grants, tokens and sockets ever read). Someone else approves it: another network admin, or
for a role of organisation X an active holder of that role in X (shelter staff for shelter staff...), or for
the fund's roles (case worker, lead worker, fund approver) a fund approver of another organisation than the
requesting admin's, as for a rule set (ledger/rulesets.py). The requester and the account itself never
approve. The approval adds the roles and its audit event in one transaction.

One grant applies at once: the auditor role to an account of the admin's own organisation (an auditor reads
the fund's books, moves nothing and sees no address). Taking a role away always applies at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Forbidden, NotFound
from beds.timeutil import utcnow
from exchange.accounts.models import GrantState, Role, RoleGrant, User
from ledger.network_audit import record_network_event

# The fund's powers: request money (a case worker, at once on the fast path as a lead worker) or approve it.
FUND_ROLES = frozenset({Role.CASE_WORKER.value, Role.FUND_APPROVER.value})
LEAD_WORKER = "lead_worker"
# Those who may be a grant's second person: a network admin, or a holder of the role in the account's
# organisation, or a fund approver (case workers approve nothing). The grant routes' guard.
DECIDERS = (
    Role.NETWORK_ADMIN,
    Role.FUND_APPROVER,
    Role.SHELTER_STAFF,
    Role.POLICE_PLANNER,
    Role.COORDINATOR,
    Role.AUDITOR,
)


def waits(role: str, organisation_id: str, admin_org_id: str) -> bool:
    """Whether giving this role needs a second person."""
    return not (role == Role.AUDITOR.value and organisation_id == admin_org_id)


@dataclass(frozen=True)
class RoleChange:
    """A requested set of roles split into what applies now and what waits for a second person."""

    now: list[str]
    lead_worker_now: bool
    pending: list[str]
    pending_lead_worker: bool

    @property
    def waits(self) -> bool:
        return bool(self.pending) or self.pending_lead_worker


def split(
    wanted: Iterable[str],
    lead_wanted: bool,
    *,
    current: Iterable[str] = (),
    lead_current: bool = False,
    organisation_id: str,
    admin_org_id: str,
) -> RoleChange:
    """Removing a power applies at once; adding one waits (except `waits` says otherwise)."""
    held = set(current)
    wanted = list(wanted)
    now = [r for r in wanted if r in held or not waits(r, organisation_id, admin_org_id)]
    pending = [r for r in wanted if r not in now]
    return RoleChange(now, lead_wanted and lead_current, pending, lead_wanted and not lead_current)


def refusal(grant: RoleGrant, approver: User, sponsors: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """Why this person may not decide this grant (an error code and sentence), or None if they may.

    `sponsors`: the admins who asked for the approver's own approved grants (`sponsors_of`). An account whose
    roles an admin asked for is not a second person for that admin: otherwise one genuine approval of an
    account the admin controls would let the admin approve everything it asks for afterwards."""
    if approver.id == grant.requested_by_user_id:
        return "own_grant_request", "A second person approves a role grant, not the admin who asked for it."
    if approver.id == grant.user_id:
        return "own_grant", "Nobody approves a role grant to their own account."
    if grant.requested_by_user_id in sponsors:
        return (
            "not_independent",
            "You hold roles this admin asked for, so you cannot approve this admin's requests: another person does.",
        )
    if not approver.active:
        return "not_eligible", "A disabled account decides nothing."
    if approver.has(Role.NETWORK_ADMIN):
        return None
    for power in [*grant.roles, *([LEAD_WORKER] if grant.lead_worker else [])]:
        if power == Role.NETWORK_ADMIN.value:
            return "not_eligible", "Only another network admin approves the network admin role."
        if power in FUND_ROLES or power == LEAD_WORKER:
            if not approver.has(Role.FUND_APPROVER) or approver.organisation_id == grant.requested_by_org_id:
                return (
                    "not_eligible",
                    "A fund role is approved by another network admin or a fund approver of another organisation "
                    "than the requesting admin's.",
                )
        elif power not in approver.roles or approver.organisation_id != grant.organisation_id:
            return (
                "not_eligible",
                "This role is approved by another network admin or by someone of the account's organisation "
                "who holds it.",
            )
    return None


async def sponsors_of(session: AsyncSession, user_id: str) -> frozenset[str]:
    """The admins who asked for a user's approved role grants."""
    rows = await session.execute(
        select(RoleGrant.requested_by_user_id).where(
            RoleGrant.user_id == user_id,  # type: ignore[arg-type]
            RoleGrant.state == GrantState.APPROVED.value,  # type: ignore[arg-type]
        )
    )
    return frozenset(rows.scalars().all())


async def request_grant(
    session: AsyncSession, user: User, change: RoleChange, *, requested_by: User, now: datetime | None = None
) -> RoleGrant | None:
    """Store what waits (replacing any older pending grant of the user); flushed, not committed: the caller's
    audit event commits both. None when nothing waits; the waiting grant itself when it asks the same (the
    admin saved the user's roles again), so nobody's approval is thrown away."""
    of_user = select(RoleGrant).where(
        RoleGrant.user_id == user.id,  # type: ignore[arg-type]
        RoleGrant.state == GrantState.PENDING.value,  # type: ignore[arg-type]
    )
    waiting = (await session.execute(of_user)).scalars().first()
    if (
        waiting is not None
        and set(waiting.roles) == set(change.pending)
        and waiting.lead_worker == change.pending_lead_worker
        and change.waits
    ):
        return waiting
    await session.execute(
        update(RoleGrant)
        .where(RoleGrant.user_id == user.id, RoleGrant.state == GrantState.PENDING.value)  # type: ignore[arg-type]
        .values(state=GrantState.SUPERSEDED.value, decided_at=now or utcnow())
    )
    if not change.waits:
        return None
    grant = RoleGrant(
        user_id=user.id,
        organisation_id=user.organisation_id,
        roles=change.pending,
        lead_worker=change.pending_lead_worker,
        requested_by_user_id=requested_by.id,
        requested_by_org_id=requested_by.organisation_id,
        requested_at=now or utcnow(),
    )
    session.add(grant)
    await session.flush()
    return grant


async def pending_grants(session: AsyncSession) -> list[RoleGrant]:
    """Every grant waiting for its second person, oldest first."""
    rows = await session.execute(
        select(RoleGrant)
        .where(RoleGrant.state == GrantState.PENDING.value)  # type: ignore[arg-type]
        .order_by(RoleGrant.requested_at)  # type: ignore[arg-type]
    )
    return list(rows.scalars().all())


async def _grant(session: AsyncSession, grant_id: str) -> RoleGrant:
    grant = await session.get(RoleGrant, grant_id, populate_existing=True)
    if grant is None:
        raise NotFound("grant_not_found", "No such role grant.")
    return grant


async def decide(
    session: AsyncSession, grant_id: str, approver: User, *, approve: bool, now: datetime | None = None
) -> RoleGrant:
    """Approve (the roles are added to the user) or refuse a pending grant, with its audit event, in one
    transaction. The same person deciding the same way again gets the grant back (a repeated click acts once);
    anything else on a decided grant is 409 `grant_decided`."""
    now = now or utcnow()
    state = GrantState.APPROVED if approve else GrantState.REFUSED
    try:
        grant = await _grant(session, grant_id)
        reason = refusal(grant, approver, await sponsors_of(session, approver.id))
        if reason is not None:
            raise Forbidden(*reason)
        if grant.state != GrantState.PENDING.value:
            if grant.state == state.value and grant.decided_by_user_id == approver.id:
                return grant
            raise Conflict("grant_decided", "This role grant was decided or replaced already.", state=grant.state)
        # Conditional: of two people deciding at once, one wins and the other is told it was decided.
        won = await session.execute(
            update(RoleGrant)
            .where(RoleGrant.id == grant.id, RoleGrant.state == GrantState.PENDING.value)  # type: ignore[arg-type]
            .values(state=state.value, decided_by_user_id=approver.id, decided_at=now)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("grant_decided", "This role grant was decided or replaced already.")
        if approve:
            locked = select(User).where(User.id == grant.user_id).with_for_update()  # type: ignore[arg-type]
            user = (await session.execute(locked.execution_options(populate_existing=True))).scalar_one()
            user.roles = [*user.roles, *(r for r in grant.roles if r not in user.roles)]
            user.lead_worker = user.lead_worker or grant.lead_worker
            session.add(user)
        await session.flush()
        detail = {
            "grant": grant.id,
            "user": grant.user_id,
            "roles": list(grant.roles),
            "lead_worker": grant.lead_worker,
            "requested_by": grant.requested_by_user_id,
        }
        # Commits the decision, the roles and the event together.
        await record_network_event(
            session, "role_grant_approved" if approve else "role_grant_refused", approver.id, detail, at=now
        )
    except Exception:
        await session.rollback()
        raise
    return await _grant(session, grant_id)
