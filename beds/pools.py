"""Moving a pool's counts: adjust, set with a version, surge beds.

Each change is one transaction with its history row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Conflict, Invalid, NotFound
from beds.holds_models import Agreement
from beds.models import BedPool, Facility, PoolChange, SurgeBeds
from beds.timeutil import utcnow

# Kept beds not in use (standing agreements) are not free: beds/agreements.py.
FREE = BedPool.capacity - BedPool.occupied - BedPool.out_of_service - BedPool.held - BedPool.kept + BedPool.kept_in_use
# Surge beds answer an emergency (a cold snap, a mass rescue); beds needed longer are capacity, set as such.
SURGE_MAX = timedelta(days=14)
SURGE_MAX_BEDS = 500
# The most beds a pool's counts say, and the most one change moves: the forms' ceiling, for the API too.
POOL_MAX_BEDS = 2000


@dataclass(frozen=True)
class Counts:
    """A pool's four counts; its free beds are what capacity has left over."""

    capacity: int
    occupied: int
    out_of_service: int
    held: int

    @classmethod
    def of(cls, pool: BedPool) -> Counts:
        return cls(pool.capacity, pool.occupied, pool.out_of_service, pool.held)

    def columns(self, side: str) -> dict[str, int]:
        """As the history's columns of one side: `capacity_before`, ... or `capacity_after`, ..."""
        return {f"{name}_{side}": value for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Idempotency:
    """A write's Idempotency-Key, scoped to the user who sent it, and the SHA-256 of its canonical body."""

    user_id: str
    key: str
    request_hash: str


def record_change(
    session: AsyncSession,
    pool: BedPool,
    before: Counts,
    *,
    actor_user_id: str | None,
    reason: str,
    idempotency: Idempotency | None = None,
) -> None:
    session.add(
        PoolChange(
            pool_id=pool.id,
            actor_user_id=actor_user_id,
            reason=reason,
            at=pool.updated_at,
            **before.columns("before"),
            **Counts.of(pool).columns("after"),
            version_after=pool.version,
            idempotency_user_id=idempotency.user_id if idempotency else None,
            idempotency_key=idempotency.key if idempotency else None,
            request_hash=idempotency.request_hash if idempotency else None,
        )
    )


@dataclass(frozen=True)
class PoolWrite:
    """A pool as a write left it; `replayed` when an Idempotency-Key answered with the first result instead."""

    pool: BedPool
    replayed: bool = False


async def replay(session: AsyncSession, idempotency: Idempotency | None) -> PoolWrite | None:
    """The pool as the change this user's key already made left it, if any; 422 when the key came with another
    body. The answer is rebuilt from the history row (counts, version and time after), not read from the pool,
    so a replay answers what the first request did however the pool moved since."""
    if idempotency is None:
        return None
    change = (
        await session.execute(
            select(PoolChange).where(
                PoolChange.idempotency_user_id == idempotency.user_id,
                PoolChange.idempotency_key == idempotency.key,
            )
        )
    ).scalar_one_or_none()
    if change is None:
        return None
    if change.request_hash != idempotency.request_hash:
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used for another request.")
    pool = await get_pool(session, change.pool_id)
    snapshot = BedPool(
        id=pool.id,
        facility_id=pool.facility_id,
        profile=pool.profile,
        capacity=change.capacity_after,
        occupied=change.occupied_after,
        out_of_service=change.out_of_service_after,
        held=change.held_after,
        # History does not record kept beds: the pool's current ones, so the answer's free beds leave them out.
        kept=pool.kept,
        kept_in_use=pool.kept_in_use,
        version=change.version_after or pool.version,
        updated_at=change.at,
    )
    return PoolWrite(snapshot, replayed=True)


async def _once(
    session: AsyncSession, idempotency: Idempotency | None, write: Callable[[], Awaitable[BedPool]]
) -> PoolWrite:
    """Run `write` (which commits) once per key: a concurrent duplicate hits the unique constraint, rolls back
    and answers the winner's result."""
    if (replayed := await replay(session, idempotency)) is not None:
        return replayed
    try:
        return PoolWrite(await write())
    except (IntegrityError, Conflict):
        # The duplicate may also have found the pool already moved by the winner (no bed left): same answer.
        await session.rollback()
        if (replayed := await replay(session, idempotency)) is not None:
            return replayed
        raise


async def get_pool(session: AsyncSession, pool_id: str) -> BedPool:
    pool = await session.get(BedPool, pool_id)
    if pool is None:
        raise NotFound("not_found", "No such bed pool.")
    return pool


async def move_counts(
    session: AsyncSession,
    pool_id: str,
    *,
    capacity: int = 0,
    occupied: int = 0,
    out_of_service: int = 0,
    held: int = 0,
    kept: int = 0,
    kept_in_use: int = 0,
    actor_user_id: str | None,
    reason: str,
    now: datetime | None = None,
    idempotency: Idempotency | None = None,
) -> BedPool:
    """Apply deltas in one conditional UPDATE so concurrent writers can never overbook.

    The WHERE clause is the invariant (occupied + out of service + held + kept unused <= capacity); the row
    lock PostgreSQL takes for the UPDATE (or SQLite's write lock) makes the check and the write one step.
    Raises Conflict with the current free count. The caller commits. `now` is for history written after the
    fact (the demo's past reports). `kept` / `kept_in_use` move a standing agreement's beds (beds/agreements.py).
    A change that frees beds first gives back kept beds an agreement lent to a claim (`refill_kept`).
    """
    now = now or utcnow()
    new_free = FREE + capacity - occupied - out_of_service - held - kept + kept_in_use
    stmt = (
        update(BedPool)
        .where(
            and_(
                BedPool.id == pool_id,
                BedPool.capacity + capacity >= 0,
                BedPool.occupied + occupied >= 0,
                BedPool.out_of_service + out_of_service >= 0,
                BedPool.held + held >= 0,
                BedPool.kept_in_use + kept_in_use >= 0,
                BedPool.kept_in_use + kept_in_use <= BedPool.kept + kept,
                new_free >= 0,
            )
        )
        .values(
            capacity=BedPool.capacity + capacity,
            occupied=BedPool.occupied + occupied,
            out_of_service=BedPool.out_of_service + out_of_service,
            held=BedPool.held + held,
            kept=BedPool.kept + kept,
            kept_in_use=BedPool.kept_in_use + kept_in_use,
            version=BedPool.version + 1,
            updated_at=now,
        )
        .returning(BedPool)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    pool = (await session.execute(stmt)).scalar_one_or_none()
    if pool is None:
        current = await session.get(BedPool, pool_id, populate_existing=True)
        if current is None:
            raise NotFound("not_found", "No such bed pool.")
        if occupied < 0 and current.occupied + occupied < 0:
            raise Invalid("invalid_counts", "Occupied cannot go below zero.", free=current.free)
        if out_of_service < 0 and current.out_of_service + out_of_service < 0:
            raise Invalid("invalid_counts", "Out of service cannot go below zero.", free=current.free)
        raise Conflict(
            "insufficient_capacity",
            f"Only {current.free} bed(s) free in this pool.",
            free=current.free,
        )
    before = Counts(
        pool.capacity - capacity,
        pool.occupied - occupied,
        pool.out_of_service - out_of_service,
        pool.held - held,
    )
    record_change(session, pool, before, actor_user_id=actor_user_id, reason=reason, idempotency=idempotency)
    if occupied or out_of_service or capacity:
        await _touch_facility(session, pool.facility_id, now)
    if pool.kept_in_use > 0 and pool.free > 0:
        pool = await refill_kept(session, pool, now)
    return pool


async def refill_kept(session: AsyncSession, pool: BedPool, now: datetime) -> BedPool:
    """Free beds go first to agreements whose kept beds a claim left occupied (`beds_lent`), oldest agreement
    first, until each keeps its K again. Runs under the pool's row lock (the caller's UPDATE took it), so the
    agreements, locked after their pool as everywhere, cannot move meanwhile; one conditional UPDATE each."""
    lenders = (
        await session.execute(
            select(Agreement)
            .where(
                Agreement.pool_id == pool.id,
                Agreement.active.is_(True),  # type: ignore[attr-defined]
                Agreement.beds_lent > 0,  # type: ignore[operator]
            )
            .order_by(Agreement.created_at, Agreement.id)  # type: ignore[arg-type]
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalars()
    for agreement in list(lenders):
        back = min(agreement.beds_lent, pool.free)
        if back <= 0:
            break
        await session.execute(
            update(Agreement)
            .where(Agreement.id == agreement.id, Agreement.beds_lent >= back)
            .values(beds_lent=Agreement.beds_lent - back)
            .execution_options(synchronize_session=False)
        )
        agreement.beds_lent -= back
        before = Counts.of(pool)
        pool = (
            await session.execute(
                update(BedPool)
                .where(BedPool.id == pool.id, BedPool.kept_in_use >= back, FREE - back >= 0)
                .values(kept_in_use=BedPool.kept_in_use - back, version=BedPool.version + 1, updated_at=now)
                .returning(BedPool)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
        ).scalar_one()
        record_change(session, pool, before, actor_user_id=None, reason="kept_refilled")
    return pool


async def _touch_facility(session: AsyncSession, facility_id: str, now: datetime) -> None:
    await session.execute(update(Facility).where(Facility.id == facility_id).values(updated_at=now))


async def adjust(
    session: AsyncSession,
    pool_id: str,
    *,
    occupied_delta: int,
    out_of_service_delta: int,
    actor_user_id: str,
    idempotency: Idempotency | None = None,
    version: int | None = None,
) -> PoolWrite:
    """Move the counts by these deltas; with `version`, only if the pool is still at the version the person
    tapped on (a page's Arrival or Undo), else Conflict `version_conflict` with the current counts."""
    if occupied_delta == 0 and out_of_service_delta == 0:
        raise Invalid("invalid_counts", "Nothing to adjust: both deltas are zero.")
    _within_ceiling("invalid_counts", occupied_delta, out_of_service_delta)

    async def write() -> BedPool:
        if version is not None:
            await _expect_version(session, pool_id, version)
        pool = await move_counts(
            session,
            pool_id,
            occupied=occupied_delta,
            out_of_service=out_of_service_delta,
            actor_user_id=actor_user_id,
            reason="adjust",
            idempotency=idempotency,
        )
        await session.commit()
        return pool

    return await _once(session, idempotency, write)


async def _expect_version(session: AsyncSession, pool_id: str, version: int) -> None:
    """Lock the pool (PostgreSQL; SQLite's write lock is already held) and refuse if it moved past `version`: the
    lock holds until the write commits, so the check and the write are one step."""
    current = (
        await session.execute(select(BedPool).where(BedPool.id == pool_id).with_for_update())
    ).scalar_one_or_none()
    if current is None:
        raise NotFound("not_found", "No such bed pool.")
    if current.version != version:
        counts = {"version": current.version, "occupied": current.occupied, "free": current.free}
        await session.rollback()
        raise Conflict(
            "version_conflict",
            f"The pool changed since version {version}; it is now at version {counts['version']}.",
            **counts,
        )


def _within_ceiling(code: str, *counts: int) -> None:
    """No count or change of a count above the pool ceiling the forms have (and no integer overflow below it)."""
    if any(abs(count) > POOL_MAX_BEDS for count in counts):
        raise Invalid(code, f"A pool has at most {POOL_MAX_BEDS} beds.")


async def set_counts(
    session: AsyncSession,
    pool_id: str,
    *,
    capacity: int,
    occupied: int,
    out_of_service: int,
    version: int,
    actor_user_id: str,
) -> BedPool:
    """Replace the counts a shelter reports, if nobody changed the pool since it read `version`."""
    if min(capacity, occupied, out_of_service) < 0:
        raise Invalid("invalid_counts", "Counts cannot be negative.")
    _within_ceiling("invalid_counts", capacity, occupied, out_of_service)
    now = utcnow()
    stmt = (
        update(BedPool)
        .where(
            BedPool.id == pool_id,
            BedPool.version == version,
            BedPool.held + BedPool.kept - BedPool.kept_in_use + occupied + out_of_service <= capacity,
        )
        .values(
            capacity=capacity,
            occupied=occupied,
            out_of_service=out_of_service,
            version=BedPool.version + 1,
            updated_at=now,
        )
        .returning(BedPool)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    current = await session.get(BedPool, pool_id)
    if current is None:
        raise NotFound("not_found", "No such bed pool.")
    before = Counts.of(current)
    pool = (await session.execute(stmt)).scalar_one_or_none()
    if pool is None:
        await session.refresh(current)
        current_version, current_held, current_free = current.version, current.held, current.free
        current_kept = current.kept_unused
        await session.rollback()
        if current_version != version:
            raise Conflict(
                "version_conflict",
                f"The pool changed since version {version}; it is now at version {current_version}.",
                version=current_version,
            )
        raise Conflict(
            "insufficient_capacity",
            f"{current_held} bed(s) are held and {current_kept} kept; occupied + out of service + held + kept "
            "cannot exceed capacity.",
            free=current_free,
        )
    record_change(session, pool, before, actor_user_id=actor_user_id, reason="set")
    await _touch_facility(session, pool.facility_id, now)
    if pool.kept_in_use > 0 and pool.free > 0:
        pool = await refill_kept(session, pool, now)
    await session.commit()
    return pool


async def add_surge(
    session: AsyncSession,
    pool_id: str,
    *,
    beds: int,
    expires_at: datetime,
    reason: str,
    actor_user_id: str,
    idempotency: Idempotency | None = None,
) -> PoolWrite:
    """Open `beds` temporary beds in the pool until `expires_at`, at most `SURGE_MAX` from now: the pool after."""
    if not 1 <= beds <= SURGE_MAX_BEDS:
        raise Invalid("invalid_beds", f"Surge beds must be between 1 and {SURGE_MAX_BEDS}.")
    if expires_at.tzinfo is None:
        raise Invalid("invalid_expiry", "expires_at needs a UTC offset.")
    now = utcnow()
    if expires_at <= now:
        raise Invalid("invalid_expiry", "Surge beds must expire in the future.")
    if expires_at > now + SURGE_MAX:
        raise Invalid("invalid_expiry", f"Surge beds last at most {SURGE_MAX.days} days.")

    async def write() -> BedPool:
        pool = await move_counts(
            session, pool_id, capacity=beds, actor_user_id=actor_user_id, reason="surge_added", idempotency=idempotency
        )
        surge = SurgeBeds(
            pool_id=pool_id,
            beds=beds,
            beds_remaining=beds,
            reason=reason,
            created_by=actor_user_id,
            expires_at=expires_at,
        )
        session.add(surge)
        await session.commit()
        return pool

    return await _once(session, idempotency, write)


async def expire_surges(session: AsyncSession, now: datetime | None = None) -> list[BedPool]:
    """Withdraw expired surge beds. Beds still occupied or held stay until they are free again."""
    now = now or utcnow()
    due = (
        (await session.execute(select(SurgeBeds.id).where(SurgeBeds.expires_at <= now, SurgeBeds.beds_remaining > 0)))
        .scalars()
        .all()
    )
    changed: list[BedPool] = []
    for surge_id in due:
        surge = await session.get(SurgeBeds, surge_id, with_for_update=True, populate_existing=True)
        if surge is None or surge.beds_remaining <= 0:
            await session.rollback()
            continue
        pool = await session.get(BedPool, surge.pool_id, with_for_update=True, populate_existing=True)
        assert pool is not None
        withdraw = min(surge.beds_remaining, max(pool.free, 0))
        if withdraw == 0:
            await session.rollback()
            continue
        pool = await move_counts(session, pool.id, capacity=-withdraw, actor_user_id=None, reason="surge_expired")
        surge.beds_remaining -= withdraw
        session.add(surge)
        await session.commit()
        changed.append(pool)
    return changed


async def confirm_counts(session: AsyncSession, facility_id: str) -> list[BedPool]:
    """A shelter says its counts are still right: the facility is no longer stale."""
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise NotFound("not_found", "No such facility.")
    await _touch_facility(session, facility_id, utcnow())
    await session.commit()
    rows = await session.execute(select(BedPool).where(BedPool.facility_id == facility_id))
    return list(rows.scalars().all())


async def stale_facilities(session: AsyncSession, organisation_id: str, stale_before: datetime) -> list[Facility]:
    rows = await session.execute(
        select(Facility).where(
            Facility.organisation_id == organisation_id,
            Facility.active.is_(True),  # type: ignore[attr-defined]
            Facility.updated_at < stale_before,  # type: ignore[operator]
        )
    )
    return list(rows.scalars().all())
