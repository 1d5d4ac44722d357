"""Demo data for placement fit (issue 13): resources for young adults (18-25), Indigenous-led and culturally
specific ones, each run by an organisation of its own, so the board's filters and the planner's preferences
have something to find. Names are invented."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from beds.facilities import add_pool, create_facility
from beds.models import FacilityKind, Profile, SecurityLevel
from beds.timeutil import utcnow
from exchange.accounts.models import OrgKind
from exchange.accounts.service import create_organisation
from exchange.demo.history import report_history

if TYPE_CHECKING:
    from exchange.demo.network import DemoNetwork

# (province, city, area, name, kind, pools, criteria)
FIT_RESOURCES: list[tuple[str, str, str, str, FacilityKind, list[tuple[Profile, int]], dict[str, Any]]] = [
    (
        "QC",
        "Montréal",
        "Centre-Sud",
        "Passerelle Jeunes Adultes",
        FacilityKind.TRANSITION_HOUSING,
        [(Profile.YOUNG_ADULT, 8)],
        {"genders": "women,men,nonbinary", "age_min": 18, "age_max": 25, "languages": "fr,en,es"},
    ),
    (
        "ON",
        "Toronto",
        "Downtown",
        "Next Step Young Adults",
        FacilityKind.YOUTH,
        [(Profile.YOUNG_ADULT, 10)],
        {"genders": "women,men,nonbinary", "age_min": 18, "age_max": 25, "languages": "en,fr,tl,so"},
    ),
    (
        "MB",
        "Winnipeg",
        "North End",
        "Wapi Healing Lodge",
        FacilityKind.VAW_SHELTER,
        [(Profile.WOMEN, 10), (Profile.FAMILY, 3), (Profile.YOUNG_ADULT, 4)],
        {
            "genders": "women,nonbinary",
            "age_min": 16,
            "languages": "en,oj,cr",
            "security_level": SecurityLevel.HEIGHTENED,
            "indigenous_led": True,
            "cultural_support": "Elders, ceremonies and land-based healing",
        },
    ),
    (
        "SK",
        "Saskatoon",
        "Riversdale",
        "Sky Circle House",
        FacilityKind.TRAFFICKING_SHELTER,
        [(Profile.WOMEN, 6)],
        {
            "genders": "women,nonbinary",
            "age_min": 16,
            "languages": "en,cr",
            "security_level": SecurityLevel.HIGH,
            "indigenous_led": True,
            "cultural_support": "Cree-speaking staff, smudging, an Elder on call",
        },
    ),
    (
        "QC",
        "Montréal",
        "Plateau",
        "Maison Samaa",
        FacilityKind.VAW_SHELTER,
        [(Profile.WOMEN, 6), (Profile.FAMILY, 2)],
        {
            "genders": "women",
            "age_min": 18,
            "languages": "fr,en,ar,fa,ur",
            "culturally_specific": True,
            "cultural_support": "Workers from the communities served; halal meals",
        },
    ),
]


async def seed_placement_fit(session: AsyncSession, net: DemoNetwork) -> None:
    rng = random.Random(13)
    now = utcnow()
    for index, (province, city, area, name, kind, pools, criteria) in enumerate(FIT_RESOURCES, start=1):
        owner = await create_organisation(session, name=f"{name} (demo)", kind=OrgKind.SHELTER, province=province)
        net.organisations[f"fit_{index}"] = owner
        facility = await create_facility(
            session,
            organisation_id=owner.id,
            name=name,
            kind=kind,
            province=province,
            city=city,
            area=area,
            address=f"{100 + index} Demo Street (demo)",
            intake_phone=f"+1-555-700-{1000 + index}",
            oncall_email=f"intake-fit-{index}@shelter.example",
            **criteria,
        )
        for profile, capacity in pools:
            # Like the rest of the network: weeks of reports up to today's counts (exchange/demo/history.py).
            pool = await add_pool(session, facility.id, profile=profile, capacity=0)
            await report_history(
                session,
                pool.id,
                capacity=capacity,
                occupied=rng.randint(capacity // 2, capacity - 1),
                out_of_service=0,
                until=now - timedelta(minutes=rng.randint(1, 60 * 6)),
                rng=rng,
            )
            await session.commit()
        await session.refresh(facility)
        net.facilities.append(facility)
