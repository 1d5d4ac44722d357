"""A realistic demo network: shelters across Canada, two police services, one coalition, a user per role.

`seed` runs steps that go through the domain functions, as the app would: organisations and users through
`exchange/accounts/service.py`, facilities and pools through `beds/facilities.py`, each pool's six weeks of
reports through `exchange/demo/history.py` (beds/pools.py writes its history), then the further steps of the
registry (holds, the fund).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.facilities import add_pool, create_facility
from beds.models import Facility, FacilityKind, Profile, SecurityLevel
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.accounts.service import create_organisation, create_user, users
from exchange.demo.history import report_history
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

    def organisation_of(self, facility: Facility) -> Organisation:
        return next(o for o in self.organisations.values() if o.id == facility.organisation_id)


# Organisations that are not shelters: key -> (name, kind, province, the short name users' display names show).
ORGANISATIONS: dict[str, tuple[str, OrgKind, str, str]] = {
    "coalition": (
        "Coalition contre la traite / Anti-Trafficking Coalition (demo)",
        OrgKind.COALITION,
        "",
        "Anti-Trafficking Coalition",
    ),
    "police_mtl": (
        "Service de police métropolitain (demo)",
        OrgKind.POLICE,
        "QC",
        "Service de police métropolitain",
    ),
    "police_tor": ("Greater Toronto Police Service (demo)", OrgKind.POLICE, "ON", "Greater Toronto Police Service"),
    "community": ("Centre d'aide aux victimes (demo)", OrgKind.COMMUNITY, "QC", "Centre d'aide aux victimes"),
    "migrant_centre": ("Migrant Workers Centre (demo)", OrgKind.COMMUNITY, "ON", "Migrant Workers Centre"),
}


def _vaw_shelter_in_montreal(net: DemoNetwork) -> Facility:
    return next(f for f in net.facilities if f.kind == FacilityKind.VAW_SHELTER and f.city == "Montréal")


def _trafficking_shelter(net: DemoNetwork) -> Facility:
    trafficking = [f for f in net.facilities if f.kind == FacilityKind.TRAFFICKING_SHELTER]
    return trafficking[0] if trafficking else net.facilities[1]


# username -> (first name or title, organisation key or the facility they staff, roles, lead worker). The
# display name is "<person> (<where they work>)": the facility's name for shelter staff, else the organisation's
# short name, so the name always says whom the user works for.
PEOPLE: dict[str, tuple[str, str | Callable[[DemoNetwork], Facility], list[Role], bool]] = {
    "shelter": ("Nadia", _vaw_shelter_in_montreal, [Role.SHELTER_STAFF], False),
    "shelter2": ("Grace", _trafficking_shelter, [Role.SHELTER_STAFF], False),
    "police": ("Det. Tremblay", "police_mtl", [Role.POLICE_PLANNER], False),
    "police2": ("Det. Singh", "police_tor", [Role.POLICE_PLANNER], False),
    "caseworker": ("Amélie", "community", [Role.CASE_WORKER], True),
    "caseworker2": ("Jordan", "migrant_centre", [Role.CASE_WORKER], False),
    "approver": ("Louise", "coalition", [Role.FUND_APPROVER], False),
    "approver2": ("Sam", "migrant_centre", [Role.FUND_APPROVER], False),
    "dual": ("Marie", "community", [Role.CASE_WORKER, Role.FUND_APPROVER], True),
    "auditor": ("Robert", "coalition", [Role.AUDITOR], False),
    "coordinator": ("Isabelle", "coalition", [Role.COORDINATOR], False),
    "admin": ("Network admin", "coalition", [Role.NETWORK_ADMIN], False),
}


async def is_seeded(session: AsyncSession) -> bool:
    return bool((await session.execute(select(func.count()).select_from(Organisation))).scalar_one())


async def logins(session: AsyncSession) -> list[tuple[str, str, str]]:
    """(username, roles, display name) of every user: the demo's people first, in their order, then the others."""
    order = list(PEOPLE)
    everyone = sorted(
        await users(session), key=lambda u: order.index(u.username) if u.username in order else len(order)
    )
    return [(u.username, ", ".join(u.roles), u.display_name) for u in everyone]


async def add_organisations(session: AsyncSession, net: DemoNetwork) -> None:
    for key, (name, kind, province, _short) in ORGANISATIONS.items():
        net.organisations[key] = await create_organisation(session, name=name, kind=kind, province=province)


async def add_facilities(session: AsyncSession, net: DemoNetwork) -> None:
    """Shelters across the provinces, each run by an organisation of its own, each with six weeks of reports
    (exchange/demo/history.py) up to the counts it last reported at some time of the past day (some are stale)."""
    rng = random.Random(2026)
    # The history has its own draws: the network itself stays the same whatever the history does.
    history_rng = random.Random(1842)
    now = utcnow()
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
                owner = await create_organisation(
                    session, name=f"{name} (org {index})", kind=OrgKind.SHELTER, province=province
                )
                net.organisations[f"shelter_{index}"] = owner
                # Keyword order is the order of the draws: the demo is the same network every time.
                facility = await create_facility(
                    session,
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
                    **criteria,
                )
                reported_at = now - timedelta(minutes=rng.randint(1, 60 * 20))
                for profile, capacity in pools:
                    occupied = rng.randint(capacity // 2, capacity)
                    out_of_service = rng.choice([0, 0, 0, 1]) if occupied < capacity else 0
                    pool = await add_pool(session, facility.id, profile=profile, capacity=0)
                    # It joined the network weeks ago and reported since, up to the counts it shows now.
                    await report_history(
                        session,
                        pool.id,
                        capacity=capacity,
                        occupied=occupied,
                        out_of_service=out_of_service,
                        until=reported_at,
                        rng=history_rng,
                    )
                    await session.commit()
                await session.refresh(facility)
                net.facilities.append(facility)


async def add_people(session: AsyncSession, net: DemoNetwork) -> None:
    for username, (person, where, roles, lead) in PEOPLE.items():
        if callable(where):
            facility = where(net)
            org, display = net.organisation_of(facility), f"{person} ({facility.name})"
        else:
            org, display = net.organisations[where], f"{person} ({ORGANISATIONS[where][3]})"
        net.users[username] = await create_user(
            session,
            username=username,
            password=DEMO_PASSWORD,
            organisation_id=org.id,
            roles=roles,
            display_name=display,
            lead_worker=lead,
        )


NETWORK_STEPS: tuple[DemoStep, ...] = (add_organisations, add_facilities, add_people)


async def seed(session: AsyncSession, steps: Sequence[DemoStep] = ()) -> DemoNetwork:
    """The network of organisations, facilities and users, then each further step (holds, the fund)."""
    net = DemoNetwork()
    for step in (*NETWORK_STEPS, *steps):
        await step(session, net)
        await _reload_expired(session, net)
    return net


async def _reload_expired(session: AsyncSession, net: DemoNetwork) -> None:
    """A step may end on a rollback (an operation the network cannot cover), which expires every object the session
    holds; the next steps read their attributes as plain values, so they are loaded again here."""
    for obj in (*net.organisations.values(), *net.users.values(), *net.facilities):
        if inspect(obj).expired_attributes:
            await session.refresh(obj)
