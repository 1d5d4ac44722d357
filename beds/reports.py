"""Occupancy over time, rebuilt from the pool history (every change keeps its before and after counts)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.models import BedPool, Facility, PoolChange


@dataclass(frozen=True)
class DayOccupancy:
    """The network (or a facility set) at the end of one day."""

    day: date
    capacity: int
    occupied: int
    held: int
    out_of_service: int

    @property
    def free(self) -> int:
        return self.capacity - self.occupied - self.held - self.out_of_service

    def held_as_not_free(self) -> DayOccupancy:
        """The day for a network-wide reader who is party to no police hold: held beds are beds not free, among
        the out-of-service ones, so a day of bulk allocations does not show as a jump in held beds (the history
        does not say which held beds were a police service's)."""
        return DayOccupancy(self.day, self.capacity, self.occupied, 0, self.out_of_service + self.held)

    @property
    def occupancy_percent(self) -> int:
        """Occupied and held beds over beds in service, rounded down."""
        in_service = self.capacity - self.out_of_service
        return (self.occupied + self.held) * 100 // in_service if in_service > 0 else 0


def _state_at(pool: BedPool, changes: list[PoolChange], stamps: list[datetime], at: datetime) -> tuple[int, ...]:
    """A pool's counts at `at`: after the last change up to then, else before the first change after it."""
    i = bisect_right(stamps, at)
    if i > 0:
        c = changes[i - 1]
        return (c.capacity_after, c.occupied_after, c.held_after, c.out_of_service_after)
    if changes:
        c = changes[0]
        return (c.capacity_before, c.occupied_before, c.held_before, c.out_of_service_before)
    return (pool.capacity, pool.occupied, pool.held, pool.out_of_service)


async def daily_occupancy(
    session: AsyncSession,
    *,
    organisation_id: str | None = None,
    province: str | None = None,
    days: int = 14,
    now: datetime | None = None,
) -> list[DayOccupancy]:
    """End-of-day totals for the last `days` days (today so far included), oldest first."""
    now = now or datetime.now(UTC)
    first_day = now.date() - timedelta(days=days - 1)
    facilities = select(Facility.id).where(Facility.active.is_(True))  # type: ignore[attr-defined]
    if organisation_id:
        facilities = facilities.where(Facility.organisation_id == organisation_id)
    if province:
        facilities = facilities.where(Facility.province == province)
    pools = (await session.execute(select(BedPool).where(BedPool.facility_id.in_(facilities)))).scalars().all()  # type: ignore[attr-defined]
    # Changes from the window's start only; the first of them carries the state before it.
    start = datetime.combine(first_day, time.min, tzinfo=UTC)
    rows = (
        await session.execute(
            select(PoolChange)
            .where(PoolChange.pool_id.in_([p.id for p in pools]), PoolChange.at >= start)  # type: ignore[attr-defined]
            .order_by(PoolChange.pool_id, PoolChange.at, PoolChange.id)
        )
    ).scalars()
    by_pool: dict[str, list[PoolChange]] = {}
    for change in rows:
        by_pool.setdefault(change.pool_id, []).append(change)
    report = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        end = min(datetime.combine(day, time.max, tzinfo=UTC), now)
        totals = [0, 0, 0, 0]
        for pool in pools:
            changes = by_pool.get(pool.id, [])
            state = _state_at(pool, changes, [c.at for c in changes], end)
            for k in range(4):
                totals[k] += state[k]
        report.append(DayOccupancy(day, *totals))
    return report
