"""Holds: beds taken out of "free" for an operation or a case, then confirmed, declined, claimed, released
or expired. Each step is one transaction that moves the pool's counts through `move_counts` (so the
invariant and the history row come with it) and changes the hold with a conditional UPDATE on its
status, so two concurrent steps on the same hold cannot both win.

Lock order, everywhere: the hold row, then its pool (bulk allocation: pools sorted by id), then the
pool's agreement. Nothing locks them the other way round, so concurrent steps cannot deadlock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Forbidden, Invalid, NotFound
from beds.holds_models import ACTIVE_STATUSES, Agreement, AgreementScope, Hold, HoldStatus, Operation
from beds.models import BedPool, Facility
from beds.pools import move_counts
from beds.timeutil import utcnow
from beds.visibility import Viewer

MAX_HOLD_DAYS = 14
MAX_HOLD_BEDS = 200
DECLINE_REASON_MAX = 500


@dataclass(frozen=True)
class Requester:
    """Who asks for beds: the user, the organisation that will hold them, and what kind of holder it is."""

    user_id: str
    organisation_id: str
    organisation_name: str
    # "police" or "case_workers": which standing agreements apply (AgreementScope).
    kind: str


@dataclass(frozen=True)
class HoldChange:
    """A hold after a step, with the pool as that step left it (None when the counts did not move)."""

    hold: Hold
    pool: BedPool | None
    change: str
    replayed: bool = False


def request_sha256(body: dict[str, Any]) -> str:
    """Canonical JSON of a request body, so the same body always hashes the same."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


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


async def _by_idempotency_key(session: AsyncSession, user_id: str, key: str) -> Hold | None:
    return (
        await session.execute(
            select(Hold)
            .where(Hold.idempotency_user_id == user_id, Hold.idempotency_key == key)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def detach_and_rollback(session: AsyncSession, *objects: Any) -> None:
    """End the transaction (and SQLite's write lock) but keep the rows read: a rollback would expire them."""
    for obj in objects:
        if obj in session:
            session.expunge(obj)
    await session.rollback()


def _replay(hold: Hold, sha: str | None) -> HoldChange:
    if hold.request_sha256 != sha:
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used for another request.")
    return HoldChange(hold, None, "replayed", replayed=True)


async def take_agreement_beds(session: AsyncSession, pool_id: str, beds: int, scope: str) -> str | None:
    """Count `beds` against the pool's standing agreement if they fit under it; the agreement's id, or None.

    One conditional UPDATE: concurrent requests serialise on the agreement row and the limit holds.
    """
    stmt = (
        update(Agreement)
        .where(
            Agreement.pool_id == pool_id,
            Agreement.active.is_(True),  # type: ignore[attr-defined]
            Agreement.scope.in_([scope, AgreementScope.ALL.value]),  # type: ignore[attr-defined]
            Agreement.beds_in_use + beds <= Agreement.beds,
        )
        .values(beds_in_use=Agreement.beds_in_use + beds)
        .returning(Agreement.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().first()


async def _return_agreement_beds(session: AsyncSession, agreement_id: str, beds: int) -> None:
    await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement_id, Agreement.beds_in_use >= beds)
        .values(beds_in_use=Agreement.beds_in_use - beds)
        .execution_options(synchronize_session=False)
    )


async def create_hold(
    session: AsyncSession,
    requester: Requester,
    *,
    pool_id: str,
    beds: int,
    expires_at: datetime,
    operation_id: str | None = None,
    case_code: str | None = None,
    response_window: timedelta = timedelta(minutes=30),
    idempotency_key: str | None = None,
    sha: str | None = None,
) -> HoldChange:
    """Hold `beds` of a pool in one transaction; confirmed at once when a standing agreement covers them."""
    now = utcnow()
    if idempotency_key:
        existing = await _by_idempotency_key(session, requester.user_id, idempotency_key)
        if existing is not None:
            await detach_and_rollback(session, existing)
            return _replay(existing, sha)
    validate_request(beds, expires_at, now)
    if (operation_id is None) == (case_code is None):
        raise Invalid("invalid_purpose", "A hold is for exactly one of operation_id or case_code.")
    if case_code is not None and not (0 < len(case_code.strip()) <= 40):
        raise Invalid("invalid_case_code", "case_code must be 1 to 40 characters.")
    operation: Operation | None = None
    if operation_id is not None:
        operation = await session.get(Operation, operation_id)
        if operation is None or operation.organisation_id != requester.organisation_id:
            raise NotFound("not_found", "No such operation.")
    pool = await session.get(BedPool, pool_id)
    if pool is None:
        raise NotFound("not_found", "No such bed pool.")
    facility = await session.get(Facility, pool.facility_id)
    if facility is None or not facility.active:
        raise NotFound("not_found", "No such bed pool.")
    try:
        pool = await move_counts(session, pool_id, held=beds, actor_user_id=requester.user_id, reason="hold_requested")
        agreement_id = await take_agreement_beds(session, pool_id, beds, requester.kind)
        hold = Hold(
            pool_id=pool_id,
            facility_id=facility.id,
            facility_org_id=facility.organisation_id,
            beds=beds,
            status=HoldStatus.CONFIRMED.value if agreement_id else HoldStatus.REQUESTED.value,
            expires_at=expires_at,
            operation_id=operation_id,
            case_code=case_code.strip() if case_code else None,
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
            request_sha256=sha if idempotency_key else None,
        )
        session.add(hold)
        await session.commit()
    except (IntegrityError, Conflict):
        # A concurrent twin with the same key may have won (and even taken the last beds): answer as it did.
        await session.rollback()
        if idempotency_key:
            existing = await _by_idempotency_key(session, requester.user_id, idempotency_key)
            if existing is not None:
                await detach_and_rollback(session, existing)
                return _replay(existing, sha)
        raise
    return HoldChange(hold, pool, "requested")


async def _step(
    session: AsyncSession,
    hold_id: str,
    *,
    from_statuses: tuple[str, ...],
    to_status: str,
    actor_user_id: str | None,
    reason: str,
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
    if to_status == HoldStatus.CONFIRMED.value:
        pass  # confirming keeps the beds held; the pool does not move
    else:
        pool = await move_counts(
            session,
            hold.pool_id,
            held=-hold.beds,
            occupied=occupied or 0,
            actor_user_id=actor_user_id,
            reason=reason,
        )
        if hold.agreement_id:
            await _return_agreement_beds(session, hold.agreement_id, hold.beds)
    await session.commit()
    return HoldChange(hold, pool, to_status)


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
            reason="hold_expired",
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
    now = utcnow()
    return await _step(
        session,
        hold_id,
        from_statuses=(HoldStatus.REQUESTED.value,),
        to_status=HoldStatus.CONFIRMED.value,
        actor_user_id=viewer.user_id,
        reason="hold_confirmed",
        values={"confirmed_by": viewer.user_id, "confirmed_at": now},
        still_valid_at=now,
    )


async def decline(session: AsyncSession, viewer: Viewer, hold_id: str, reason: str) -> HoldChange:
    hold = await get_hold(session, hold_id, viewer)
    if not is_facility_staff(viewer, hold):
        raise Forbidden("forbidden", "Only the facility's staff may decline a hold.")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "A decline needs a reason; the requester sees it.")
    if len(reason) > DECLINE_REASON_MAX:
        raise Invalid("invalid_reason", f"The reason can be at most {DECLINE_REASON_MAX} characters.")
    now = utcnow()
    return await _step(
        session,
        hold_id,
        from_statuses=(HoldStatus.REQUESTED.value,),
        to_status=HoldStatus.DECLINED.value,
        actor_user_id=viewer.user_id,
        reason="hold_declined",
        values={"declined_by": viewer.user_id, "decline_reason": reason, "ended_at": now},
        still_valid_at=now,
    )


async def release(session: AsyncSession, viewer: Viewer, hold_id: str) -> HoldChange:
    hold = await get_hold(session, hold_id, viewer)
    if not is_holder(viewer, hold):
        raise Forbidden("forbidden", "Only the holder may release a hold.")
    now = utcnow()
    return await _step(
        session,
        hold_id,
        from_statuses=ACTIVE_STATUSES,
        to_status=HoldStatus.RELEASED.value,
        actor_user_id=viewer.user_id,
        reason="hold_released",
        values={"released_by": viewer.user_id, "ended_at": now},
        still_valid_at=now,
    )


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
    now = utcnow()
    return await _step(
        session,
        hold_id,
        from_statuses=from_statuses,
        to_status=HoldStatus.CLAIMED.value,
        actor_user_id=viewer.user_id,
        reason="hold_claimed",
        values={"claimed_by": viewer.user_id, "beds_used": beds_used, "ended_at": now},
        occupied=beds_used,
        still_valid_at=now,
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


async def granted_facilities(
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


# --- standing agreements -------------------------------------------------------------------------------------


async def create_agreement(
    session: AsyncSession, viewer: Viewer, *, pool_id: str, beds: int, scope: str, note: str = ""
) -> Agreement:
    pool = await session.get(BedPool, pool_id)
    if pool is None:
        raise NotFound("not_found", "No such bed pool.")
    facility = await session.get(Facility, pool.facility_id)
    if facility is None or not viewer.staffs(facility.organisation_id):
        raise Forbidden("forbidden", "Only the facility's own staff may make an agreement for its beds.")
    if scope not in {s.value for s in AgreementScope}:
        raise Invalid("invalid_scope", "scope is police, case_workers or all.")
    if beds <= 0 or beds > pool.capacity:
        raise Invalid("invalid_beds", f"An agreement keeps between 1 and {pool.capacity} bed(s) of this pool.")
    existing = (
        await session.execute(
            select(Agreement.id).where(Agreement.pool_id == pool_id, Agreement.active.is_(True))  # type: ignore[attr-defined]
        )
    ).first()
    if existing is not None:
        raise Conflict("agreement_exists", "This pool already has a standing agreement; end it first.")
    agreement = Agreement(
        pool_id=pool_id,
        facility_id=facility.id,
        beds=beds,
        scope=scope,
        note=note.strip()[:500],
        created_by=viewer.user_id,
    )
    session.add(agreement)
    await session.commit()
    return agreement


async def end_agreement(session: AsyncSession, viewer: Viewer, agreement_id: str) -> Agreement:
    agreement = await session.get(Agreement, agreement_id)
    facility = await session.get(Facility, agreement.facility_id) if agreement else None
    if agreement is None or facility is None or facility.organisation_id != viewer.organisation_id:
        raise NotFound("not_found", "No such agreement.")
    if not viewer.staffs(facility.organisation_id):
        raise Forbidden("forbidden", "Only the facility's own staff may end its agreements.")
    if not agreement.active:
        raise Conflict("invalid_state", "This agreement has already ended.")
    agreement.active = False
    agreement.ended_at = utcnow()
    session.add(agreement)
    await session.commit()
    return agreement


async def agreements_for(session: AsyncSession, viewer: Viewer) -> list[Agreement]:
    """Staff see their own facilities' agreements; coordinators and admins see the network's."""
    stmt = select(Agreement).order_by(Agreement.active.desc(), Agreement.created_at.desc())  # type: ignore[attr-defined]
    if not viewer.is_("coordinator", "network_admin"):
        stmt = stmt.join(Facility, Facility.id == Agreement.facility_id).where(  # type: ignore[arg-type]
            Facility.organisation_id == viewer.organisation_id
        )
    return list((await session.execute(stmt)).scalars())
