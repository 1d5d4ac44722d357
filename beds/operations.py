"""Police operations: recording one, proposing holds that cover its needs, and placing them all or none."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Invalid, NotFound
from beds.holds import Requester, detach_and_rollback, take_agreement_beds
from beds.holds_models import ACTIVE_STATUSES, Allocation, Hold, HoldStatus, Operation, OperationNeed
from beds.models import PROVINCES, BedPool, Facility, FacilityKind, Profile, SecurityLevel
from beds.pools import move_counts
from beds.timeutil import utcnow
from beds.visibility import Viewer

MAX_NEED = 500
# An operation's holds outlast its window by this much, so people freed late still have a bed.
HOLD_GRACE = timedelta(hours=12)


@dataclass(frozen=True)
class Need:
    profile: str
    count: int


def may_see_operation(viewer: Viewer, operation: Operation) -> bool:
    return viewer.is_coordinator or (
        viewer.organisation_id == operation.organisation_id and viewer.is_("police_planner")
    )


async def create_operation(
    session: AsyncSession,
    viewer: Viewer,
    *,
    code_name: str,
    province: str,
    window_start: datetime,
    window_end: datetime,
    needs: list[Need],
    city: str = "",
    notes: str = "",
) -> tuple[Operation, list[OperationNeed]]:
    code_name = code_name.strip()
    if not code_name or len(code_name) > 80:
        raise Invalid("invalid_code_name", "The code name must be 1 to 80 characters.")
    if province not in PROVINCES:
        raise Invalid("invalid_province", f"Unknown province code {province!r}.")
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise Invalid("invalid_window", "window_start and window_end need a UTC offset.")
    if window_end <= window_start:
        raise Invalid("invalid_window", "window_end must be after window_start.")
    if window_end <= utcnow():
        raise Invalid("invalid_window", "The operation's window is already over.")
    if not needs:
        raise Invalid("invalid_needs", "An operation needs at least one {profile, count}.")
    seen: set[str] = set()
    for need in needs:
        if need.profile not in {p.value for p in Profile}:
            raise Invalid("invalid_profile", f"Unknown bed profile {need.profile!r}.")
        if need.profile in seen:
            raise Invalid("invalid_needs", f"Profile {need.profile!r} is listed twice.")
        seen.add(need.profile)
        if not 0 < need.count <= MAX_NEED:
            raise Invalid("invalid_needs", f"Each need's count must be between 1 and {MAX_NEED}.")
    operation = Operation(
        organisation_id=viewer.organisation_id,
        created_by=viewer.user_id,
        code_name=code_name,
        province=province,
        city=city.strip(),
        window_start=window_start,
        window_end=window_end,
        notes=notes.strip()[:2000],
    )
    session.add(operation)
    await session.flush()
    rows = [OperationNeed(operation_id=operation.id, profile=n.profile, count=n.count) for n in needs]
    session.add_all(rows)
    await session.commit()
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


async def operations_for(session: AsyncSession, viewer: Viewer) -> list[Operation]:
    stmt = select(Operation).order_by(Operation.window_start.desc())  # type: ignore[attr-defined]
    if not viewer.is_coordinator:
        stmt = stmt.where(Operation.organisation_id == viewer.organisation_id)
    return list((await session.execute(stmt)).scalars())


# --- planning ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanOptions:
    allow_other_cities: bool = False
    allow_other_provinces: bool = False


@dataclass(frozen=True)
class Candidate:
    pool: BedPool
    facility: Facility


@dataclass
class Proposal:
    pool_id: str
    facility_id: str
    facility_name: str
    province: str
    city: str
    security_level: str
    kind: str
    pool_profile: str
    need_profile: str
    beds: int


@dataclass
class Plan:
    proposals: list[Proposal] = field(default_factory=list)
    missing: list[Need] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return not self.missing


def admits(facility: Facility, pool: BedPool, need_profile: str) -> bool:
    """Whether this pool may take a trafficking victim of this profile (DESIGN.md admission criteria)."""
    if not facility.active or not facility.accepts_trafficking or facility.asylum_seekers_only:
        return False
    if pool.profile not in (need_profile, Profile.ANY.value):
        return False
    genders = set(facility.gender_list)
    age_max = facility.age_max
    if need_profile == Profile.WOMEN.value:
        return "women" in genders and (age_max is None or age_max >= 18)
    if need_profile == Profile.MEN.value:
        return "men" in genders and (age_max is None or age_max >= 18)
    if need_profile == Profile.YOUTH.value:
        # 16 and 17-year-olds: the facility's age range must reach down to them.
        return facility.age_min <= 17 and (age_max is None or age_max >= 16)
    if need_profile == Profile.FAMILY.value:
        return pool.profile == Profile.FAMILY.value or facility.children_accompanied
    return True  # "any": whatever the pool takes


_SECURITY_RANK = {SecurityLevel.HIGH.value: 0, SecurityLevel.HEIGHTENED.value: 1, SecurityLevel.STANDARD.value: 2}


def _rank(candidate: Candidate, province: str, city: str, need_profile: str) -> tuple:
    f, p = candidate.facility, candidate.pool
    locality = 0 if (f.province == province and city and f.city == city) else 1 if f.province == province else 2
    return (
        locality,
        _SECURITY_RANK.get(str(f.security_level), 3),
        0 if f.kind == FacilityKind.TRAFFICKING_SHELTER.value else 1,
        0 if p.profile == need_profile else 1,  # keep "any" pools for needs nothing else covers
        -p.free,
        p.id,
    )


def in_reach(facility: Facility, province: str, city: str, options: PlanOptions) -> bool:
    if options.allow_other_provinces:
        return True
    if facility.province != province:
        return False
    return options.allow_other_cities or not city or facility.city == city


def propose(
    needs: Iterable[Need], candidates: list[Candidate], *, province: str, city: str, options: PlanOptions
) -> Plan:
    """Greedy cover of each need by the best-ranked pools in reach; pure, so it is tested on its own.

    Specific profiles are placed before "any" so a flexible pool is not used up by a need that
    had other options.
    """
    plan = Plan()
    left = {c.pool.id: c.pool.free for c in candidates}
    ordered = sorted(needs, key=lambda n: (n.profile == Profile.ANY.value, n.profile))
    for need in ordered:
        remaining = need.count
        pool_cands = [
            c
            for c in candidates
            if admits(c.facility, c.pool, need.profile) and in_reach(c.facility, province, city, options)
        ]
        pool_cands.sort(key=lambda c: _rank(c, province, city, need.profile))
        for cand in pool_cands:
            if remaining == 0:
                break
            take = min(left[cand.pool.id], remaining)
            if take <= 0:
                continue
            left[cand.pool.id] -= take
            remaining -= take
            f = cand.facility
            plan.proposals.append(
                Proposal(
                    pool_id=cand.pool.id,
                    facility_id=f.id,
                    facility_name=f.name,
                    province=f.province,
                    city=f.city,
                    security_level=str(f.security_level),
                    kind=str(f.kind),
                    pool_profile=str(cand.pool.profile),
                    need_profile=need.profile,
                    beds=take,
                )
            )
        if remaining:
            plan.missing.append(Need(need.profile, remaining))
    return plan


async def _remaining_needs(session: AsyncSession, operation_id: str) -> list[Need]:
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
            out.append(Need(need.profile, left))
    return out


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
        if operation.city and not options.allow_other_cities:
            stmt = stmt.where(Facility.city == operation.city)
    rows = (await session.execute(stmt)).all()
    candidates = [Candidate(pool, facility) for pool, facility in rows]
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
    return [c for c in candidates if c.pool.free > 0]


async def plan_operation(
    session: AsyncSession, viewer: Viewer, operation_id: str, options: PlanOptions
) -> tuple[Operation, Plan]:
    operation = await get_operation(session, viewer, operation_id)
    needs = await _remaining_needs(session, operation_id)
    candidates = await _candidates(session, operation, options, lock=False)
    plan = propose(needs, candidates, province=operation.province, city=operation.city, options=options)
    await detach_and_rollback(session, operation, *(c.pool for c in candidates), *(c.facility for c in candidates))
    return operation, plan


@dataclass
class AllocationResult:
    operation: Operation
    holds: list[Hold]
    pools: list[BedPool]
    replayed: bool = False


def hold_expiry(operation: Operation, now: datetime) -> datetime:
    """The window's end plus a grace period, within [now + 1 hour, now + 14 days]."""
    wanted = operation.window_end + HOLD_GRACE
    return max(now + timedelta(hours=1), min(wanted, now + timedelta(days=14) - timedelta(minutes=1)))


async def allocate(
    session: AsyncSession,
    viewer: Viewer,
    requester: Requester,
    operation_id: str,
    options: PlanOptions,
    *,
    response_window: timedelta = timedelta(minutes=30),
    idempotency_key: str | None = None,
    sha: str | None = None,
) -> AllocationResult:
    """Place every proposed hold in one transaction, or none: 409 with what is missing."""
    operation = await get_operation(session, viewer, operation_id)
    if idempotency_key:
        replay = await _allocation_replay(session, operation, viewer.user_id, idempotency_key, sha)
        if replay is not None:
            return replay
    now = utcnow()
    if operation.window_end + HOLD_GRACE <= now:
        raise Conflict("invalid_state", "This operation is over; nothing can be allocated for it.")
    try:
        candidates = await _candidates(session, operation, options, lock=True)
        needs = await _remaining_needs(session, operation_id)
        plan = propose(needs, candidates, province=operation.province, city=operation.city, options=options)
        if plan.missing:
            await session.rollback()
            missing = [{"profile": m.profile, "count": m.count} for m in plan.missing]
            text = ", ".join(f"{m['count']} {m['profile']}" for m in missing)
            raise Conflict("insufficient_capacity", f"The network can no longer cover: {text}.", missing=missing)
        allocation = Allocation(
            operation_id=operation.id,
            created_by=viewer.user_id,
            idempotency_user_id=viewer.user_id if idempotency_key else None,
            idempotency_key=idempotency_key,
            request_sha256=sha if idempotency_key else None,
        )
        session.add(allocation)
        await session.flush()
        expires_at = hold_expiry(operation, now)
        facility_of = {c.pool.id: c.facility for c in candidates}
        holds: list[Hold] = []
        pools: dict[str, BedPool] = {}
        for proposal in sorted(plan.proposals, key=lambda p: p.pool_id):
            pool = await move_counts(
                session, proposal.pool_id, held=proposal.beds, actor_user_id=viewer.user_id, reason="hold_requested"
            )
            pools[pool.id] = pool
            agreement_id = await take_agreement_beds(session, proposal.pool_id, proposal.beds, requester.kind)
            facility = facility_of[proposal.pool_id]
            hold = Hold(
                pool_id=proposal.pool_id,
                facility_id=facility.id,
                facility_org_id=facility.organisation_id,
                beds=proposal.beds,
                status=HoldStatus.CONFIRMED.value if agreement_id else HoldStatus.REQUESTED.value,
                expires_at=expires_at,
                operation_id=operation.id,
                allocation_id=allocation.id,
                need_profile=proposal.need_profile,
                service_name=requester.organisation_name,
                window_start=operation.window_start,
                window_end=operation.window_end,
                requested_by=viewer.user_id,
                requested_by_org=operation.organisation_id,
                agreement_id=agreement_id,
                auto_confirmed=agreement_id is not None,
                confirmed_at=now if agreement_id else None,
                respond_by=now + response_window,
                created_at=now,
                updated_at=now,
            )
            session.add(hold)
            holds.append(hold)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if idempotency_key:
            replay = await _allocation_replay(session, operation, viewer.user_id, idempotency_key, sha)
            if replay is not None:
                return replay
        raise
    return AllocationResult(operation, holds, list(pools.values()))


async def _allocation_replay(
    session: AsyncSession, operation: Operation, user_id: str, key: str, sha: str | None
) -> AllocationResult | None:
    existing = (
        await session.execute(
            select(Allocation).where(Allocation.idempotency_user_id == user_id, Allocation.idempotency_key == key)
        )
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.request_sha256 != sha or existing.operation_id != operation.id:
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


def requester_kind(roles: Iterable[str]) -> str:
    return "police" if "police_planner" in roles else "case_workers"
