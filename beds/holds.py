"""Holds: beds taken out of "free" for an operation or a case, then confirmed, declined, claimed, released
or expired. Each step is one transaction that moves the pool's counts through `move_counts` (so the
invariant and the history row come with it) and changes the hold with a conditional UPDATE on its
status, so two concurrent steps on the same hold cannot both win.

Lock order, everywhere: the hold row, then its pool (bulk allocation: pools sorted by id), then the
pool's agreement. Nothing locks them the other way round, so concurrent steps cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.agreements import return_agreement_beds, take_agreement_beds
from beds.errors import Conflict, Forbidden, Invalid, NotFound
from beds.holds_models import ACTIVE_STATUSES, AgreementScope, Hold, HoldStatus, Operation
from beds.models import BedPool, Facility
from beds.pools import move_counts
from beds.timeutil import utcnow
from beds.visibility import Viewer

MAX_HOLD_DAYS = 14
MAX_HOLD_BEDS = 200
DECLINE_REASON_MAX = 500
CASE_CODE_MAX = 40


@dataclass(frozen=True)
class Requester:
    """Who asks for beds: the user, the organisation that will hold them, and what kind of holder it is."""

    user_id: str
    organisation_id: str
    organisation_name: str
    # "police" or "case_workers": which standing agreements apply (AgreementScope).
    kind: str


def requester_kind(roles: Iterable[str]) -> str:
    """A police planner holds for the police; anyone else who may hold beds does so for case workers."""
    return AgreementScope.POLICE.value if "police_planner" in roles else AgreementScope.CASE_WORKERS.value


@dataclass(frozen=True)
class NewHold:
    """What a requester asks for: beds of one pool until `expires_at`, for an operation or for a case."""

    pool_id: str
    beds: int
    expires_at: datetime
    operation_id: str | None = None
    case_code: str | None = None


@dataclass(frozen=True)
class HoldChange:
    """A hold after a step, with the pool as that step left it (None when the counts did not move)."""

    hold: Hold
    pool: BedPool | None
    change: str
    replayed: bool = False


def is_party(viewer: Viewer, hold: Hold) -> bool:
    return viewer.is_coordinator or viewer.organisation_id in (hold.requested_by_org, hold.facility_org_id)


def is_holder(viewer: Viewer, hold: Hold) -> bool:
    return viewer.organisation_id == hold.requested_by_org and viewer.is_("police_planner", "case_worker")


def is_facility_staff(viewer: Viewer, hold: Hold) -> bool:
    return viewer.staffs(hold.facility_org_id)


async def get_hold(session: AsyncSession, hold_id: str, viewer: Viewer | None = None) -> Hold:
    """The hold, or NotFound when it does not exist or the viewer is not one of its parties."""
    hold = await session.get(Hold, hold_id, populate_existing=True)
    if hold is None or (viewer is not None and not is_party(viewer, hold)):
        raise NotFound("not_found", "No such hold.")
    return hold


def validate_request(beds: int, expires_at: datetime, now: datetime) -> None:
    if beds <= 0:
        raise Invalid("invalid_beds", "A hold needs at least one bed.")
    if beds > MAX_HOLD_BEDS:
        raise Invalid("invalid_beds", f"A hold can take at most {MAX_HOLD_BEDS} beds.")
    if expires_at.tzinfo is None:
        raise Invalid("invalid_expiry", "expires_at needs a UTC offset.")
    if expires_at <= now:
        raise Invalid("invalid_expiry", "expires_at must be in the future.")
    if expires_at > now + timedelta(days=MAX_HOLD_DAYS):
        raise Invalid("invalid_expiry", f"A hold can last at most {MAX_HOLD_DAYS} days.")


async def detach_and_rollback(session: AsyncSession, *objects: Any) -> None:
    """End the transaction (and SQLite's write lock) but keep the rows read: a rollback would expire them."""
    for obj in objects:
        if obj in session:
            session.expunge(obj)
    await session.rollback()


async def _replay(session: AsyncSession, user_id: str, key: str, request_hash: str | None) -> HoldChange | None:
    """The hold this user's Idempotency-Key already made, if any; 422 when the key came with another body."""
    existing = (
        await session.execute(
            select(Hold)
            .where(Hold.idempotency_user_id == user_id, Hold.idempotency_key == key)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if existing is None:
        return None
    await detach_and_rollback(session, existing)
    if existing.request_hash != request_hash:
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used for another request.")
    return HoldChange(existing, None, "replayed", replayed=True)


async def place_hold(
    session: AsyncSession,
    requester: Requester,
    facility: Facility,
    new: NewHold,
    *,
    now: datetime,
    response_window: timedelta,
    operation: Operation | None = None,
    allocation_id: str | None = None,
    need_profile: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[Hold, BedPool]:
    """Take the beds out of the pool's "free" and add their hold, confirmed at once when a standing agreement
    of the requester's kind covers them. Part of the caller's transaction: the caller commits."""
    pool = await move_counts(
        session, new.pool_id, held=new.beds, actor_user_id=requester.user_id, reason="hold_requested"
    )
    agreement_id = await take_agreement_beds(session, new.pool_id, new.beds, requester.kind)
    hold = Hold(
        pool_id=new.pool_id,
        facility_id=facility.id,
        facility_org_id=facility.organisation_id,
        beds=new.beds,
        status=HoldStatus.CONFIRMED.value if agreement_id else HoldStatus.REQUESTED.value,
        expires_at=new.expires_at,
        operation_id=new.operation_id,
        allocation_id=allocation_id,
        case_code=new.case_code.strip() if new.case_code else None,
        need_profile=need_profile,
        service_name=requester.organisation_name,
        window_start=operation.window_start if operation else None,
        window_end=operation.window_end if operation else None,
        requested_by=requester.user_id,
        requested_by_org=requester.organisation_id,
        agreement_id=agreement_id,
        auto_confirmed=agreement_id is not None,
        confirmed_at=now if agreement_id else None,
        respond_by=now + response_window,
        created_at=now,
        updated_at=now,
        idempotency_user_id=requester.user_id if idempotency_key else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key else None,
    )
    session.add(hold)
    return hold, pool


async def create_hold(
    session: AsyncSession,
    requester: Requester,
    new: NewHold,
    *,
    response_window: timedelta = timedelta(minutes=30),
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> HoldChange:
    """Hold `beds` of a pool in one transaction; confirmed at once when a standing agreement covers them."""
    now = utcnow()
    if idempotency_key and (replay := await _replay(session, requester.user_id, idempotency_key, request_hash)):
        return replay
    case_code, operation_id = new.case_code, new.operation_id
    validate_request(new.beds, new.expires_at, now)
    if (operation_id is None) == (case_code is None):
        raise Invalid("invalid_purpose", "A hold is for exactly one of operation_id or case_code.")
    if case_code is not None and not (0 < len(case_code.strip()) <= CASE_CODE_MAX):
        raise Invalid("invalid_case_code", f"case_code must be 1 to {CASE_CODE_MAX} characters.")
    operation: Operation | None = None
    if operation_id is not None:
        operation = await session.get(Operation, operation_id)
        if operation is None or operation.organisation_id != requester.organisation_id:
            raise NotFound("not_found", "No such operation.")
    pool = await session.get(BedPool, new.pool_id)
    if pool is None:
        raise NotFound("not_found", "No such bed pool.")
    facility = await session.get(Facility, pool.facility_id)
    if facility is None or not facility.active:
        raise NotFound("not_found", "No such bed pool.")
    try:
        hold, pool = await place_hold(
            session,
            requester,
            facility,
            new,
            now=now,
            response_window=response_window,
            operation=operation,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        await session.commit()
    except (IntegrityError, Conflict):
        # A concurrent twin with the same key may have won (and even taken the last beds): answer as it did.
        await session.rollback()
        if idempotency_key and (replay := await _replay(session, requester.user_id, idempotency_key, request_hash)):
            return replay
        raise
    return HoldChange(hold, pool, "requested")


async def _step(
    session: AsyncSession,
    hold_id: str,
    *,
    from_statuses: tuple[str, ...],
    to_status: str,
    actor_user_id: str | None,
    values: dict[str, Any] | None = None,
    occupied: int | None = None,
    still_valid_at: datetime | None = None,
) -> HoldChange:
    """Move a hold from one of `from_statuses` to `to_status` and return its beds, in one transaction.

    The conditional UPDATE on the hold's status takes the hold's row lock first; only the winner of a
    race moves the pool. `occupied` beds of the hold become occupied (claim); the rest go back to free.
    """
    now = utcnow()
    conditions = [Hold.id == hold_id, Hold.status.in_(from_statuses)]  # type: ignore[attr-defined]
    if still_valid_at is not None:
        conditions.append(Hold.expires_at > still_valid_at)
    stmt = (
        update(Hold)
        .where(and_(*conditions))
        .values(status=to_status, updated_at=now, **(values or {}))
        .returning(Hold)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    hold = (await session.execute(stmt)).scalar_one_or_none()
    if hold is None:
        current = await session.get(Hold, hold_id, populate_existing=True)
        # Read what the answer needs before the rollback expires the object.
        state = (current.status, current.is_active, current.expires_at) if current is not None else None
        await session.rollback()
        if state is None:
            raise NotFound("not_found", "No such hold.")
        status, active, expires_at = state
        if still_valid_at is not None and active and expires_at <= still_valid_at:
            raise Conflict("invalid_state", "This hold has expired.", hold_status=HoldStatus.EXPIRED.value)
        raise Conflict("invalid_state", f"This hold is {status}; it cannot become {to_status}.", hold_status=status)
    pool: BedPool | None = None
    # Confirming keeps the beds held: only the other steps move the pool.
    if to_status != HoldStatus.CONFIRMED.value:
        pool = await move_counts(
            session,
            hold.pool_id,
            held=-hold.beds,
            occupied=occupied or 0,
            actor_user_id=actor_user_id,
            reason=f"hold_{to_status}",
        )
        if hold.agreement_id:
            await return_agreement_beds(session, hold.agreement_id, hold.beds)
    await session.commit()
    return HoldChange(hold, pool, to_status)


async def _party_step(
    session: AsyncSession,
    viewer: Viewer,
    hold_id: str,
    to_status: HoldStatus,
    from_statuses: tuple[str, ...],
    *,
    occupied: int | None = None,
    **values: Any,
) -> HoldChange:
    """A party's step on a hold still in time; the row keeps who took it (`<status>_by`) and when."""
    now = utcnow()
    when = "confirmed_at" if to_status == HoldStatus.CONFIRMED else "ended_at"
    return await _step(
        session,
        hold_id,
        from_statuses=from_statuses,
        to_status=to_status.value,
        actor_user_id=viewer.user_id,
        values={f"{to_status.value}_by": viewer.user_id, when: now, **values},
        occupied=occupied,
        still_valid_at=now,
    )


async def expire_if_due(session: AsyncSession, hold_id: str, now: datetime | None = None) -> HoldChange | None:
    """The check on read: a hold past its expiry is expired now, its beds freed. None if nothing was due."""
    now = now or utcnow()
    hold = await session.get(Hold, hold_id, populate_existing=True)
    if hold is None or not hold.is_active or hold.expires_at > now:
        await session.rollback()
        return None
    try:
        return await _step(
            session,
            hold_id,
            from_statuses=ACTIVE_STATUSES,
            to_status=HoldStatus.EXPIRED.value,
            actor_user_id=None,
            values={"ended_at": now},
        )
    except Conflict:
        return None  # someone else moved it first (released, claimed, or the sweeper expired it)


async def expire_due(session: AsyncSession, now: datetime | None = None, limit: int = 500) -> list[HoldChange]:
    """The sweeper's step: expire every active hold past its expiry, each in its own transaction."""
    now = now or utcnow()
    due = (
        (
            await session.execute(
                select(Hold.id)
                .where(Hold.status.in_(ACTIVE_STATUSES), Hold.expires_at <= now)  # type: ignore[attr-defined]
                .order_by(Hold.expires_at)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    await session.rollback()
    changes = []
    for hold_id in due:
        change = await expire_if_due(session, hold_id, now)
        if change is not None:
            changes.append(change)
    return changes


async def flag_unanswered(session: AsyncSession, now: datetime | None = None) -> list[Hold]:
    """Flag requests nobody answered within the response window; each is flagged once."""
    now = now or utcnow()
    stmt = (
        update(Hold)
        .where(
            Hold.status == HoldStatus.REQUESTED.value,
            Hold.flagged_unanswered.is_(False),  # type: ignore[attr-defined]
            Hold.respond_by <= now,
            Hold.expires_at > now,
        )
        .values(flagged_unanswered=True, updated_at=now)
        .returning(Hold)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    flagged = list((await session.execute(stmt)).scalars().all())
    await session.commit()
    return flagged


async def confirm(session: AsyncSession, viewer: Viewer, hold_id: str) -> HoldChange:
    hold = await get_hold(session, hold_id, viewer)
    if not is_facility_staff(viewer, hold):
        raise Forbidden("forbidden", "Only the facility's staff may confirm a hold.")
    return await _party_step(session, viewer, hold_id, HoldStatus.CONFIRMED, (HoldStatus.REQUESTED.value,))


async def decline(session: AsyncSession, viewer: Viewer, hold_id: str, reason: str) -> HoldChange:
    hold = await get_hold(session, hold_id, viewer)
    if not is_facility_staff(viewer, hold):
        raise Forbidden("forbidden", "Only the facility's staff may decline a hold.")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "A decline needs a reason; the requester sees it.")
    if len(reason) > DECLINE_REASON_MAX:
        raise Invalid("invalid_reason", f"The reason can be at most {DECLINE_REASON_MAX} characters.")
    return await _party_step(
        session, viewer, hold_id, HoldStatus.DECLINED, (HoldStatus.REQUESTED.value,), decline_reason=reason
    )


async def release(session: AsyncSession, viewer: Viewer, hold_id: str) -> HoldChange:
    hold = await get_hold(session, hold_id, viewer)
    if not is_holder(viewer, hold):
        raise Forbidden("forbidden", "Only the holder may release a hold.")
    return await _party_step(session, viewer, hold_id, HoldStatus.RELEASED, ACTIVE_STATUSES)


async def claim(session: AsyncSession, viewer: Viewer, hold_id: str, beds_used: int) -> HoldChange:
    """The people arrived: `beds_used` beds become occupied, the rest of the hold returns to free.

    The holder claims a confirmed hold; the facility's staff may also claim one still requested
    (admitting the people is their answer).
    """
    hold = await get_hold(session, hold_id, viewer)
    staff = is_facility_staff(viewer, hold)
    if not (staff or is_holder(viewer, hold)):
        raise Forbidden("forbidden", "Only the holder or the facility's staff may claim a hold.")
    if beds_used < 0:
        raise Invalid("invalid_beds_used", "beds_used cannot be negative.")
    if beds_used > hold.beds:
        raise Invalid("invalid_beds_used", f"This hold has {hold.beds} bed(s); {beds_used} cannot be used.")
    from_statuses = ACTIVE_STATUSES if staff else (HoldStatus.CONFIRMED.value,)
    return await _party_step(
        session, viewer, hold_id, HoldStatus.CLAIMED, from_statuses, occupied=beds_used, beds_used=beds_used
    )


async def holds_for_facilities(session: AsyncSession, facility_org_id: str, *, limit: int = 200) -> list[Hold]:
    """A shelter's requests page: active holds first, then the most recent others."""
    rows = (
        await session.execute(
            select(Hold)
            .where(Hold.facility_org_id == facility_org_id)
            .order_by(Hold.created_at.desc())  # type: ignore[attr-defined]
            .limit(limit)
        )
    ).scalars()
    holds = list(rows)
    holds.sort(key=lambda h: (not h.is_active, h.status != HoldStatus.REQUESTED.value))
    return holds


async def holds_of_operation(session: AsyncSession, operation_id: str) -> list[Hold]:
    return list(
        (
            await session.execute(
                select(Hold).where(Hold.operation_id == operation_id).order_by(Hold.created_at, Hold.id)  # type: ignore[arg-type]
            )
        ).scalars()
    )


async def pools_with_facilities(session: AsyncSession, pool_ids: set[str]) -> dict[str, tuple[BedPool, Facility]]:
    """Each pool with its facility, by pool id: what a list of holds or agreements names them by."""
    if not pool_ids:
        return {}
    rows = await session.execute(
        select(BedPool, Facility)
        .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
        .where(BedPool.id.in_(pool_ids))  # type: ignore[attr-defined]
    )
    return {pool.id: (pool, facility) for pool, facility in rows.all()}


async def _granted_facilities(
    session: AsyncSession, organisation_id: str, *, statuses: tuple[str, ...], case_holds_only: bool, now: datetime
) -> dict[str, str]:
    """Facilities where the organisation holds beds in one of `statuses`: {facility_id: grounds}."""
    conditions = [Hold.requested_by_org == organisation_id, Hold.status.in_(statuses)]  # type: ignore[attr-defined]
    if case_holds_only:
        conditions.append(Hold.case_code.is_not(None))  # type: ignore[union-attr]
    # A confirmed hold past its expiry grants nothing, even before the sweeper gets to it.
    conditions.append(or_(Hold.status == HoldStatus.CLAIMED.value, Hold.expires_at > now))
    rows = await session.execute(select(Hold.facility_id, Hold.id).where(*conditions).order_by(Hold.created_at))
    return {facility_id: f"hold:{hold_id}" for facility_id, hold_id in rows.all()}


async def address_grants(session: AsyncSession, viewer: Viewer, now: datetime | None = None) -> dict[str, str]:
    """Where the viewer's holds let them see a confidential address: {facility_id: grounds}.

    Police planners: facilities where their service's hold is confirmed or claimed.
    Case workers: facilities where a case of their organisation has a confirmed hold.
    """
    now = now or utcnow()
    grants: dict[str, str] = {}
    if viewer.is_("case_worker"):
        confirmed = (HoldStatus.CONFIRMED.value,)
        grants.update(
            await _granted_facilities(
                session, viewer.organisation_id, statuses=confirmed, case_holds_only=True, now=now
            )
        )
    if viewer.is_("police_planner"):
        confirmed_or_claimed = (HoldStatus.CONFIRMED.value, HoldStatus.CLAIMED.value)
        grants.update(
            await _granted_facilities(
                session, viewer.organisation_id, statuses=confirmed_or_claimed, case_holds_only=False, now=now
            )
        )
    return grants
