"""Standing agreements: a shelter keeps K beds of a pool for one named partner organisation. Kept beds are not
free to anyone else; the partner's holds draw on them first (a hold wholly on kept beds is confirmed at once, so
only the partner gets the address without the shelter acting), and only when they are all in use do its holds
take free beds. At most one active agreement per pool and partner: a unique index on the active rows, so two
concurrent creations cannot both win.

The pool carries the totals (`kept`: the sum of K; `kept_in_use`: kept beds held or lent), so the invariant
occupied + out_of_service + held + kept - kept_in_use <= capacity is kept by beds/pools.py `move_counts`'s one
conditional UPDATE. An agreement's own counts move under its pool's row lock: every path here locks the pool
first, then the agreement (the lock order of beds/holds.py), so what is read of an agreement is still true when
the pool's UPDATE runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Forbidden, Invalid, NotFound
from beds.holds_models import Agreement, AgreementScope
from beds.models import BedPool, Facility
from beds.pools import move_counts
from beds.timeutil import utcnow
from beds.visibility import Viewer

NOTE_MAX = 500


async def lock_pool(session: AsyncSession, pool_id: str) -> BedPool:
    """The pool, its row locked until the transaction ends (SQLite: BEGIN IMMEDIATE already holds the lock)."""
    pool = (
        await session.execute(
            select(BedPool).where(BedPool.id == pool_id).with_for_update().execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if pool is None:
        raise NotFound("not_found", "No such bed pool.")
    return pool


@dataclass(frozen=True)
class KeptDraw:
    """What a partner's hold takes of its agreement: the agreement, and how many of the hold's beds are kept ones."""

    agreement_id: str | None
    beds: int


NO_DRAW = KeptDraw(None, 0)


async def draw_kept(session: AsyncSession, pool_id: str, beds: int, scope: str, *, partner_org_id: str) -> KeptDraw:
    """Count up to `beds` of a partner's new hold against the kept beds of its agreement on the pool: as many
    as are unused. The caller holds the pool's lock and moves the pool's `kept_in_use` by the answer's beds in
    the same transaction. An agreement without a named partner keeps nothing for anyone's holds."""
    agreement = (
        await session.execute(
            select(Agreement)
            .where(
                Agreement.pool_id == pool_id,
                Agreement.partner_org_id == partner_org_id,
                Agreement.active.is_(True),  # type: ignore[attr-defined]
                Agreement.scope.in_([scope, AgreementScope.ALL.value]),  # type: ignore[attr-defined]
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if agreement is None:
        return NO_DRAW
    take = min(beds, agreement.beds - agreement.beds_in_use - agreement.beds_lent)
    if take <= 0:
        return NO_DRAW
    taken = await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement.id, Agreement.beds_in_use + Agreement.beds_lent + take <= Agreement.beds)
        .values(beds_in_use=Agreement.beds_in_use + take)
        .returning(Agreement.id)
        .execution_options(synchronize_session=False)
    )
    return KeptDraw(agreement.id, take) if taken.first() is not None else NO_DRAW


async def give_back_kept(session: AsyncSession, agreement_id: str, beds: int) -> None:
    """A partner's hold ended: its kept beds are the agreement's again. They are counted as lent (still in the
    pool's `kept_in_use`) until the pool's next change gives them back as kept-unused, which `move_counts` does
    at once when there is room (a release always has room; a claim whose people occupy the beds may not).
    Nothing to do for an agreement ended since: its end took its beds out of the pool's totals. The caller holds
    the pool's lock."""
    await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement_id, Agreement.active.is_(True), Agreement.beds_in_use >= beds)  # type: ignore[attr-defined]
        .values(beds_in_use=Agreement.beds_in_use - beds, beds_lent=Agreement.beds_lent + beds)
        .execution_options(synchronize_session=False)
    )


def _needs_free(beds: int, free: int) -> Conflict:
    return Conflict(
        "kept_needs_free_beds",
        f"Keeping {beds} more bed(s) needs {beds} free bed(s); this pool has {max(free, 0)} free.",
        free=max(free, 0),
    )


async def create_agreement(
    session: AsyncSession,
    viewer: Viewer,
    *,
    pool_id: str,
    beds: int,
    partner_org_id: str,
    partner_exists: bool,
    scope: str = AgreementScope.ALL.value,
    note: str = "",
) -> Agreement:
    """A new agreement for `partner_org_id` (`partner_exists`: the caller found that organisation)."""
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
    if not partner_org_id or not partner_exists:
        raise Invalid("invalid_partner", "partner_org_id must name the partner organisation the beds are kept for.")
    if partner_org_id == facility.organisation_id:
        raise Invalid("invalid_partner", "An agreement keeps beds for another organisation than the shelter's own.")
    existing = (
        await session.execute(
            select(Agreement.id).where(
                Agreement.pool_id == pool_id,
                Agreement.partner_org_id == partner_org_id,
                Agreement.active.is_(True),  # type: ignore[attr-defined]
            )
        )
    ).first()
    if existing is not None:
        await session.rollback()
        raise _exists()
    try:
        await lock_pool(session, pool_id)
        await move_counts(session, pool_id, kept=beds, actor_user_id=viewer.user_id, reason="kept_set")
    except Conflict:
        free = (await session.get(BedPool, pool_id, populate_existing=True)).free  # type: ignore[union-attr]
        await session.rollback()
        raise _needs_free(beds, free) from None
    agreement = Agreement(
        pool_id=pool_id,
        facility_id=facility.id,
        partner_org_id=partner_org_id,
        beds=beds,
        scope=scope,
        note=note.strip()[:NOTE_MAX],
        created_by=viewer.user_id,
    )
    session.add(agreement)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent twin won the unique index on active (pool, partner) rows.
        await session.rollback()
        raise _exists() from None
    return agreement


def _exists() -> Conflict:
    return Conflict(
        "agreement_exists", "This pool already has an active standing agreement with this partner; end it first."
    )


async def _own_active(session: AsyncSession, viewer: Viewer, agreement_id: str, verb: str) -> Agreement:
    """The viewer's facility's agreement, read again under its pool's lock (so its counts hold until commit)."""
    agreement = await session.get(Agreement, agreement_id)
    facility = await session.get(Facility, agreement.facility_id) if agreement else None
    if agreement is None or facility is None or facility.organisation_id != viewer.organisation_id:
        raise NotFound("not_found", "No such agreement.")
    if not viewer.staffs(facility.organisation_id):
        raise Forbidden("forbidden", f"Only the facility's own staff may {verb} its agreements.")
    await lock_pool(session, agreement.pool_id)
    agreement = await session.get(Agreement, agreement_id, populate_existing=True, with_for_update=True)
    assert agreement is not None
    if not agreement.active:
        await session.rollback()
        raise Conflict("invalid_state", "This agreement has already ended.")
    return agreement


async def end_agreement(session: AsyncSession, viewer: Viewer, agreement_id: str) -> Agreement:
    """The agreement ends: its unused kept beds are free at once; beds its partner holds stay held (their holds
    go on, no longer drawing on the agreement)."""
    agreement = await _own_active(session, viewer, agreement_id, "end")
    await move_counts(
        session,
        agreement.pool_id,
        kept=-agreement.beds,
        kept_in_use=-(agreement.beds_in_use + agreement.beds_lent),
        actor_user_id=viewer.user_id,
        reason="kept_ended",
    )
    agreement.active = False
    agreement.beds_lent = 0
    agreement.ended_at = utcnow()
    session.add(agreement)
    await session.commit()
    return agreement


async def set_kept(session: AsyncSession, viewer: Viewer, agreement_id: str, beds: int) -> Agreement:
    """The shelter changes K. Raising it keeps more beds and needs that many free (409 `kept_needs_free_beds`);
    lowering it frees beds at once but never goes below what the partner's holds use (409 `kept_below_in_use`).
    Kept beds lent to a claim and not yet back are forgiven first when K goes down."""
    if isinstance(beds, bool) or not isinstance(beds, int) or beds < 1:
        raise Invalid("invalid_beds", "An agreement keeps at least 1 bed; end it to keep none.")
    agreement = await _own_active(session, viewer, agreement_id, "change")
    pool = await session.get(BedPool, agreement.pool_id)
    assert pool is not None
    # Read before a rollback expires them.
    capacity, free, in_use, lent, kept = (
        pool.capacity,
        pool.free,
        agreement.beds_in_use,
        agreement.beds_lent,
        agreement.beds,
    )
    if beds > capacity:
        await session.rollback()
        raise Invalid("invalid_beds", f"An agreement keeps between 1 and {capacity} bed(s) of this pool.")
    if beds < in_use:
        await session.rollback()
        raise Conflict(
            "kept_below_in_use",
            f"The partner's holds use {in_use} of the kept beds: the agreement can keep no fewer than {in_use} "
            "until they end.",
            in_use=in_use,
        )
    delta = beds - kept
    if delta == 0:
        await session.commit()
        return agreement
    forgiven = max(0, in_use + lent - beds)
    try:
        await move_counts(
            session,
            agreement.pool_id,
            kept=delta,
            kept_in_use=-forgiven,
            actor_user_id=viewer.user_id,
            reason="kept_set",
        )
    except Conflict:
        await session.rollback()
        raise _needs_free(delta, free) from None
    agreement.beds = beds
    agreement.beds_lent -= forgiven
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


async def own_pools(session: AsyncSession, viewer: Viewer) -> list[tuple[BedPool, Facility]]:
    """The pools of the viewer's own facilities, the ones an agreement of theirs may keep beds of."""
    rows = await session.execute(
        select(BedPool, Facility)
        .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
        .where(Facility.organisation_id == viewer.organisation_id)
        .order_by(Facility.name, BedPool.profile)
    )
    return [(pool, facility) for pool, facility in rows.all()]
