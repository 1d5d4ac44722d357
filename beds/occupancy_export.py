"""Occupancy per night for a period, per facility or per city and bed profile: the funders' export (issue 14).

A night's counts are the pool's state at the end of that day in the facility's own time zone, rebuilt from the
pool history (every change keeps its counts before and after). Nights not over yet are left out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Invalid
from beds.models import BedPool, Facility, PoolChange

PERIOD_DAYS_MAX = 366
GROUPINGS = ("facility", "city")
COLUMNS = ("place", "province", "city", "profile", "night", "capacity", "occupied", "held")


@dataclass(frozen=True)
class NightRow:
    place: str  # the facility's name, or "City, PR" for the city's facilities together
    province: str
    city: str
    profile: str
    night: date
    capacity: int
    occupied: int
    held: int

    def as_csv(self) -> list[str]:
        return [self.place, self.province, self.city, self.profile, self.night.isoformat(),
                str(self.capacity), str(self.occupied), str(self.held)]  # fmt: skip


def check_period(start: date, end: date, by: str) -> None:
    if end < start:
        raise Invalid("invalid_period", "The period ends before it starts.")
    if (end - start).days + 1 > PERIOD_DAYS_MAX:
        raise Invalid("invalid_period", f"A period is at most {PERIOD_DAYS_MAX} nights.")
    if by not in GROUPINGS:
        raise Invalid("invalid_grouping", "Group by facility or by city.")


def _counts_at(pool: BedPool, changes: list[PoolChange], stamps: list[datetime], at: datetime) -> tuple[int, int, int]:
    i = bisect_right(stamps, at)
    if i > 0:
        c = changes[i - 1]
        return c.capacity_after, c.occupied_after, c.held_after
    if changes:
        c = changes[0]
        return c.capacity_before, c.occupied_before, c.held_before
    return pool.capacity, pool.occupied, pool.held


async def nightly_occupancy(
    session: AsyncSession,
    start: date,
    end: date,
    *,
    by: str,
    zone_of: Callable[[str], tzinfo],
    now: datetime,
) -> list[NightRow]:
    check_period(start, end, by)
    facilities = {
        f.id: f
        for f in (await session.execute(select(Facility).where(Facility.active.is_(True)))).scalars()  # type: ignore[attr-defined]
    }
    pools = (
        (
            await session.execute(select(BedPool).where(BedPool.facility_id.in_(list(facilities))))  # type: ignore[attr-defined]
        )
        .scalars()
        .all()
    )
    # From a day before the period (the earliest zone's midnight is still that day in UTC), to its last night.
    since = datetime.combine(start - timedelta(days=1), time.min, tzinfo=now.tzinfo)
    changes: dict[str, list[PoolChange]] = {}
    rows = await session.execute(
        select(PoolChange)
        .where(PoolChange.pool_id.in_([p.id for p in pools]), PoolChange.at >= since)  # type: ignore[attr-defined]
        .order_by(PoolChange.pool_id, PoolChange.at, PoolChange.id)
    )
    for change in rows.scalars():
        changes.setdefault(change.pool_id, []).append(change)
    totals: dict[tuple[str, str, str, str, date], list[int]] = {}
    for pool in pools:
        facility = facilities[pool.facility_id]
        zone = zone_of(facility.province)
        own = changes.get(pool.id, [])
        stamps = [c.at for c in own]
        place = facility.name if by == "facility" else f"{facility.city}, {facility.province}"
        night = start
        while night <= end:
            at = datetime.combine(night + timedelta(days=1), time.min, tzinfo=zone)
            if at > now:
                break
            key = (place, facility.province, facility.city, str(pool.profile), night)
            counts = _counts_at(pool, own, stamps, at)
            total = totals.setdefault(key, [0, 0, 0])
            for k in range(3):
                total[k] += counts[k]
            night += timedelta(days=1)
    return [NightRow(*key, *values) for key, values in sorted(totals.items(), key=lambda kv: (kv[0][4], kv[0][:4]))]
