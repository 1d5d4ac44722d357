"""Placements: the stays that claims open and departures end, who sees them, their follow-up dates, the address
they grant, and the removal of case links after the retention period (the reports' stay figures: beds/reports.py).

One placement per bed claimed: a claim of `beds_used` beds opens `beds_used` placements (a family of three
is three placements under one case code), so each Departure (-1 occupied) ends exactly one placement, and a
Departure that ends none (a walk-in who came without a hold) stays possible. Ending a placement moves the
pool's count in the same transaction (`move_counts`: the invariant and the history row come with it), behind
a conditional UPDATE on the placement, so two people ending the same stay end it once and free one bed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Forbidden, Invalid, NotFound
from beds.holds_models import ACTIVE_STATUSES, Hold
from beds.models import BedPool
from beds.placements_models import FollowUp, Placement
from beds.pools import Idempotency, move_counts, replay
from beds.timeutil import utcnow
from beds.visibility import Viewer

# The pool history's reason for a departure that ended a placement (a bare Departure says "adjust").
REASON_ENDED = "placement_ended"
PLACEMENTS_PAGE = 200
# A stay is expected to end within this: a typo of a year is refused, not kept as a stay of a decade.
EXPECTED_STAY_MAX = timedelta(days=3 * 365)


# --- who may see and act -----------------------------------------------------------------------------------


def is_case_side(viewer: Viewer, placement: Placement) -> bool:
    """The case's organisation (its case workers): they know whose case it is."""
    return (
        placement.case_org_id is not None
        and viewer.organisation_id == placement.case_org_id
        and viewer.is_("case_worker")
    )


def may_see(viewer: Viewer, placement: Placement) -> bool:
    """DESIGN.md, Visibility: case codes go to the facility's staff (own placements), the case's workers and
    the coordinators; police never see them."""
    return viewer.is_coordinator or viewer.staffs(placement.facility_org_id) or is_case_side(viewer, placement)


def may_change(viewer: Viewer, placement: Placement) -> bool:
    """Setting a stay's expected end: the facility's staff, or the case's workers."""
    return viewer.staffs(placement.facility_org_id) or is_case_side(viewer, placement)


def may_end(viewer: Viewer, placement: Placement) -> bool:
    """Ending a stay moves the pool's occupied count: only the facility's staff, who count their beds. A case
    worker ending it too would count one departure twice (the shelter's own Departure already did)."""
    return viewer.staffs(placement.facility_org_id)


def _visible(viewer: Viewer) -> list:
    """The SQL side of `may_see`."""
    if viewer.is_coordinator:
        return []
    sides = []
    if viewer.is_("shelter_staff"):
        sides.append(Placement.facility_org_id == viewer.organisation_id)
    if viewer.is_("case_worker"):
        sides.append(Placement.case_org_id == viewer.organisation_id)
    return [or_(*sides)] if sides else [Placement.id.is_(None)]  # type: ignore[union-attr]


# --- opening and reading -----------------------------------------------------------------------------------


def open_for_claim(
    session: AsyncSession, hold: Hold, beds_used: int, *, actor_user_id: str | None, now: datetime
) -> list[Placement]:
    """The placements of a claim, added to the claim's own transaction (the caller commits): one per bed used.

    A case's hold links its case code, its organisation and its requester (the case worker); an operation's
    hold links none of them: the police see no case codes, and the stay is counted all the same."""
    placements = [
        Placement(
            pool_id=hold.pool_id,
            facility_id=hold.facility_id,
            facility_org_id=hold.facility_org_id,
            hold_id=hold.id,
            case_org_id=hold.requested_by_org if hold.case_code else None,
            case_code=hold.case_code,
            case_worker_id=hold.requested_by if hold.case_code else None,
            started_at=now,
            opened_by=actor_user_id,
        )
        for _ in range(beds_used)
    ]
    session.add_all(placements)
    return placements


async def get_placement(session: AsyncSession, viewer: Viewer, placement_id: str) -> Placement:
    """The placement, or NotFound when it does not exist or the viewer may not see it."""
    placement = await session.get(Placement, placement_id, populate_existing=True)
    if placement is None or not may_see(viewer, placement):
        raise NotFound("not_found", "No such placement.")
    return placement


@dataclass(frozen=True)
class PlacementFilter:
    facility_id: str | None = None
    pool_id: str | None = None
    case_code: str | None = None
    # True: open stays only; False: ended ones only; None: both.
    open: bool | None = None
    limit: int = PLACEMENTS_PAGE


async def list_placements(session: AsyncSession, viewer: Viewer, where: PlacementFilter) -> list[Placement]:
    """The placements the viewer may see, newest first."""
    conditions = _visible(viewer)
    if where.facility_id:
        conditions.append(Placement.facility_id == where.facility_id)
    if where.pool_id:
        conditions.append(Placement.pool_id == where.pool_id)
    if where.case_code:
        conditions.append(Placement.case_code == where.case_code)
    if where.open is True:
        conditions.append(Placement.ended_at.is_(None))  # type: ignore[union-attr]
    elif where.open is False:
        conditions.append(Placement.ended_at.is_not(None))  # type: ignore[union-attr]
    limit = max(1, min(where.limit, PLACEMENTS_PAGE))
    stmt = (
        select(Placement)
        .where(*conditions)
        .order_by(Placement.started_at.desc(), Placement.id)  # type: ignore[attr-defined]
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def follow_ups_of(session: AsyncSession, placement_ids: Iterable[str]) -> dict[str, list[FollowUp]]:
    ids = list(placement_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(FollowUp).where(FollowUp.placement_id.in_(ids)).order_by(FollowUp.due_at)  # type: ignore[attr-defined]
    )
    found: dict[str, list[FollowUp]] = {}
    for follow_up in rows.scalars():
        found.setdefault(follow_up.placement_id, []).append(follow_up)
    return found


# --- ending a stay -----------------------------------------------------------------------------------------


def follow_up_dates(ended_at: datetime, days_after: Sequence[int]) -> list[tuple[int, datetime]]:
    """The follow-up dates of a stay that ended at `ended_at`: one per distinct positive day count, in order."""
    return [(days, ended_at + timedelta(days=days)) for days in sorted({d for d in days_after if d > 0})]


@dataclass(frozen=True)
class Ended:
    """A placement as its end left it, with the pool as the departure left it."""

    placement: Placement
    pool: BedPool
    replayed: bool = False


async def end_placement(
    session: AsyncSession,
    viewer: Viewer,
    placement_id: str,
    *,
    follow_up_days: Sequence[int],
    idempotency: Idempotency | None = None,
    now: datetime | None = None,
) -> Ended:
    """The person left: the placement ends and its bed is no longer occupied, in one transaction.

    The conditional UPDATE on `ended_at IS NULL` takes the placement's row lock first; only its winner moves the
    pool. The case's follow-up dates are written with it. Once per Idempotency-Key (the pool history's key)."""
    placement = await get_placement(session, viewer, placement_id)
    if not may_end(viewer, placement):
        raise Forbidden("forbidden", "Only the facility's staff may end a placement: they count its beds.")
    if (replayed := await replay(session, idempotency)) is not None:
        return Ended(await get_placement(session, viewer, placement_id), replayed.pool, replayed=True)
    now = now or utcnow()
    stmt = (
        update(Placement)
        .where(Placement.id == placement_id, Placement.ended_at.is_(None))  # type: ignore[union-attr]
        .values(ended_at=now, ended_by=viewer.user_id)
        .returning(Placement)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    ended = (await session.execute(stmt)).scalar_one_or_none()
    if ended is None:
        await session.rollback()
        # A concurrent duplicate of the same key ended it first: answer as it did.
        if (replayed := await replay(session, idempotency)) is not None:
            return Ended(await get_placement(session, viewer, placement_id), replayed.pool, replayed=True)
        raise Conflict("placement_ended", "This placement has already ended.")
    try:
        pool = await move_counts(
            session,
            ended.pool_id,
            occupied=-1,
            actor_user_id=viewer.user_id,
            reason=REASON_ENDED,
            idempotency=idempotency,
        )
    except (Invalid, Conflict):
        await session.rollback()
        raise Invalid(
            "nobody_occupied",
            "This pool counts nobody as occupied, so no departure can be counted; correct the counts first.",
        ) from None
    if ended.case_code is not None:
        for days, due_at in follow_up_dates(now, follow_up_days):
            session.add(FollowUp(placement_id=ended.id, days_after=days, due_at=due_at))
    await session.commit()
    return Ended(ended, pool)


async def set_expected_end(
    session: AsyncSession, viewer: Viewer, placement_id: str, expected_end: datetime | None
) -> Placement:
    """The shelter or the case worker says when the stay should end (None: not known)."""
    placement = await get_placement(session, viewer, placement_id)
    if not may_change(viewer, placement):
        raise Forbidden("forbidden", "Only the facility's staff or the case's workers may change a placement.")
    if expected_end is not None:
        if expected_end.tzinfo is None:
            raise Invalid("invalid_expected_end", "expected_end needs a UTC offset.")
        if expected_end < placement.started_at:
            raise Invalid("invalid_expected_end", "The expected end must come after the start of the stay.")
        if expected_end > placement.started_at + EXPECTED_STAY_MAX:
            raise Invalid("invalid_expected_end", "The expected end is more than three years after the start.")
    stmt = (
        update(Placement)
        .where(Placement.id == placement_id, Placement.ended_at.is_(None))  # type: ignore[union-attr]
        .values(expected_end_at=expected_end)
        .returning(Placement)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    changed = (await session.execute(stmt)).scalar_one_or_none()
    if changed is None:
        await session.rollback()
        raise Conflict("placement_ended", "This placement has already ended.")
    await session.commit()
    return changed


# --- follow-up ---------------------------------------------------------------------------------------------


async def follow_ups_due(
    session: AsyncSession, case_worker_id: str, *, limit: int = 10
) -> list[tuple[FollowUp, Placement]]:
    """A case worker's follow-ups not yet done, soonest first (those already due first of all)."""
    rows = await session.execute(
        select(FollowUp, Placement)
        .join(Placement, Placement.id == FollowUp.placement_id)  # type: ignore[arg-type]
        .where(
            Placement.case_worker_id == case_worker_id,
            Placement.case_code.is_not(None),  # type: ignore[union-attr]
            FollowUp.done_at.is_(None),  # type: ignore[union-attr]
        )
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(limit)
    )
    return [(follow_up, placement) for follow_up, placement in rows.all()]


async def get_follow_up(session: AsyncSession, viewer: Viewer, follow_up_id: str) -> FollowUp:
    """The follow-up, for the case's workers only: NotFound for anyone else."""
    follow_up = await session.get(FollowUp, follow_up_id, populate_existing=True)
    placement = await session.get(Placement, follow_up.placement_id) if follow_up is not None else None
    if follow_up is None or placement is None or not is_case_side(viewer, placement):
        raise NotFound("not_found", "No such follow-up.")
    return follow_up


async def mark_follow_up_done(
    session: AsyncSession, viewer: Viewer, follow_up_id: str, now: datetime | None = None
) -> FollowUp:
    """The case worker checked on the person: done once (a second mark is 409 `follow_up_done`)."""
    await get_follow_up(session, viewer, follow_up_id)
    stmt = (
        update(FollowUp)
        .where(FollowUp.id == follow_up_id, FollowUp.done_at.is_(None))  # type: ignore[union-attr]
        .values(done_at=now or utcnow(), done_by=viewer.user_id)
        .returning(FollowUp)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    done = (await session.execute(stmt)).scalar_one_or_none()
    if done is None:
        await session.rollback()
        raise Conflict("follow_up_done", "This follow-up is already marked done.")
    await session.commit()
    return done


# --- address grants ----------------------------------------------------------------------------------------


async def address_grants(
    session: AsyncSession, viewer: Viewer, *, after: timedelta, now: datetime | None = None
) -> dict[str, str]:
    """Where the viewer's organisation's cases are staying (DESIGN.md, Visibility): a placement grants its case
    workers the facility's address while the stay lasts and `after` its end, then never. {facility_id: grounds}."""
    if not viewer.is_("case_worker"):
        return {}
    now = now or utcnow()
    rows = await session.execute(
        select(Placement.facility_id, Placement.id)
        .where(
            Placement.case_org_id == viewer.organisation_id,
            Placement.case_code.is_not(None),  # type: ignore[union-attr]
            or_(Placement.ended_at.is_(None), Placement.ended_at > now - after),  # type: ignore[union-attr,operator]
        )
        .order_by(Placement.started_at)
    )
    return {facility_id: f"placement:{placement_id}" for facility_id, placement_id in rows.all()}


# --- retention ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unlinked:
    """How many rows of each kind lost their case link in one sweep: counts, never which."""

    placements: int
    holds: int

    @property
    def total(self) -> int:
        return self.placements + self.holds


async def _only_one_sweeper(session: AsyncSession) -> bool:
    """PostgreSQL: one process at a time runs the step (the others find the lock taken and skip this round); the
    conditional UPDATEs below would act once anyway, this keeps one audit entry per round. SQLite's BEGIN
    IMMEDIATE already serialises every writer."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtextextended('placement_retention', 0))"))
    return bool(got)


async def unlink_expired(session: AsyncSession, retention: timedelta, now: datetime | None = None) -> Unlinked:
    """Remove the case link of ended placements and closed holds older than `retention`.

    Left uncommitted: the caller writes the audit entry and commits both together, or rolls back."""
    now = now or utcnow()
    cutoff = now - retention
    if not await _only_one_sweeper(session):
        return Unlinked(0, 0)
    placements = await session.execute(
        update(Placement)
        .where(
            Placement.ended_at.is_not(None),  # type: ignore[union-attr]
            Placement.ended_at <= cutoff,  # type: ignore[operator]
            or_(Placement.case_code.is_not(None), Placement.case_worker_id.is_not(None)),  # type: ignore[union-attr]
        )
        .values(case_code=None, case_worker_id=None, unlinked_at=now)
        .returning(Placement.id)
        .execution_options(synchronize_session=False)
    )
    placement_count = len(placements.all())
    holds = await session.execute(
        update(Hold)
        .where(
            and_(
                Hold.status.not_in(ACTIVE_STATUSES),  # type: ignore[attr-defined]
                Hold.case_code.is_not(None),  # type: ignore[union-attr]
                func.coalesce(Hold.ended_at, Hold.updated_at) <= cutoff,
            )
        )
        .values(case_code=None)
        .returning(Hold.id)
        .execution_options(synchronize_session=False)
    )
    return Unlinked(placement_count, len(holds.all()))
