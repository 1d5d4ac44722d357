"""The demo's answer at any hour: the two demo approvers on call for tonight and the next nights, and each demo
shelter saying when it answers (the first round the clock, the others office hours) with its on-call addresses."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from beds.answering import hours_to_json, parse_clock
from beds.answering_models import FacilityAnswering
from beds.timeutil import utcnow
from exchange.demo.network import DemoNetwork
from exchange.oncall.ladder import roster_night
from exchange.oncall.models import RosterNight
from exchange.settings import Settings
from exchange.web.localtime import zone_for

NIGHTS = 7


async def seed_on_call(session: AsyncSession, net: DemoNetwork) -> None:
    tonight = roster_night(utcnow(), ZoneInfo(Settings().roster_time_zone))
    approvers = [net.users[name] for name in ("approver", "approver2") if name in net.users]
    admin = next((u for u in net.users.values() if "network_admin" in u.roles), approvers[0] if approvers else None)
    if admin is None:
        return
    for offset in range(NIGHTS):
        # Turns: one approver a night, the other the next.
        on_call = approvers[offset % len(approvers)]
        session.add(RosterNight(night=tonight + timedelta(days=offset), user_id=on_call.id, set_by=admin.id))
    office = {day: (parse_clock("08:30"), parse_clock("17:00")) for day in range(5)}
    for index, facility in enumerate(net.facilities):
        session.add(
            FacilityAnswering(
                facility_id=facility.id,
                round_the_clock=index % 3 != 1,
                hours={} if index % 3 != 1 else hours_to_json(office),
                contacts=[
                    *([facility.oncall_email] if facility.oncall_email else []),
                    f"night-{index + 1}@refuge.demo",
                ],
                time_zone=zone_for(facility.province).key,
            )
        )
    await session.commit()
