"""Occupancy over time, rebuilt from the pool history (every change keeps its before and after counts), and the
length and turnover of stays (placements), counts only."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.models import BedPool, Facility, PoolChange
from beds.placements_models import Placement


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


# --- stays (placements) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StayFigures:
    """Stays that ended in a report's window, counts only: how many, their average length, and turnover (stays
    ended per bed per 30 days, over the beds of the same facilities now)."""

    ended: int
    beds: int
    days: int
    stay_hours_total: int

    @property
    def average_stay_days(self) -> float | None:
        return round(self.stay_hours_total / self.ended / 24, 1) if self.ended else None

    @property
    def turnover_per_bed_30_days(self) -> float | None:
        return round(self.ended / self.beds * 30 / self.days, 2) if self.beds and self.days else None


def stay_figures(stays: Iterable[tuple[datetime, datetime]], *, beds: int, days: int) -> StayFigures:
    """Pure: the figures of stays given as (start, end)."""
    spans = [max(0, int((end - start).total_seconds() // 3600)) for start, end in stays]
    return StayFigures(ended=len(spans), beds=beds, days=days, stay_hours_total=sum(spans))


async def stay_report(
    session: AsyncSession,
    *,
    organisation_id: str | None = None,
    province: str | None = None,
    days: int = 30,
    now: datetime | None = None,
) -> StayFigures:
    """The stays ended in the last `days` days in the facilities of an organisation (or the network), by
    province; no case code is read."""
    now = now or datetime.now(UTC)
    facilities = select(Facility.id).where(Facility.active.is_(True))  # type: ignore[attr-defined]
    if organisation_id:
        facilities = facilities.where(Facility.organisation_id == organisation_id)
    if province:
        facilities = facilities.where(Facility.province == province)
    beds = await session.scalar(
        select(func.coalesce(func.sum(BedPool.capacity), 0)).where(BedPool.facility_id.in_(facilities))  # type: ignore[attr-defined]
    )
    rows = await session.execute(
        select(Placement.started_at, Placement.ended_at).where(
            Placement.facility_id.in_(facilities),  # type: ignore[attr-defined]
            Placement.ended_at > now - timedelta(days=days),  # type: ignore[operator]
            Placement.ended_at <= now,  # type: ignore[operator]
        )
    )
    return stay_figures(((s, e) for s, e in rows.all()), beds=int(beds or 0), days=days)
