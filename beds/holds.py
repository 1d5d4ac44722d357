"""Holds: beds taken out of "free" for an operation or a case, then confirmed, declined, claimed, released
or expired. Each step is one transaction that moves the pool's counts through `move_counts` (so the
invariant and the history row come with it) and changes the hold with a conditional UPDATE on its
status, so two concurrent steps on the same hold cannot both win.

Lock order, everywhere: the hold row, then its pool (bulk allocation: pools sorted by id), then the
pool's agreement. Nothing locks them the other way round, so concurrent steps cannot deadlock.

A standing agreement's partner draws on the beds kept for it first (beds/agreements.py): its hold's
`kept_beds` move the pool's `kept_in_use` in the same conditional UPDATE that moves `held`, so kept beds
never count twice and only the partner's holds can take them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.agreements import NO_DRAW, draw_kept, give_back_kept, lock_pool
from beds.errors import Conflict, Forbidden, Invalid, NotFound
from beds.holds_models import ACTIVE_STATUSES, Agreement, AgreementScope, Hold, HoldIncident, HoldStatus, Operation
from beds.models import BedPool, Facility
from beds.placements import open_for_claim
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
class HoldLimits:
    """The most beds one requester, and one organisation, may have in `requested` state at once
    (exchange/settings.py). Beds confirmed at once by the partner's agreement do not count."""

    per_requester: int | None  # None: no limit per person (an operation's allocation)
    per_organisation: int


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


async def _lock_requests_of(session: AsyncSession, organisation_id: str) -> None:
    """Serialise the organisation's new requests, so that two concurrent ones cannot both slip under a limit.

    PostgreSQL: a transaction-scoped advisory lock on the organisation. It is taken after the pool and
    agreement rows, and no transaction takes those after it, so it adds no deadlock. SQLite's BEGIN
    IMMEDIATE already serialises every writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"hold_limit:{organisation_id}"}
        )


async def check_limits(session: AsyncSession, requester: Requester, limits: HoldLimits, now: datetime) -> None:
    """409 `hold_limit` when the hold just added (still requested) takes the requester or the organisation past
    its limit of requested beds. Part of the hold's transaction, under `_lock_requests_of`."""
    await _lock_requests_of(session, requester.organisation_id)
    await session.flush()
    open_requests = [Hold.status == HoldStatus.REQUESTED.value, Hold.expires_at > now]

    async def requested_beds(*conditions: Any) -> int:
        total = await session.scalar(select(func.coalesce(func.sum(Hold.beds), 0)).where(*open_requests, *conditions))
        return int(total or 0)

    mine = await requested_beds(Hold.requested_by == requester.user_id) if limits.per_requester is not None else 0
    if limits.per_requester is not None and mine > limits.per_requester:
        raise Conflict(
            "hold_limit",
            f"One person may have at most {limits.per_requester} bed(s) requested and not yet answered "
            f"(per-requester limit); this request would make {mine}.",
            limit="per_requester",
            max_beds=limits.per_requester,
            requested_beds=mine,
        )
    ours = await requested_beds(Hold.requested_by_org == requester.organisation_id)
    if ours > limits.per_organisation:
        raise Conflict(
            "hold_limit",
            f"One organisation may have at most {limits.per_organisation} bed(s) requested and not yet answered "
            f"(per-organisation limit); this request would make {ours}.",
            limit="per_organisation",
            max_beds=limits.per_organisation,
            requested_beds=ours,
        )


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
    """Take the beds out of the pool and add their hold: first the beds a standing agreement keeps for the
    requester's organisation (of its kind), then free beds. A hold wholly on kept beds is confirmed at once.
    Part of the caller's transaction: the caller commits."""
    draw = NO_DRAW
    if await _may_keep_for(session, new.pool_id, requester.organisation_id):
        # The pool's lock first (the lock order), so the agreement's unused beds stay as read until commit.
        await lock_pool(session, new.pool_id)
        draw = await draw_kept(session, new.pool_id, new.beds, requester.kind, partner_org_id=requester.organisation_id)
    pool = await move_counts(
        session,
        new.pool_id,
        held=new.beds,
        kept_in_use=draw.beds,
        actor_user_id=requester.user_id,
        reason="hold_requested",
    )
    # Only the agreement's named partner is confirmed at once, and only for a real case or operation: the
    # caller has checked the case (the shell, through ledger.cases) or that the operation is the requester's.
    agreement_id = draw.agreement_id if draw.beds == new.beds else None
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
        agreement_id=draw.agreement_id,
        kept_beds=draw.beds,
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


async def _may_keep_for(session: AsyncSession, pool_id: str, organisation_id: str) -> bool:
    """Whether the pool has an active agreement with this organisation: only then is the pool locked before its
    UPDATE (the agreement's counts are read under that lock). A plain read; `draw_kept` decides under the lock."""
    found = await session.execute(
        select(Agreement.id).where(
            Agreement.pool_id == pool_id,
            Agreement.partner_org_id == organisation_id,
            Agreement.active.is_(True),  # type: ignore[attr-defined]
        )
    )
    return found.first() is not None


async def create_hold(
    session: AsyncSession,
    requester: Requester,
    new: NewHold,
    *,
    response_window: timedelta = timedelta(minutes=30),
    limits: HoldLimits | None = None,
    verified_case_code: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> HoldChange:
    """Hold `beds` of a pool in one transaction; confirmed at once when the requester's standing agreement
    covers them.

    A case hold needs `verified_case_code`: the case's code once the caller has checked that it is an open
    case of the requester's organisation (beds does not read the ledger). A police hold belongs to one of
    the service's operations. `limits` caps the beds the requester and its organisation have requested.
    """
    now = utcnow()
    if idempotency_key and (replay := await _replay(session, requester.user_id, idempotency_key, request_hash)):
        return replay
    case_code, operation_id = new.case_code, new.operation_id
    validate_request(new.beds, new.expires_at, now)
    if (operation_id is None) == (case_code is None):
        raise Invalid("invalid_purpose", "A hold is for exactly one of operation_id or case_code.")
    if case_code is not None and requester.kind == AgreementScope.POLICE.value:
        raise Invalid("invalid_purpose", "A police hold belongs to one of your service's operations (operation_id).")
    if case_code is not None and not (0 < len(case_code.strip()) <= CASE_CODE_MAX):
        raise Invalid("invalid_case_code", f"case_code must be 1 to {CASE_CODE_MAX} characters.")
    if case_code is not None:
        if verified_case_code is None:
            raise NotFound("case_not_found", "No such open case for your organisation.")
        new = NewHold(new.pool_id, new.beds, new.expires_at, None, verified_case_code)
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
        if limits is not None and hold.status == HoldStatus.REQUESTED.value:
            await check_limits(session, requester, limits, now)
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
    extra_conditions: tuple[Any, ...] = (),
) -> HoldChange:
    """Move a hold from one of `from_statuses` to `to_status` and return its beds, in one transaction.

    The conditional UPDATE on the hold's status takes the hold's row lock first; only the winner of a
    race moves the pool. `occupied` beds of the hold become occupied (claim); the rest go back to free.
    """
    now = utcnow()
    conditions = [Hold.id == hold_id, Hold.status.in_(from_statuses)]  # type: ignore[attr-defined]
    if still_valid_at is not None:
        conditions.append(Hold.expires_at > still_valid_at)
    conditions.extend(extra_conditions)
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
        if hold.agreement_id and hold.kept_beds:
            # Pool, then agreement: the kept beds go back before the pool moves, so its refill sees them.
            await lock_pool(session, hold.pool_id)
            await give_back_kept(session, hold.agreement_id, hold.kept_beds)
        pool = await move_counts(
            session,
            hold.pool_id,
            held=-hold.beds,
            occupied=occupied or 0,
            actor_user_id=actor_user_id,
            reason=f"hold_{to_status}",
        )
    if to_status == HoldStatus.CLAIMED.value and occupied:
        # The people arrived: their stays open in the claim's own transaction (beds/placements.py).
        open_for_claim(session, hold, occupied, actor_user_id=actor_user_id, now=now)
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


async def _due_hold_ids(session: AsyncSession, conditions: tuple[Any, ...], order: Any, limit: int) -> list[str]:
    """The ids a sweep step will try, oldest deadline first; the read ends before each hold's own transaction."""
    ids = (await session.execute(select(Hold.id).where(*conditions).order_by(order).limit(limit))).scalars().all()
    await session.rollback()
    return list(ids)


async def expire_due(session: AsyncSession, now: datetime | None = None, limit: int = 500) -> list[HoldChange]:
    """The sweeper's step: expire every active hold past its expiry, each in its own transaction."""
    now = now or utcnow()
    due = await _due_hold_ids(
        session,
        (Hold.status.in_(ACTIVE_STATUSES), Hold.expires_at <= now),
        Hold.expires_at,
        limit,  # type: ignore[attr-defined]
    )
    changes = []
    for hold_id in due:
        change = await expire_if_due(session, hold_id, now)
        if change is not None:
            changes.append(change)
    return changes


async def lapse_unanswered(
    session: AsyncSession, grace: timedelta, now: datetime | None = None, limit: int = 500
) -> list[HoldChange]:
    """The sweeper's step: a request nobody answered within its response window plus `grace` lapses
    (expired, its beds back), long before its own expiry. Each in its own transaction, with a conditional
    UPDATE on status and deadline, so it lapses once however many processes sweep."""
    now = now or utcnow()
    cutoff = now - grace
    due = await _due_hold_ids(
        session, (Hold.status == HoldStatus.REQUESTED.value, Hold.respond_by <= cutoff), Hold.respond_by, limit
    )
    changes = []
    for hold_id in due:
        try:
            changes.append(
                await _step(
                    session,
                    hold_id,
                    from_statuses=(HoldStatus.REQUESTED.value,),
                    to_status=HoldStatus.EXPIRED.value,
                    actor_user_id=None,
                    values={"ended_at": now},
                    extra_conditions=(Hold.respond_by <= cutoff,),
                )
            )
        except (Conflict, NotFound):
            continue  # answered, released or lapsed by another process in between
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
    if beds_used < 1:
        # A claim of no bed would hand the beds back and keep the address: release the hold instead.
        raise Invalid("invalid_beds_used", "beds_used must be at least 1; release the hold if nobody came.")
    if beds_used > hold.beds:
        raise Invalid("invalid_beds_used", f"This hold has {hold.beds} bed(s); {beds_used} cannot be used.")
    from_statuses = ACTIVE_STATUSES if staff else (HoldStatus.CONFIRMED.value,)
    return await _party_step(
        session, viewer, hold_id, HoldStatus.CLAIMED, from_statuses, occupied=beds_used, beds_used=beds_used
    )


@dataclass(frozen=True)
class BulkResult:
    changes: list[HoldChange]
    incident: HoldIncident


async def _ids(session: AsyncSession, *conditions: Any) -> list[str]:
    rows = await session.execute(select(Hold.id).where(*conditions).order_by(Hold.created_at, Hold.id))  # type: ignore[arg-type]
    ids = list(rows.scalars().all())
    await session.rollback()
    return ids


async def _record(session: AsyncSession, incident: HoldIncident, changes: list[HoldChange]) -> BulkResult:
    incident.holds = len(changes)
    incident.beds = sum(c.hold.beds for c in changes)
    session.add(incident)
    await session.commit()
    return BulkResult(changes, incident)


async def decline_all_of_requester(
    session: AsyncSession, viewer: Viewer, requester_user_id: str, reason: str
) -> BulkResult:
    """A shelter declines every open request of one requester at its facilities, in one action; each hold
    is its own step (a request answered meanwhile is left as it is). Recorded as a `decline_requester`."""
    if not viewer.is_("shelter_staff"):
        raise Forbidden("forbidden", "Only a shelter's staff may decline its requests.")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "A decline needs a reason; the requester sees it.")
    if len(reason) > DECLINE_REASON_MAX:
        raise Invalid("invalid_reason", f"The reason can be at most {DECLINE_REASON_MAX} characters.")
    ids = await _ids(
        session,
        Hold.facility_org_id == viewer.organisation_id,
        Hold.requested_by == requester_user_id,
        Hold.status == HoldStatus.REQUESTED.value,
    )
    changes = []
    for hold_id in ids:
        try:
            changes.append(
                await _party_step(
                    session, viewer, hold_id, HoldStatus.DECLINED, (HoldStatus.REQUESTED.value,), decline_reason=reason
                )
            )
        except Conflict:
            continue
    incident = HoldIncident(
        kind="decline_requester",
        actor_user_id=viewer.user_id,
        actor_org_id=viewer.organisation_id,
        target_user_id=requester_user_id,
        holds=0,
        beds=0,
        reason=reason,
    )
    return await _record(session, incident, changes)


async def release_all_of(
    session: AsyncSession,
    viewer: Viewer,
    *,
    user_id: str | None = None,
    organisation_id: str | None = None,
    reason: str = "",
) -> BulkResult:
    """A coordinator's incident button: release every active hold of one user or one organisation, in one
    action, each hold its own step. Recorded (who, when, whose, how many holds and beds) as `release_all`."""
    if not viewer.is_coordinator:
        raise Forbidden("forbidden", "Only a coordinator may release another organisation's holds.")
    if (user_id is None) == (organisation_id is None):
        raise Invalid("invalid_target", "Name exactly one of user_id or organisation_id.")
    reason = (reason or "").strip()
    if len(reason) > DECLINE_REASON_MAX:
        raise Invalid("invalid_reason", f"The reason can be at most {DECLINE_REASON_MAX} characters.")
    whose = Hold.requested_by == user_id if user_id is not None else Hold.requested_by_org == organisation_id
    ids = await _ids(session, whose, Hold.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined]
    changes = []
    for hold_id in ids:
        now = utcnow()
        try:
            changes.append(
                await _step(
                    session,
                    hold_id,
                    from_statuses=ACTIVE_STATUSES,
                    to_status=HoldStatus.RELEASED.value,
                    actor_user_id=viewer.user_id,
                    values={"released_by": viewer.user_id, "ended_at": now},
                )
            )
        except Conflict:
            continue
    incident = HoldIncident(
        kind="release_all",
        actor_user_id=viewer.user_id,
        actor_org_id=viewer.organisation_id,
        target_user_id=user_id,
        target_org_id=organisation_id,
        holds=0,
        beds=0,
        reason=reason,
    )
    return await _record(session, incident, changes)


async def incidents(session: AsyncSession, limit: int = 50) -> list[HoldIncident]:
    rows = await session.execute(select(HoldIncident).order_by(HoldIncident.at.desc()).limit(limit))  # type: ignore[attr-defined]
    return list(rows.scalars().all())


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


# Until placements exist, a claimed hold stands for the stay: it grants this long after the claim.
CLAIM_GRANT = timedelta(hours=24)


async def _granted_facilities(
    session: AsyncSession, organisation_id: str, *, case_holds_only: bool, now: datetime, claim_grant: timedelta
) -> dict[str, str]:
    """Facilities where the organisation's hold grants the address now: {facility_id: grounds}.

    Every grant ends: a confirmed hold grants while it is confirmed and not expired (even before the
    sweeper gets to it); a claimed hold for `claim_grant` after the claim (its `ended_at`), then never.
    """
    conditions = [
        Hold.requested_by_org == organisation_id,
        or_(
            and_(Hold.status == HoldStatus.CONFIRMED.value, Hold.expires_at > now),
            and_(
                Hold.status == HoldStatus.CLAIMED.value,
                Hold.beds_used > 0,  # type: ignore[operator]
                Hold.ended_at > now - claim_grant,  # type: ignore[operator]
            ),
        ),
    ]
    if case_holds_only:
        conditions.append(Hold.case_code.is_not(None))  # type: ignore[union-attr]
    rows = await session.execute(select(Hold.facility_id, Hold.id).where(*conditions).order_by(Hold.created_at))
    return {facility_id: f"hold:{hold_id}" for facility_id, hold_id in rows.all()}


async def address_grants(
    session: AsyncSession, viewer: Viewer, now: datetime | None = None, *, claim_grant: timedelta = CLAIM_GRANT
) -> dict[str, str]:
    """Where the viewer's holds let them see a confidential address: {facility_id: grounds}.

    Police planners: facilities where their service's hold is confirmed, or was claimed within `claim_grant`.
    Case workers: the same for the holds of their organisation's cases.
    """
    now = now or utcnow()
    grants: dict[str, str] = {}
    if viewer.is_("case_worker"):
        grants.update(
            await _granted_facilities(
                session, viewer.organisation_id, case_holds_only=True, now=now, claim_grant=claim_grant
            )
        )
    if viewer.is_("police_planner"):
        grants.update(
            await _granted_facilities(
                session, viewer.organisation_id, case_holds_only=False, now=now, claim_grant=claim_grant
            )
        )
    return grants
