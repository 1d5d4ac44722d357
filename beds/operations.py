"""Police operations: recording one, planning holds that cover its needs (beds/planner.py), and placing them,
all or none by default, or the part of the plan that exists ("place what is available and keep looking")."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Invalid, NotFound
from beds.fit import valid_language
from beds.holds import MAX_HOLD_DAYS, HoldLimits, NewHold, Requester, check_limits, detach_and_rollback, place_hold
from beds.holds_models import (
    ACTIVE_STATUSES,
    Agreement,
    AgreementScope,
    Allocation,
    Hold,
    HoldStatus,
    Operation,
    OperationNeed,
)
from beds.models import PROVINCES, BedPool, Facility, Profile
from beds.places import same_city
from beds.planner import Candidate, Need, Plan, PlanOptions, propose, trim
from beds.timeutil import utcnow
from beds.visibility import Viewer

# The most beds one operation may ask for, all needs together, unless the caller says otherwise (the shell
# passes its OPERATION_NEED_MAX_BEDS setting): a planner cannot ask the network for absurd counts.
MAX_BEDS = 200
NOTES_MAX = 2000
# An operation's holds outlast its window by this much, so people freed late still have a bed.
HOLD_GRACE = timedelta(hours=12)


def may_see_operation(viewer: Viewer, operation: Operation) -> bool:
    return viewer.is_coordinator or (
        viewer.organisation_id == operation.organisation_id and viewer.is_("police_planner")
    )


@dataclass(frozen=True)
class NewOperation:
    """What a planner records: a code name, where, when, and how many beds of each profile."""

    code_name: str
    province: str
    window_start: datetime
    window_end: datetime
    needs: list[Need]
    city: str = ""
    notes: str = ""
    # At most this many of its people in one facility; None is no limit.
    max_per_facility: int | None = None


async def _operation_replay(
    session: AsyncSession, user_id: str, key: str, request_hash: str | None
) -> tuple[Operation, list[OperationNeed]] | None:
    """The operation this user's Idempotency-Key already made, if any; 422 when the key came with another body."""
    existing = (
        await session.execute(
            select(Operation).where(Operation.idempotency_user_id == user_id, Operation.idempotency_key == key)
        )
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.request_hash != request_hash:
        await detach_and_rollback(session, existing)
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used for another request.")
    needs = await needs_of(session, existing.id)
    await detach_and_rollback(session, existing, *needs)
    return existing, needs


async def create_operation(
    session: AsyncSession,
    viewer: Viewer,
    new: NewOperation,
    *,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    max_beds: int = MAX_BEDS,
) -> tuple[Operation, list[OperationNeed]]:
    """Record an operation. With an Idempotency-Key the same request makes it once (HACKING.md).

    Errors name what is wrong by code, so a form can put its message beside the field: `invalid_code_name`,
    `invalid_province`, `invalid_window` (with `problem`: `order` or `over`), `invalid_needs`, `invalid_profile`,
    `too_many_beds` (with `max_beds`), `invalid_language` (with `profile`), `invalid_max_per_facility`,
    `group_over_limit` (with `profile`: a group kept together is larger than the limit per facility)."""
    if idempotency_key and (replay := await _operation_replay(session, viewer.user_id, idempotency_key, request_hash)):
        return replay
    code_name, province, needs = new.code_name.strip(), new.province, new.needs
    window_start, window_end = new.window_start, new.window_end
    if not code_name or len(code_name) > 80:
        raise Invalid("invalid_code_name", "The code name must be 1 to 80 characters.")
    if province not in PROVINCES:
        raise Invalid("invalid_province", f"Unknown province code {province!r}.")
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise Invalid("invalid_window", "window_start and window_end need a UTC offset.")
    if window_end <= window_start:
        raise Invalid("invalid_window", "window_end must be after window_start.", problem="order")
    if window_end <= utcnow():
        raise Invalid("invalid_window", "The operation's window is already over.", problem="over")
    if not needs:
        raise Invalid("invalid_needs", "An operation needs at least one {profile, count}.")
    seen: set[str] = set()
    for need in needs:
        if need.profile not in {p.value for p in Profile}:
            raise Invalid("invalid_profile", f"Unknown bed profile {need.profile!r}.")
        if need.profile in seen:
            raise Invalid("invalid_needs", f"Profile {need.profile!r} is listed twice.")
        seen.add(need.profile)
        if need.count <= 0:
            raise Invalid("invalid_needs", "Each need's count must be at least 1.")
        if need.language and not valid_language(need.language):
            raise Invalid(
                "invalid_language",
                f"Language {need.language!r} is not a language code (two or three lowercase letters, e.g. fr).",
                profile=need.profile,
            )
    cap = new.max_per_facility
    if cap is not None and not 1 <= cap <= max_beds:
        raise Invalid(
            "invalid_max_per_facility", f"The limit of people per facility must be a whole number from 1 to {max_beds}."
        )
    for need in needs:
        if cap is not None and need.keep_together and need.count > cap:
            raise Invalid(
                "group_over_limit",
                f"The {need.profile} group of {need.count} is kept together, but at most {cap} may be in one "
                "facility: raise the limit or do not keep the group together.",
                profile=need.profile,
            )
    total = sum(need.count for need in needs)
    if total > max_beds:
        raise Invalid(
            "too_many_beds",
            f"An operation may ask for at most {max_beds} beds in all; these needs add up to {total}.",
            max_beds=max_beds,
            requested_beds=total,
        )
    operation = Operation(
        organisation_id=viewer.organisation_id,
        created_by=viewer.user_id,
        code_name=code_name,
        province=province,
        city=new.city.strip(),
        window_start=window_start,
        window_end=window_end,
        notes=new.notes.strip()[:NOTES_MAX],
        max_per_facility=new.max_per_facility,
        idempotency_user_id=viewer.user_id if idempotency_key else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key else None,
    )
    try:
        session.add(operation)
        await session.flush()
        rows = [
            OperationNeed(
                operation_id=operation.id,
                profile=n.profile,
                count=n.count,
                language=n.language,
                keep_together=n.keep_together,
                prefer_culturally_specific=n.prefer_culturally_specific,
            )
            for n in needs
        ]
        session.add_all(rows)
        await session.commit()
    except IntegrityError:
        # A concurrent twin with the same key won the unique constraint: answer as it did.
        await session.rollback()
        if idempotency_key and (
            replay := await _operation_replay(session, viewer.user_id, idempotency_key, request_hash)
        ):
            return replay
        raise
    return operation, rows


async def get_operation(session: AsyncSession, viewer: Viewer, operation_id: str) -> Operation:
    """The operation, or NotFound for anyone outside its service and the coordinators."""
    operation = await session.get(Operation, operation_id)
    if operation is None or not may_see_operation(viewer, operation):
        raise NotFound("not_found", "No such operation.")
    return operation


async def needs_of(session: AsyncSession, operation_id: str) -> list[OperationNeed]:
    return list(
        (
            await session.execute(
                select(OperationNeed).where(OperationNeed.operation_id == operation_id).order_by(OperationNeed.id)
            )
        ).scalars()
    )


async def needs_by_operation(session: AsyncSession, operation_ids: list[str]) -> dict[str, list[OperationNeed]]:
    """`needs_of` for a list of operations in one query (the operations list)."""
    found: dict[str, list[OperationNeed]] = {operation_id: [] for operation_id in operation_ids}
    if operation_ids:
        rows = await session.execute(
            select(OperationNeed)
            .where(OperationNeed.operation_id.in_(operation_ids))  # type: ignore[attr-defined]
            .order_by(OperationNeed.id)
        )
        for need in rows.scalars():
            found[need.operation_id].append(need)
    return found


async def operations_for(session: AsyncSession, viewer: Viewer) -> list[Operation]:
    """The operations the viewer may see, latest window first."""
    stmt = select(Operation).order_by(Operation.window_start.desc())  # type: ignore[attr-defined]
    if not viewer.is_coordinator:
        stmt = stmt.where(Operation.organisation_id == viewer.organisation_id)
    return [o for o in (await session.execute(stmt)).scalars() if may_see_operation(viewer, o)]


async def holds_by_operation(session: AsyncSession, operation_ids: list[str]) -> dict[str, list[Hold]]:
    """Every hold of these operations, by operation: what the operations list's coverage is counted from."""
    out: dict[str, list[Hold]] = {i: [] for i in operation_ids}
    if operation_ids:
        rows = await session.execute(select(Hold).where(Hold.operation_id.in_(operation_ids)))  # type: ignore[union-attr]
        for hold in rows.scalars():
            out[hold.operation_id or ""].append(hold)
    return out


async def remaining_needs(session: AsyncSession, operation_id: str) -> list[Need]:
    """Needs minus what the operation already holds or has claimed."""
    needs = await needs_of(session, operation_id)
    covered: dict[str, int] = {}
    rows = await session.execute(
        select(Hold.need_profile, Hold.beds).where(
            Hold.operation_id == operation_id,
            Hold.status.in_((*ACTIVE_STATUSES, HoldStatus.CLAIMED.value)),  # type: ignore[attr-defined]
        )
    )
    for profile, beds in rows.all():
        if profile:
            covered[profile] = covered.get(profile, 0) + beds
    out = []
    for need in needs:
        left = need.count - covered.get(need.profile, 0)
        if left > 0:
            out.append(Need(need.profile, left, need.language, need.keep_together, need.prefer_culturally_specific))
    return out


async def people_by_facility(session: AsyncSession, operation_id: str) -> dict[str, int]:
    """Beds the operation holds or has claimed, by facility: what its limit per facility counts."""
    rows = await session.execute(
        select(Hold.facility_id, func.sum(Hold.beds))
        .where(
            Hold.operation_id == operation_id,
            Hold.status.in_((*ACTIVE_STATUSES, HoldStatus.CLAIMED.value)),  # type: ignore[attr-defined]
        )
        .group_by(Hold.facility_id)
    )
    return {facility_id: int(beds or 0) for facility_id, beds in rows.all()}


def with_operation_limits(operation: Operation, options: PlanOptions) -> PlanOptions:
    """The plan's options under the operation's own limit per facility: a plan request may ask for a stricter
    one, never lift it."""
    limits = [n for n in (operation.max_per_facility, options.max_per_facility) if n is not None]
    return replace(options, max_per_facility=min(limits) if limits else None)


async def _candidates(
    session: AsyncSession, operation: Operation, options: PlanOptions, *, lock: bool
) -> list[Candidate]:
    stmt = (
        select(BedPool, Facility)
        .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
        .where(Facility.active.is_(True), Facility.accepts_trafficking.is_(True))  # type: ignore[attr-defined]
    )
    if not options.allow_other_provinces:
        stmt = stmt.where(Facility.province == operation.province)
    rows = (await session.execute(stmt)).all()
    candidates = [Candidate(pool, facility) for pool, facility in rows]
    if operation.city and not options.allow_other_provinces and not options.allow_other_cities:
        # Matched in Python, before any lock, so "Montreal" finds Montréal and only the city's pools are locked.
        candidates = [c for c in candidates if same_city(c.facility.city, operation.city)]
    if lock and candidates:
        # Lock every candidate pool in one fixed order (by id) before reading its counts: two
        # allocations over overlapping pools queue up instead of deadlocking. SQLite's BEGIN
        # IMMEDIATE already serialises writers, and FOR UPDATE is a no-op there.
        ids = sorted(c.pool.id for c in candidates)
        locked = (
            await session.execute(
                select(BedPool)
                .where(BedPool.id.in_(ids))  # type: ignore[attr-defined]
                .order_by(BedPool.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalars()
        by_id = {p.id: p for p in locked}
        candidates = [Candidate(by_id[c.pool.id], c.facility) for c in candidates if c.pool.id in by_id]
    kept = await _kept_for(session, operation.organisation_id, [c.pool.id for c in candidates])
    candidates = [replace(c, kept_for_us=kept.get(c.pool.id, 0)) for c in candidates]
    return [c for c in candidates if c.available > 0]


async def _kept_for(session: AsyncSession, organisation_id: str, pool_ids: list[str]) -> dict[str, int]:
    """{pool id: beds its active agreements keep for this organisation's police holds and that are unused}."""
    if not pool_ids:
        return {}
    rows = (
        await session.execute(
            select(Agreement.pool_id, Agreement.beds - Agreement.beds_in_use - Agreement.beds_lent).where(
                Agreement.partner_org_id == organisation_id,
                Agreement.active.is_(True),  # type: ignore[attr-defined]
                Agreement.scope.in_((AgreementScope.POLICE.value, AgreementScope.ALL.value)),  # type: ignore[attr-defined]
                Agreement.pool_id.in_(pool_ids),  # type: ignore[attr-defined]
            )
        )
    ).all()
    return {pool_id: max(0, int(unused)) for pool_id, unused in rows}


async def plan_operation(
    session: AsyncSession, viewer: Viewer, operation_id: str, options: PlanOptions
) -> tuple[Operation, Plan]:
    operation = await get_operation(session, viewer, operation_id)
    options = with_operation_limits(operation, options)
    needs = await remaining_needs(session, operation_id)
    candidates = await _candidates(session, operation, options, lock=False)
    already = await people_by_facility(session, operation_id)
    plan = propose(
        needs, candidates, province=operation.province, city=operation.city, options=options, already=already
    )
    await detach_and_rollback(session, operation, *(c.pool for c in candidates), *(c.facility for c in candidates))
    return operation, plan


@dataclass
class AllocationResult:
    operation: Operation
    holds: list[Hold]
    pools: list[BedPool]
    replayed: bool = False
    # A partial allocation: what it could not place, per need, and whether the service's hold limit (not the
    # network's free beds) is what stopped it.
    missing: list[Need] = field(default_factory=list)
    limited: bool = False


def hold_expiry(operation: Operation, now: datetime) -> datetime:
    """The window's end plus a grace period, within [now + 1 hour, now + MAX_HOLD_DAYS)."""
    wanted = operation.window_end + HOLD_GRACE
    return max(now + timedelta(hours=1), min(wanted, now + timedelta(days=MAX_HOLD_DAYS) - timedelta(minutes=1)))


async def _requested_by_organisation(session: AsyncSession, organisation_id: str, now: datetime) -> int:
    """Beds the organisation has requested and not yet had answered: what its hold limit counts."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Hold.beds), 0)).where(
            Hold.requested_by_org == organisation_id,
            Hold.status == HoldStatus.REQUESTED.value,
            Hold.expires_at > now,
        )
    )
    return int(total or 0)


async def allocate(
    session: AsyncSession,
    viewer: Viewer,
    requester: Requester,
    operation_id: str,
    options: PlanOptions,
    *,
    response_window: timedelta = timedelta(minutes=30),
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    limits: HoldLimits | None = None,
    partial: bool = False,
) -> AllocationResult:
    """Place every proposed hold in one transaction, or none: 409 with what is missing.

    `partial`: place the part of the plan that exists and say what is still missing, in one transaction too;
    under `limits` it places no more than the service's limit leaves room for (a limit reached by a
    concurrent request between that reading and the placing still refuses the whole, with 409 `hold_limit`).
    `requester` is the operation's service, which holds the beds also when a coordinator places them for it.
    `limits`: an operation may request more beds than one person's limit, never more than its service's.
    """
    operation = await get_operation(session, viewer, operation_id)
    if idempotency_key:
        replay = await _allocation_replay(session, operation, viewer.user_id, idempotency_key, request_hash)
        if replay is not None:
            return replay
    now = utcnow()
    if operation.window_end + HOLD_GRACE <= now:
        raise Conflict("invalid_state", "This operation is over; nothing can be allocated for it.")
    limited = False
    options = with_operation_limits(operation, options)
    try:
        candidates = await _candidates(session, operation, options, lock=True)
        needs = await remaining_needs(session, operation_id)
        already = await people_by_facility(session, operation_id)
        plan = propose(
            needs, candidates, province=operation.province, city=operation.city, options=options, already=already
        )
        if plan.missing and not partial:
            await session.rollback()
            missing = [{"profile": m.profile, "count": m.count} for m in plan.missing]
            text = ", ".join(f"{m['count']} {m['profile']}" for m in missing)
            raise Conflict("insufficient_capacity", f"The network can no longer cover: {text}.", missing=missing)
        if partial and limits is not None:
            # Beds confirmed at once by an agreement do not count toward the limit; this counts every bed
            # of the plan, so it may place a little less than the limit allows, never more.
            room = limits.per_organisation - await _requested_by_organisation(session, requester.organisation_id, now)
            if sum(p.beds for p in plan.proposals) > room:
                plan, limited = trim(plan, room), True
        allocation = Allocation(
            operation_id=operation.id,
            created_by=viewer.user_id,
            idempotency_user_id=viewer.user_id if idempotency_key else None,
            idempotency_key=idempotency_key,
            request_hash=request_hash if idempotency_key else None,
        )
        session.add(allocation)
        await session.flush()
        expires_at = hold_expiry(operation, now)
        facility_of = {c.pool.id: c.facility for c in candidates}
        holds: list[Hold] = []
        pools: dict[str, BedPool] = {}
        for proposal in sorted(plan.proposals, key=lambda p: p.pool_id):
            new = NewHold(proposal.pool_id, proposal.beds, expires_at, operation_id=operation.id)
            hold, pool = await place_hold(
                session,
                requester,
                facility_of[proposal.pool_id],
                new,
                now=now,
                response_window=response_window,
                operation=operation,
                allocation_id=allocation.id,
                need_profile=proposal.need_profile,
            )
            pools[pool.id] = pool
            holds.append(hold)
        if limits is not None and holds:
            await check_limits(session, requester, HoldLimits(None, limits.per_organisation), now)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if idempotency_key:
            replay = await _allocation_replay(session, operation, viewer.user_id, idempotency_key, request_hash)
            if replay is not None:
                return replay
        raise
    return AllocationResult(operation, holds, list(pools.values()), missing=plan.missing, limited=limited)


async def _allocation_replay(
    session: AsyncSession, operation: Operation, user_id: str, key: str, request_hash: str | None
) -> AllocationResult | None:
    existing = (
        await session.execute(
            select(Allocation).where(Allocation.idempotency_user_id == user_id, Allocation.idempotency_key == key)
        )
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.request_hash != request_hash or existing.operation_id != operation.id:
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used for another request.")
    holds = list(
        (
            await session.execute(
                select(Hold)
                .where(Hold.allocation_id == existing.id)
                .order_by(Hold.pool_id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    await detach_and_rollback(session, operation, *holds)
    return AllocationResult(operation, holds, [], replayed=True)
