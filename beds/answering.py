"""When a facility answers: round the clock, or hours per weekday in the facility's own zone. `answers_at` is the
pure rule (the settings form and the board's "answers now" filter both ask it); `answering_now` reads the rows."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.answering_models import FacilityAnswering
from beds.errors import Invalid

WEEKDAYS = range(7)  # 0 = Monday, as datetime.weekday()

# weekday -> (start, end) in local time; an end at or before its start runs past midnight into the next day.
Hours = dict[int, tuple[time, time]]


def parse_clock(text: str) -> time:
    try:
        hour, minute = text.strip().split(":")
        return time(int(hour), int(minute))
    except ValueError as exc:
        raise Invalid("invalid_time", "Write the time as HH:MM, for example 08:30.") from exc


def hours_from_json(raw: dict) -> Hours:
    return {int(day): (parse_clock(span[0]), parse_clock(span[1])) for day, span in (raw or {}).items()}


def hours_to_json(hours: Hours) -> dict[str, list[str]]:
    return {str(day): [start.strftime("%H:%M"), end.strftime("%H:%M")] for day, (start, end) in sorted(hours.items())}


def _within(day_start: datetime, span: tuple[time, time], at: datetime) -> bool:
    start = day_start.replace(hour=span[0].hour, minute=span[0].minute)
    end = day_start.replace(hour=span[1].hour, minute=span[1].minute)
    if end <= start:
        end += timedelta(days=1)
    return start <= at < end


def answers_at(round_the_clock: bool, hours: Hours, at: datetime, zone: ZoneInfo) -> bool:
    """True if someone answers at `at` (aware): today's hours, or yesterday's when they run past midnight."""
    if round_the_clock:
        return True
    local = at.astimezone(zone).replace(tzinfo=None)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for day_start in (today, today - timedelta(days=1)):
        span = hours.get(day_start.weekday())
        if span is not None and _within(day_start, span, local):
            return True
    return False


async def answering_now(session: AsyncSession, facility_ids: list[str], now: datetime) -> set[str]:
    """The facilities of `facility_ids` that answer at `now`. One that never said when it answers is not
    among them: "answers now" shows only those that say so."""
    rows = await session.execute(
        select(FacilityAnswering).where(FacilityAnswering.facility_id.in_(facility_ids))  # type: ignore[attr-defined]
    )
    return {
        row.facility_id
        for row in rows.scalars().all()
        if answers_at(row.round_the_clock, hours_from_json(row.hours), now, ZoneInfo(row.time_zone))
    }
