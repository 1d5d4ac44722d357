"""Standing agreements: a shelter keeps some beds of a pool for one named partner organisation's holds,
confirmed without asking. Only that partner's holds are confirmed at once (so only it gets the address
without the shelter acting), and there is at most one active agreement per pool and partner: a unique
index on the active rows, so two concurrent creations cannot both win.

A hold counts its beds against the agreement with a conditional UPDATE (`take_agreement_beds`) inside the
hold's own transaction, after its pool row: the lock order of beds/holds.py.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Forbidden, Invalid, NotFound
from beds.holds_models import Agreement, AgreementScope
from beds.models import BedPool, Facility
from beds.timeutil import utcnow
from beds.visibility import Viewer

NOTE_MAX = 500


async def take_agreement_beds(
    session: AsyncSession, pool_id: str, beds: int, scope: str, *, partner_org_id: str
) -> str | None:
    """Count `beds` against the pool's standing agreement with `partner_org_id` if they fit under it; the
    agreement's id, or None. An agreement without a named partner confirms nothing.

    One conditional UPDATE: concurrent requests serialise on the agreement row and the limit holds.
    """
    stmt = (
        update(Agreement)
        .where(
            Agreement.pool_id == pool_id,
            Agreement.partner_org_id == partner_org_id,
            Agreement.active.is_(True),  # type: ignore[attr-defined]
            Agreement.scope.in_([scope, AgreementScope.ALL.value]),  # type: ignore[attr-defined]
            Agreement.beds_in_use + beds <= Agreement.beds,
        )
        .values(beds_in_use=Agreement.beds_in_use + beds)
        .returning(Agreement.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().first()


async def return_agreement_beds(session: AsyncSession, agreement_id: str, beds: int) -> None:
    await session.execute(
        update(Agreement)
        .where(Agreement.id == agreement_id, Agreement.beds_in_use >= beds)
        .values(beds_in_use=Agreement.beds_in_use - beds)
        .execution_options(synchronize_session=False)
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


async def own_pools(session: AsyncSession, viewer: Viewer) -> list[tuple[BedPool, Facility]]:
    """The pools of the viewer's own facilities, the ones an agreement of theirs may keep beds of."""
    rows = await session.execute(
        select(BedPool, Facility)
        .join(Facility, Facility.id == BedPool.facility_id)  # type: ignore[arg-type]
        .where(Facility.organisation_id == viewer.organisation_id)
        .order_by(Facility.name, BedPool.profile)
    )
    return [(pool, facility) for pool, facility in rows.all()]
