"""Six weeks of past reports for each demo pool, so the occupancy report (beds/reports.py, rebuilt from the
pool history) shows the network as it would have been, not 0 % before the day the demo was seeded.

The pool joins the network through `beds/pools.py` `move_counts` (dated six weeks ago) and its last report (the
counts the board shows now) goes through it too. The daily reports between them are written as history rows in
one insert per pool: they start and end at the count the pool joined with, so the pool's row, which only the two
domain calls move, always agrees with its history. (One `move_counts` per past report took minutes on SQLite.)
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from beds.models import PoolChange
from beds.pools import move_counts

HISTORY_DAYS = 42


def past_levels(rng: random.Random, *, capacity: int, start_level: int, days: int) -> list[int]:
    """Occupied beds reported on each day 1 .. days-1: a walk of arrivals and departures between a third of the
    capacity and all of it, pulled back to `start_level` by the last day (a bridge, so the pool ends where its
    row is)."""
    floor = min(start_level, max(1, capacity // 3))
    swing = max(1, capacity // 6)
    level, levels = start_level, []
    for day in range(1, days):
        left = days - 1 - day
        if left == 0:
            level = start_level
        else:
            # Further than `left` small steps from the start level: walk back toward it.
            pull = (start_level - level) // max(1, left // 3)
            level = min(capacity, max(floor, level + rng.randint(-swing, swing) + pull))
        levels.append(level)
    return levels


async def report_history(
    session: AsyncSession,
    pool_id: str,
    *,
    capacity: int,
    occupied: int,
    out_of_service: int,
    until: datetime,
    rng: random.Random,
    days: int = HISTORY_DAYS,
) -> None:
    """The pool (just added, capacity 0) joins the network `days` before `until`, reports its occupied beds about
    once a day, and at `until` reports today's counts. The caller commits."""
    # Joined one bed away from today's count, so today's report moves a count (and dates the facility's report).
    start_level = occupied - 1 if occupied > 0 else 1
    start = until - timedelta(days=days)
    await move_counts(
        session, pool_id, capacity=capacity, occupied=start_level, actor_user_id=None, reason="seed", now=start
    )
    before = start_level
    rows = []
    for day, level in enumerate(past_levels(rng, capacity=capacity, start_level=start_level, days=days), start=1):
        if level == before:
            continue
        rows.append(
            {
                "pool_id": pool_id,
                "actor_user_id": None,
                "reason": "adjust",
                "at": start + timedelta(days=day, minutes=rng.randint(-180, 180)),
                "capacity_before": capacity,
                "occupied_before": before,
                "out_of_service_before": 0,
                "held_before": 0,
                "capacity_after": capacity,
                "occupied_after": level,
                "out_of_service_after": 0,
                "held_after": 0,
            }
        )
        before = level
    if rows:
        await session.execute(insert(PoolChange), rows)
    await move_counts(
        session,
        pool_id,
        occupied=occupied - start_level,
        out_of_service=out_of_service,
        actor_user_id=None,
        reason="adjust",
        now=until,
    )
