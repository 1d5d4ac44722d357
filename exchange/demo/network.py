"""A realistic demo network: shelters across Canada, two police services, one coalition, a user per role."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.models import BedPool, Facility, FacilityKind, PoolChange, Profile, SecurityLevel
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, User, hash_password
from exchange.registry import DemoStep

DEMO_PASSWORD = "refuge-demo-2026"

CITIES: dict[str, list[tuple[str, list[str]]]] = {
    "QC": [
        ("Montréal", ["Plateau", "Centre-Sud", "Ahuntsic", "Verdun"]),
        ("Québec", ["Limoilou", "Saint-Roch"]),
        ("Gatineau", ["Hull"]),
        ("Sherbrooke", ["Centre"]),
    ],
    "ON": [
        ("Toronto", ["Downtown", "Scarborough", "East York", "Etobicoke"]),
        ("Ottawa", ["Vanier", "Centretown"]),
        ("Hamilton", ["Lower City"]),
        ("London", ["Old East"]),
        ("Windsor", ["Downtown"]),
    ],
    "BC": [
        ("Vancouver", ["Downtown Eastside", "Kitsilano", "Mount Pleasant"]),
        ("Victoria", ["James Bay"]),
        ("Surrey", ["Whalley"]),
    ],
    "AB": [("Calgary", ["Beltline", "Forest Lawn"]), ("Edmonton", ["Boyle Street", "Old Strathcona"])],
    "MB": [("Winnipeg", ["North End", "West End", "St. Boniface"])],
    "SK": [("Regina", ["North Central"]), ("Saskatoon", ["Riversdale"])],
    "NS": [("Halifax", ["North End", "Dartmouth"])],
    "NB": [("Moncton", ["Downtown"]), ("Saint John", ["Uptown"])],
    "NL": [("St. John's", ["Downtown"])],
    "PE": [("Charlottetown", ["Downtown"])],
}

KIND_PLAN: list[tuple[FacilityKind, list[tuple[Profile, int]], dict]] = [
    (
        FacilityKind.VAW_SHELTER,
        [(Profile.WOMEN, 12), (Profile.FAMILY, 3)],
        {"genders": "women", "age_min": 16, "security_level": SecurityLevel.HEIGHTENED},
    ),
    (
        FacilityKind.TRAFFICKING_SHELTER,
        [(Profile.WOMEN, 8)],
        {"genders": "women,nonbinary", "age_min": 16, "security_level": SecurityLevel.HIGH},
    ),
    (
        FacilityKind.YOUTH,
        [(Profile.YOUTH, 10)],
        {"genders": "women,men,nonbinary", "age_min": 16, "age_max": 18},
    ),
    (FacilityKind.MEN, [(Profile.MEN, 14)], {"genders": "men", "age_min": 18}),
    (
        FacilityKind.FAMILY,
        [(Profile.FAMILY, 6), (Profile.WOMEN, 4)],
        {"genders": "women,men", "age_min": 0, "children_accompanied": True},
    ),
    (
        FacilityKind.MIGRANT_REFUGEE,
        [(Profile.ANY, 16)],
        {"genders": "women,men,nonbinary", "asylum_seekers_only": True},
    ),
    (FacilityKind.HOMELESS, [(Profile.MEN, 30), (Profile.WOMEN, 12)], {"genders": "women,men,nonbinary"}),
    (FacilityKind.TRANSITION_HOUSING, [(Profile.WOMEN, 6)], {"genders": "women", "max_stay_nights": 365}),
    (
        FacilityKind.ROTATING_SAFE_HOUSE,
        [(Profile.ANY, 4)],
        {"genders": "women,men,nonbinary", "security_level": SecurityLevel.HIGH},
    ),
    (FacilityKind.PARTNER_HOTEL, [(Profile.ANY, 10)], {"genders": "women,men,nonbinary", "age_min": 18}),
]

STREETS = ["rue Principale", "King Street", "Queen Street", "avenue Laurier", "Main Street", "rue Sainte-Catherine"]

NAME_STEMS = {
    FacilityKind.VAW_SHELTER: ["Maison", "Haven House", "Harbour Shelter", "Maison Flora", "Safe Harbour"],
    FacilityKind.TRAFFICKING_SHELTER: ["Passage", "Phoenix House", "La Traverse", "North Star"],
    FacilityKind.YOUTH: ["Youth Bridge", "Le Relais Jeunesse", "Open Door Youth"],
    FacilityKind.MEN: ["Pathways Men's Residence", "Maison du Père", "Crossroads Men"],
    FacilityKind.FAMILY: ["Family Place", "Maison des Familles"],
    FacilityKind.MIGRANT_REFUGEE: ["Welcome Centre", "Maison d'Accueil", "Newcomer House"],
    FacilityKind.HOMELESS: ["Mission", "Night Shelter", "Refuge de Nuit"],
    FacilityKind.TRANSITION_HOUSING: ["Second Stage", "Les Appartements Relais"],
    FacilityKind.ROTATING_SAFE_HOUSE: ["Safe House"],
    FacilityKind.PARTNER_HOTEL: ["Partner Hotel"],
}


@dataclass
class DemoNetwork:
    organisations: dict[str, Organisation] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    facilities: list[Facility] = field(default_factory=list)


DEMO_LOGINS: list[tuple[str, str, str]] = []


async def is_seeded(session: AsyncSession) -> bool:
    return bool((await session.execute(select(func.count()).select_from(Organisation))).scalar_one())


async def seed(
    session: AsyncSession, steps: Sequence[DemoStep] = (), *, facilities_per_province: int | None = None
) -> DemoNetwork:
    """The network of organisations, users and facilities, then each further step (holds, the fund)."""
    rng = random.Random(2026)
    net = DemoNetwork()
    now = utcnow()

    def org(key: str, name: str, kind: OrgKind, province: str = "") -> Organisation:
        o = Organisation(name=name, kind=kind, province=province)
        session.add(o)
        net.organisations[key] = o
        return o

    coalition = org("coalition", "Coalition contre la traite / Anti-Trafficking Coalition (demo)", OrgKind.COALITION)
    police_mtl = org("police_mtl", "Service de police métropolitain (demo)", OrgKind.POLICE, "QC")
    police_tor = org("police_tor", "Greater Toronto Police Service (demo)", OrgKind.POLICE, "ON")
    community = org("community", "Centre d'aide aux victimes (demo)", OrgKind.COMMUNITY, "QC")
    migrant_centre = org("migrant_centre", "Migrant Workers Centre (demo)", OrgKind.COMMUNITY, "ON")
    await session.flush()

    shelter_orgs: list[Organisation] = []
    index = 0
    for province, cities in CITIES.items():
        for city, areas in cities:
            for kind, pools, criteria in KIND_PLAN:
                # Not every city has every kind; big cities have most, small ones a few.
                if len(areas) < 2 and kind not in (
                    FacilityKind.VAW_SHELTER,
                    FacilityKind.HOMELESS,
                    FacilityKind.PARTNER_HOTEL,
                    FacilityKind.YOUTH,
                ):
                    continue
                if len(areas) >= 2 and rng.random() < 0.25 and kind not in (FacilityKind.VAW_SHELTER,):
                    continue
                index += 1
                stem = rng.choice(NAME_STEMS[kind])
                name = (
                    f"{stem} {city}"
                    if kind != FacilityKind.ROTATING_SAFE_HOUSE
                    else f"Safe House {city[:3].upper()}-{index}"
                )
                owner = org(f"shelter_{index}", f"{name} (org {index})", OrgKind.SHELTER, province)
                shelter_orgs.append(owner)
                await session.flush()
                facility = Facility(
                    organisation_id=owner.id,
                    name=name,
                    kind=kind,
                    province=province,
                    city=city,
                    area=rng.choice(areas),
                    address=f"{rng.randint(10, 9999)} {rng.choice(STREETS)} (demo)",
                    intake_phone=f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    oncall_email=f"intake-{index}@shelter.example",
                    languages="fr,en" if province in ("QC", "NB") else "en,fr" if rng.random() < 0.4 else "en",
                    accepts_trafficking=kind != FacilityKind.HOMELESS or rng.random() < 0.5,
                    accepts_worker_referral=rng.random() < 0.8,
                    sobriety_required=kind in (FacilityKind.VAW_SHELTER, FacilityKind.TRANSITION_HOUSING)
                    and rng.random() < 0.7,
                    accessible=rng.random() < 0.5,
                    updated_at=now - timedelta(minutes=rng.randint(1, 60 * 20)),
                    **criteria,
                )
                session.add(facility)
                await session.flush()
                net.facilities.append(facility)
                for profile, capacity in pools:
                    occupied = rng.randint(capacity // 2, capacity)
                    out_of_service = rng.choice([0, 0, 0, 1]) if occupied < capacity else 0
                    pool = BedPool(
                        facility_id=facility.id,
                        profile=profile,
                        capacity=capacity,
                        occupied=occupied,
                        out_of_service=out_of_service,
                        updated_at=facility.updated_at,
                    )
                    session.add(pool)
                    await session.flush()
                    session.add(
                        PoolChange(
                            pool_id=pool.id,
                            actor_user_id=None,
                            reason="seed",
                            at=facility.updated_at,
                            capacity_before=0,
                            occupied_before=0,
                            out_of_service_before=0,
                            held_before=0,
                            capacity_after=capacity,
                            occupied_after=occupied,
                            out_of_service_after=out_of_service,
                            held_after=0,
                        )
                    )
    await session.commit()

    first_shelter = next(
        o
        for o, f in zip(shelter_orgs, net.facilities, strict=True)
        if f.kind == FacilityKind.VAW_SHELTER and f.city == "Montréal"
    )
    trafficking_shelter = next(
        (o for o, f in zip(shelter_orgs, net.facilities, strict=True) if f.kind == FacilityKind.TRAFFICKING_SHELTER),
        shelter_orgs[1],
    )
    people = [
        ("shelter", "Nadia (Maison, Montréal)", first_shelter, [Role.SHELTER_STAFF], False),
        ("shelter2", "Grace (trafficking shelter)", trafficking_shelter, [Role.SHELTER_STAFF], False),
        ("police", "Det. Tremblay (SPM)", police_mtl, [Role.POLICE_PLANNER], False),
        ("police2", "Det. Singh (GTPS)", police_tor, [Role.POLICE_PLANNER], False),
        ("caseworker", "Amélie (victim services)", community, [Role.CASE_WORKER], True),
        ("caseworker2", "Jordan (migrant centre)", migrant_centre, [Role.CASE_WORKER], False),
        ("approver", "Louise (coalition fund)", coalition, [Role.FUND_APPROVER], False),
        ("approver2", "Sam (migrant centre fund)", migrant_centre, [Role.FUND_APPROVER], False),
        ("dual", "Marie (case worker and approver)", community, [Role.CASE_WORKER, Role.FUND_APPROVER], True),
        ("auditor", "Robert (coalition auditor)", coalition, [Role.AUDITOR], False),
        ("coordinator", "Isabelle (coalition coordinator)", coalition, [Role.COORDINATOR], False),
        ("admin", "Network admin", coalition, [Role.NETWORK_ADMIN], False),
    ]
    password_hash = hash_password(DEMO_PASSWORD)
    DEMO_LOGINS.clear()
    for username, display, organisation, roles, lead in people:
        user = User(
            username=username,
            display_name=display,
            password_hash=password_hash,
            organisation_id=organisation.id,
            roles=[r.value for r in roles],
            lead_worker=lead,
        )
        session.add(user)
        net.users[username] = user
        DEMO_LOGINS.append((username, ", ".join(r.value for r in roles), display))
    await session.commit()
    for step in steps:
        await step(session, net)
    return net
