"""Reading the network: facilities with their pools, filtered as the board and the API ask."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.answering import answering_now
from beds.answering_models import FacilityAnswering
from beds.errors import Invalid, NotFound
from beds.fit import profile_fits, speaks, valid_language
from beds.holds_models import ACTIVE_STATUSES, Agreement, Hold, Operation
from beds.models import BedPool, Facility, FacilityKind, PoolChange, Profile
from beds.places import city_key
from beds.pools import FREE
from beds.timeutil import utcnow

# Each criterion the board filters on, as the condition a facility meets to stay on the board.
CRITERIA: dict[str, ColumnElement[bool]] = {
    "accepts_trafficking": Facility.accepts_trafficking.is_(True),  # type: ignore[attr-defined]
    "accepts_worker_referral": Facility.accepts_worker_referral.is_(True),  # type: ignore[attr-defined]
    "no_sobriety_required": Facility.sobriety_required.is_(False),  # type: ignore[attr-defined]
    "not_asylum_only": Facility.asylum_seekers_only.is_(False),  # type: ignore[attr-defined]
    "accessible": Facility.accessible.is_(True),  # type: ignore[attr-defined]
    "children_accompanied": Facility.children_accompanied.is_(True),  # type: ignore[attr-defined]
    "heightened_security": Facility.security_level.in_(["heightened", "high"]),  # type: ignore[attr-defined]
    "indigenous_led": Facility.indigenous_led.is_(True),  # type: ignore[attr-defined]
    "culturally_specific": Facility.culturally_specific.is_(True) | Facility.indigenous_led.is_(True),  # type: ignore[attr-defined]
    # Said when it answers; list_facilities keeps those whose hours cover now (beds/answering.py).
    "answers_now": Facility.id.in_(select(FacilityAnswering.facility_id)),  # type: ignore[attr-defined]
}


@dataclass(frozen=True)
class BoardFilter:
    province: str | None = None
    city: str | None = None
    profile: str | None = None
    kind: str | None = None
    criteria: frozenset[str] = field(default_factory=frozenset)
    min_free: int = 0
    language: str | None = None  # a language the facility's staff speak (beds/fit.py)

    def __post_init__(self) -> None:
        if self.min_free < 0:
            raise Invalid("invalid_filter", "min_free cannot be negative.")
        if self.language and not valid_language(self.language):
            raise Invalid("invalid_filter", "A language is a code of two or three lowercase letters, e.g. fr.")
        if self.kind and self.kind not in FacilityKind.__members__.values():
            # PostgreSQL refuses an unknown enum value with an error: a filter names a known kind or none.
            raise Invalid("invalid_filter", "Unknown facility kind.")
        unknown = self.criteria - CRITERIA.keys()
        if unknown:
            raise Invalid("invalid_filter", f"Unknown criteria: {', '.join(sorted(unknown))}.")

    def as_query(self) -> dict[str, str | list[str]]:
        query: dict[str, str | list[str]] = {}
        for name in ("province", "city", "profile", "kind", "language"):
            value = getattr(self, name)
            if value:
                query[name] = value
        if self.criteria:
            query["criteria"] = sorted(self.criteria)
        if self.min_free:
            query["min_free"] = str(self.min_free)
        return query


@dataclass
class FacilityListing:
    """A facility and its pools: ORM objects for one facility, plain rows with the same attributes for lists."""

    facility: Facility | Any
    pools: list[BedPool] | list[Any]
    stale: bool

    @property
    def free(self) -> int:
        return sum(p.free for p in self.pools)

    @property
    def held(self) -> int:
        return sum(p.held for p in self.pools)

    @property
    def occupied(self) -> int:
        return sum(p.occupied for p in self.pools)


@dataclass
class CityGroup:
    province: str
    city: str
    listings: list[FacilityListing]


def is_stale(updated_at: datetime, now: datetime, stale_after: timedelta) -> bool:
    return now - updated_at > stale_after


async def list_facilities(
    session: AsyncSession, board_filter: BoardFilter, *, stale_after: timedelta = timedelta(hours=12)
) -> list[FacilityListing]:
    """Plain rows, not ORM objects: the board reads thousands of them and writes none."""
    stmt = select(*Facility.__table__.c).where(Facility.active.is_(True))  # type: ignore[attr-defined]
    if board_filter.province:
        stmt = stmt.where(Facility.province == board_filter.province)
    if board_filter.kind:
        stmt = stmt.where(Facility.kind == board_filter.kind)
    for name in board_filter.criteria:
        stmt = stmt.where(CRITERIA[name])
    stmt = stmt.order_by(Facility.province, Facility.city, Facility.name)
    facilities = (await session.execute(stmt)).all()
    if board_filter.city:
        # In Python, not SQL: "Montreal" finds "Montréal" whatever the database's collation; a network has a few
        # thousand facilities at most, and a key costs a microsecond.
        wanted = city_key(board_filter.city)
        facilities = [f for f in facilities if city_key(f.city) == wanted]
    if board_filter.language:
        facilities = [f for f in facilities if speaks(f, board_filter.language)]
    if "answers_now" in board_filter.criteria:
        answering = await answering_now(session, [f.id for f in facilities], utcnow())
        facilities = [f for f in facilities if f.id in answering]
    if not facilities:
        return []
    pool_stmt = select(*BedPool.__table__.c, FREE.label("free")).order_by(BedPool.facility_id, BedPool.profile)
    if board_filter.province or board_filter.city or board_filter.kind or board_filter.criteria:
        pool_stmt = pool_stmt.where(BedPool.facility_id.in_([f.id for f in facilities]))  # type: ignore[attr-defined]
    pools_by_facility: dict[str, list] = {}
    for pool in (await session.execute(pool_stmt)).all():
        pools_by_facility.setdefault(pool.facility_id, []).append(pool)
    now = utcnow()
    listings: list[FacilityListing] = []
    for facility in facilities:
        pools = pools_by_facility.get(facility.id, [])
        if board_filter.profile:
            # The planner's own rule: an 18+ facility's "any" beds are not youth beds.
            pools = [p for p in pools if profile_fits(facility, p.profile, board_filter.profile)]
            if not pools:
                continue
        if board_filter.min_free and sum(p.free for p in pools) < board_filter.min_free:
            continue
        listings.append(FacilityListing(facility, pools, is_stale(facility.updated_at, now, stale_after)))
    return listings


def group_by_city(listings: list[FacilityListing]) -> list[CityGroup]:
    return [
        CityGroup(province, city, list(items))
        for (province, city), items in groupby(listings, key=lambda li: (li.facility.province, li.facility.city))
    ]


# The board's summary: per province and city, the free beds of each profile, before anyone opens a city's cards.


@dataclass
class CitySummary:
    province: str
    city: str
    listings: list[FacilityListing]
    free_by_profile: dict[str, int]

    @property
    def key(self) -> str:
        return city_key(self.city)

    @property
    def free(self) -> int:
        return sum(self.free_by_profile.values())

    def free_for(self, profile: str | None) -> int:
        """Free beds a person of this profile could take: the profile's own pools and the "any" pools."""
        if not profile:
            return self.free
        return self.free_by_profile.get(profile, 0) + (self.free_by_profile.get(Profile.ANY.value, 0))


@dataclass
class ProvinceSummary:
    province: str
    cities: list[CitySummary]

    @property
    def facilities(self) -> int:
        return sum(len(c.listings) for c in self.cities)

    @property
    def free(self) -> int:
        return sum(c.free for c in self.cities)


def free_for(listing: FacilityListing, profile: str | None) -> int:
    return sum(p.free for p in listing.pools if not profile or p.profile in (profile, Profile.ANY.value))


def summarize(
    listings: list[FacilityListing],
    *,
    profile: str | None = None,
    by_free: bool = False,
    first: tuple[str, str] | None = None,
) -> list[ProvinceSummary]:
    """The listings by province and city (one city however its name is spelt), with free beds per profile.

    Provinces and cities come by name, or by free beds for `profile` (most first) when `by_free`; `first`, a
    (province, city) pair, is the viewer's own place and comes first whatever the order.
    """
    cities: dict[tuple[str, str], CitySummary] = {}
    for li in listings:
        f = li.facility
        group = cities.get((f.province, city_key(f.city)))
        if group is None:
            group = cities[(f.province, city_key(f.city))] = CitySummary(f.province, f.city, [], {})
        group.listings.append(li)
        for pool in li.pools:
            group.free_by_profile[str(pool.profile)] = group.free_by_profile.get(str(pool.profile), 0) + pool.free
    home_province, home_city = first if first else ("", "")

    def city_order(c: CitySummary) -> tuple:
        mine = 0 if (c.province == home_province and c.key == city_key(home_city)) else 1
        return (mine, -c.free_for(profile), c.key) if by_free else (mine, c.key)

    provinces: dict[str, list[CitySummary]] = {}
    for group in cities.values():
        provinces.setdefault(group.province, []).append(group)
    summaries = [ProvinceSummary(code, sorted(groups, key=city_order)) for code, groups in provinces.items()]
    for summary in summaries:
        for city in summary.cities:
            if by_free:
                city.listings.sort(key=lambda li: (-free_for(li, profile), li.facility.name))

    def province_order(p: ProvinceSummary) -> tuple:
        mine = 0 if p.province == home_province else 1
        if by_free:
            return (mine, -sum(c.free_for(profile) for c in p.cities), p.province)
        return (mine, p.province)

    return sorted(summaries, key=province_order)


async def known_cities(session: AsyncSession) -> dict[str, list[str]]:
    """The cities that have an active facility, by province: what the board's city picker offers."""
    rows = await session.execute(
        select(Facility.province, Facility.city).where(Facility.active.is_(True)).distinct()  # type: ignore[attr-defined]
    )
    by_province: dict[str, dict[str, str]] = {}
    for province, city in rows.all():
        by_province.setdefault(province, {}).setdefault(city_key(city), city)
    return {p: sorted(cities.values(), key=city_key) for p, cities in sorted(by_province.items())}


async def home_place(session: AsyncSession, organisation_id: str, province: str) -> tuple[str, str]:
    """Where a viewer works, as (province, city): the first facility its organisation runs; else its province
    (`province`, from the organisation) with the city of its latest operation there, or the province's city with
    the most facilities. ("", "") when the organisation names no province."""
    own = (
        await session.execute(
            select(Facility.province, Facility.city)
            .where(Facility.organisation_id == organisation_id, Facility.active.is_(True))  # type: ignore[attr-defined]
            .order_by(Facility.name)
            .limit(1)
        )
    ).first()
    if own:
        return own.province, own.city
    if not province:
        return "", ""
    latest = await session.scalar(
        select(Operation.city)
        .where(Operation.organisation_id == organisation_id, Operation.province == province, Operation.city != "")
        .order_by(Operation.created_at.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    if latest:
        return province, latest
    biggest = await session.scalar(
        select(Facility.city)
        .where(Facility.province == province, Facility.active.is_(True))  # type: ignore[attr-defined]
        .group_by(Facility.city)
        .order_by(func.count().desc(), Facility.city)
        .limit(1)
    )
    return province, biggest or ""


async def get_listing(
    session: AsyncSession, facility_id: str, *, stale_after: timedelta = timedelta(hours=12)
) -> FacilityListing:
    facility = await session.get(Facility, facility_id)
    if facility is None or not facility.active:
        raise NotFound("not_found", "No such facility.")
    pools = (
        (await session.execute(select(BedPool).where(BedPool.facility_id == facility_id).order_by(BedPool.profile)))
        .scalars()
        .all()
    )
    return FacilityListing(facility, list(pools), is_stale(facility.updated_at, utcnow(), stale_after))


async def pool_history(session: AsyncSession, pool_id: str, limit: int = 50) -> list[PoolChange]:
    """The pool's latest changes, newest first."""
    return list(
        (
            await session.execute(
                select(PoolChange).where(PoolChange.pool_id == pool_id).order_by(PoolChange.id.desc()).limit(limit)  # type: ignore[union-attr]
            )
        )
        .scalars()
        .all()
    )


async def pool_histories(session: AsyncSession, pool_ids: list[str], limit: int = 50) -> dict[str, list[PoolChange]]:
    """`pool_history` of several pools in one query (a facility's page): each pool's latest `limit` changes."""
    found: dict[str, list[PoolChange]] = {pool_id: [] for pool_id in pool_ids}
    if not pool_ids:
        return found
    ranked = (
        select(
            PoolChange.id,
            func.row_number()
            .over(partition_by=PoolChange.pool_id, order_by=PoolChange.id.desc())  # type: ignore[union-attr]
            .label("rank"),
        )
        .where(PoolChange.pool_id.in_(pool_ids))  # type: ignore[attr-defined]
        .subquery()
    )
    rows = await session.execute(
        select(PoolChange)
        .join(ranked, ranked.c.id == PoolChange.id)
        .where(ranked.c.rank <= limit)
        .order_by(PoolChange.id.desc())  # type: ignore[union-attr]
    )
    for change in rows.scalars():
        found[change.pool_id].append(change)
    return found


# Police holds and who may see them (DESIGN.md, Visibility): an account that is not party to a police hold sees its
# beds only as "not free", so a bulk allocation does not show as a jump in held beds before an operation. The
# parties are the police service that holds them, the facility's own organisation and the coordinators.


class KeptFor(NamedTuple):
    """Unused beds a standing agreement keeps for one partner organisation (`name` filled in by the shell)."""

    organisation_id: str
    beds: int
    name: str = ""


class PoolView(NamedTuple):
    """A pool as one account sees it. Police-held beds it is not party to are not in `held` but in
    `out_of_service` (beds not free for a reason it is not told), and so are the beds kept for partners it may
    not know of; `kept_for` names the kept beds it may see (the partner its own, the facility's organisation and
    coordinators every partner's). The counts still add up to capacity: occupied + out_of_service + held + kept
    + free."""

    id: str
    facility_id: str
    profile: str
    capacity: int
    occupied: int
    out_of_service: int
    held: int
    free: int
    version: int
    updated_at: datetime
    kept_for: tuple[KeptFor, ...] = ()

    @property
    def kept(self) -> int:
        return sum(k.beds for k in self.kept_for)


def kept_shown(pool: Any) -> tuple[KeptFor, ...]:
    """The kept beds a pool as seen shows by partner (a pool not seen through `as_seen` shows none)."""
    return tuple(getattr(pool, "kept_for", ()))


async def kept_unused(session: AsyncSession, pool_ids: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Unused kept beds by pool and partner organisation: {pool_id: {org_id: beds}}. None is every pool."""
    unused = Agreement.beds - Agreement.beds_in_use - Agreement.beds_lent
    stmt = select(Agreement.pool_id, Agreement.partner_org_id, unused).where(
        Agreement.active.is_(True),  # type: ignore[attr-defined]
        Agreement.partner_org_id.is_not(None),  # type: ignore[union-attr]
        unused > 0,
    )
    if pool_ids is not None:
        if not pool_ids:
            return {}
        stmt = stmt.where(Agreement.pool_id.in_(pool_ids))  # type: ignore[attr-defined]
    kept: dict[str, dict[str, int]] = {}
    for pool_id, org_id, beds in (await session.execute(stmt)).all():
        kept.setdefault(pool_id, {})[str(org_id)] = int(beds)
    return kept


def kept_seen(by_org: dict[str, int], *, viewer_org: str, facility_org: str, sees_all: bool) -> tuple[KeptFor, ...]:
    """The pool's kept beds this viewer may see by partner: all of them for the facility's organisation and the
    coordinators, a partner only its own."""
    shown = by_org if sees_all or viewer_org == facility_org else {o: b for o, b in by_org.items() if o == viewer_org}
    return tuple(KeptFor(org, beds) for org, beds in sorted(shown.items()))


async def police_held(session: AsyncSession, pool_ids: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Beds held for operations, by pool and by the police service holding them: {pool_id: {org_id: beds}}.
    None is every pool."""
    stmt = (
        select(Hold.pool_id, Hold.requested_by_org, func.sum(Hold.beds))
        .where(Hold.operation_id.is_not(None), Hold.status.in_(ACTIVE_STATUSES))  # type: ignore[union-attr,attr-defined]
        .group_by(Hold.pool_id, Hold.requested_by_org)
    )
    if pool_ids is not None:
        if not pool_ids:
            return {}
        stmt = stmt.where(Hold.pool_id.in_(pool_ids))  # type: ignore[attr-defined]
    held: dict[str, dict[str, int]] = {}
    for pool_id, org_id, beds in (await session.execute(stmt)).all():
        held.setdefault(pool_id, {})[org_id] = int(beds or 0)
    return held


def hidden_beds(by_org: dict[str, int], *, viewer_org: str, facility_org: str, sees_all: bool) -> int:
    """How many of a pool's police-held beds this viewer is not party to."""
    if sees_all or viewer_org == facility_org:
        return 0
    return sum(beds for org, beds in by_org.items() if org != viewer_org)


def as_seen(pool: Any, hidden: int, kept_for: tuple[KeptFor, ...] = ()) -> Any:
    """The pool itself when nothing is hidden and nothing kept, else its `PoolView`: the hidden police-held
    beds moved out of `held`, the kept beds not in `kept_for` into `out_of_service`."""
    hidden = min(hidden, pool.held)
    kept_hidden = max(pool.kept - pool.kept_in_use - sum(k.beds for k in kept_for), 0)
    if hidden <= 0 and not kept_for and kept_hidden <= 0:
        return pool
    return PoolView(
        id=pool.id,
        facility_id=pool.facility_id,
        profile=str(pool.profile),
        capacity=pool.capacity,
        occupied=pool.occupied,
        out_of_service=pool.out_of_service + hidden + kept_hidden,
        held=pool.held - hidden,
        free=pool.free,
        version=pool.version,
        updated_at=pool.updated_at,
        kept_for=kept_for,
    )


def with_partner_names(listings: list[FacilityListing], names: dict[str, str]) -> list[FacilityListing]:
    """The listings with each kept-for partner named (`names`: organisation id -> name, read by the shell)."""
    if not any(kept_shown(p) for li in listings for p in li.pools):
        return listings
    return [
        FacilityListing(
            li.facility,
            [
                p._replace(kept_for=tuple(k._replace(name=names.get(k.organisation_id, "")) for k in p.kept_for))
                if kept_shown(p)
                else p
                for p in li.pools
            ],
            li.stale,
        )
        for li in listings
    ]


def partner_ids(listings: list[FacilityListing]) -> set[str]:
    return {k.organisation_id for li in listings for p in li.pools for k in kept_shown(p)}


async def as_seen_by(
    session: AsyncSession, listings: list[FacilityListing], *, organisation_id: str, sees_all: bool
) -> list[FacilityListing]:
    """The listings as this viewer may see them: police-held beds it is not party to count as not free, and so
    do beds kept for a partner other than itself (unless it is the facility's organisation or sees all)."""
    pool_ids = [p.id for li in listings for p in li.pools]
    held = {} if sees_all else await police_held(session, pool_ids)
    kept = await kept_unused(session, [p.id for li in listings for p in li.pools if p.kept > p.kept_in_use])
    if not held and not kept:
        return listings
    seen = []
    for li in listings:
        facility_org = li.facility.organisation_id
        pools = [
            as_seen(
                p,
                hidden_beds(held.get(p.id, {}), viewer_org=organisation_id, facility_org=facility_org, sees_all=False),
                kept_seen(kept.get(p.id, {}), viewer_org=organisation_id, facility_org=facility_org, sees_all=sees_all),
            )
            for p in li.pools
        ]
        seen.append(FacilityListing(li.facility, pools, li.stale))
    return seen
