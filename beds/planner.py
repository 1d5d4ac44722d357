"""The planner: which pools could cover an operation's needs, best first. Pure (no session, no I/O), so
beds/operations.py feeds it the candidates it read and tests call it with plain objects.

Nearer first: the same city, then the province's other cities by distance, then other provinces by distance
(beds/geo.py, city precision). A group may ask for a language (a hard rule), prefer Indigenous-led or
culturally specific support (a preference, within the same reach), and be kept together (all of it in one
facility, or none of it); an operation may keep at most N of its people in one facility (they are spread).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from beds.fit import culturally_specific, languages_of, profile_fits, speaks
from beds.geo import km_between
from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel
from beds.places import same_city


@dataclass(frozen=True)
class Need:
    profile: str
    count: int
    # A language the facility's staff must speak ("" is any), the whole group in one facility, and a
    # preference for Indigenous-led or culturally specific support.
    language: str = ""
    keep_together: bool = False
    prefer_culturally_specific: bool = False


@dataclass(frozen=True)
class PlanOptions:
    allow_other_cities: bool = False
    allow_other_provinces: bool = False
    # The operation's own limit of its people in one facility (Operation.max_per_facility); None is no limit.
    max_per_facility: int | None = None
    # Only facilities within this many kilometres of the operation's place; None is no cap.
    max_km: int | None = None


@dataclass(frozen=True)
class Candidate:
    pool: BedPool
    facility: Facility
    # The pool's beds kept for the operation's organisation by a standing agreement and not in use: free to
    # this operation though not to anyone else (beds/holds.py draws a partner's holds on them first).
    kept_for_us: int = 0

    @property
    def available(self) -> int:
        return self.pool.free + self.kept_for_us


@dataclass
class Proposal:
    pool_id: str
    facility_id: str
    facility_name: str
    province: str
    city: str
    security_level: str
    kind: str
    pool_profile: str
    need_profile: str
    beds: int
    # Whom the facility serves (its criteria), shown beside an "any" pool so a planner knows who may go there.
    genders: list[str] = field(default_factory=list)
    age_min: int = 0
    age_max: int | None = None
    children_accompanied: bool = False
    # Why this facility: how far it is from the operation's place (None when the place is unknown), the
    # languages it serves, whether it is Indigenous-led or culturally specific, and whether the group is kept
    # together there.
    distance_km: int | None = None
    languages: list[str] = field(default_factory=list)
    indigenous_led: bool = False
    culturally_specific: bool = False
    cultural_support: str = ""
    keep_together: bool = False


@dataclass
class Plan:
    proposals: list[Proposal] = field(default_factory=list)
    missing: list[Need] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return not self.missing


def admits(facility: Facility, pool: BedPool, need_profile: str) -> bool:
    """Whether this pool may take a trafficking victim of this profile (DESIGN.md admission criteria; whom the
    pool serves is beds/fit.py `profile_fits`, the rule the board's filter uses too)."""
    if not facility.active or not facility.accepts_trafficking or facility.asylum_seekers_only:
        return False
    return profile_fits(facility, str(pool.profile), need_profile)


def fits_need(facility: Facility, pool: BedPool, need: Need) -> bool:
    """`admits`, and the group's language."""
    return admits(facility, pool, need.profile) and speaks(facility, need.language)


_SECURITY_RANK = {SecurityLevel.HIGH.value: 0, SecurityLevel.HEIGHTENED.value: 1, SecurityLevel.STANDARD.value: 2}


def _distance(facility: Facility, province: str, city: str) -> int | None:
    return km_between(province, city, facility.province, facility.city)


def _rank(candidate: Candidate, province: str, city: str, need: Need) -> tuple:
    f, p = candidate.facility, candidate.pool
    in_city = f.province == province and city and same_city(f.city, city)
    locality = 0 if in_city else 1 if f.province == province else 2
    distance = _distance(f, province, city)
    return (
        locality,
        # Within the same reach, a group that prefers culturally specific support goes there first.
        0 if not need.prefer_culturally_specific or culturally_specific(f) else 1,
        distance if distance is not None else 1_000_000,
        _SECURITY_RANK.get(str(f.security_level), 3),
        0 if f.kind == FacilityKind.TRAFFICKING_SHELTER.value else 1,
        0 if p.profile == need.profile else 1,  # keep "any" pools for needs nothing else covers
        -candidate.available,
        p.id,
    )


def in_reach(facility: Facility, province: str, city: str, options: PlanOptions) -> bool:
    if options.max_km is not None:
        distance = _distance(facility, province, city)
        if distance is None or distance > options.max_km:
            return False
    if options.allow_other_provinces:
        return True
    if facility.province != province:
        return False
    return options.allow_other_cities or not city or same_city(facility.city, city)


def _proposal(cand: Candidate, need: Need, beds: int, distance: int | None) -> Proposal:
    f = cand.facility
    return Proposal(
        pool_id=cand.pool.id,
        facility_id=f.id,
        facility_name=f.name,
        province=f.province,
        city=f.city,
        security_level=str(f.security_level),
        kind=str(f.kind),
        pool_profile=str(cand.pool.profile),
        need_profile=need.profile,
        beds=beds,
        genders=f.gender_list,
        age_min=f.age_min,
        age_max=f.age_max,
        children_accompanied=f.children_accompanied,
        distance_km=distance,
        languages=languages_of(f),
        indigenous_led=bool(f.indigenous_led),
        culturally_specific=bool(f.culturally_specific),
        cultural_support=f.cultural_support or "",
        keep_together=need.keep_together,
    )


def propose(
    needs: Iterable[Need],
    candidates: list[Candidate],
    *,
    province: str,
    city: str,
    options: PlanOptions,
    already: Mapping[str, int] | None = None,
) -> Plan:
    """Greedy cover of each need by the best-ranked pools in reach; pure, so it is tested on its own.

    Groups kept together are placed first (they need the most room in one place), then specific profiles
    before "any", so a flexible pool is not used up by a need that had other options. `already`: the
    operation's people each facility already has (its active holds), counted against `max_per_facility`.
    """
    plan = Plan()
    left = {c.pool.id: c.available for c in candidates}
    cap = options.max_per_facility
    at_facility: dict[str, int] = dict(already or {})

    def room(facility_id: str) -> int:
        return 1_000_000 if cap is None else max(0, cap - at_facility.get(facility_id, 0))

    ordered = sorted(needs, key=lambda n: (not n.keep_together, n.profile == Profile.ANY.value, n.profile))
    for need in ordered:
        pool_cands = [
            c
            for c in candidates
            if fits_need(c.facility, c.pool, need) and in_reach(c.facility, province, city, options)
        ]
        pool_cands.sort(key=lambda c: _rank(c, province, city, need))
        distances = {c.facility.id: _distance(c.facility, province, city) for c in pool_cands}
        if need.keep_together:
            placed = _place_together(need, pool_cands, left, room)
            if placed is None:
                plan.missing.append(need)
                continue
            for cand, take in placed:
                left[cand.pool.id] -= take
                at_facility[cand.facility.id] = at_facility.get(cand.facility.id, 0) + take
                plan.proposals.append(_proposal(cand, need, take, distances[cand.facility.id]))
            continue
        remaining = need.count
        for cand in pool_cands:
            if remaining == 0:
                break
            take = min(left[cand.pool.id], remaining, room(cand.facility.id))
            if take <= 0:
                continue
            left[cand.pool.id] -= take
            at_facility[cand.facility.id] = at_facility.get(cand.facility.id, 0) + take
            remaining -= take
            plan.proposals.append(_proposal(cand, need, take, distances[cand.facility.id]))
        if remaining:
            plan.missing.append(replace(need, count=remaining))
    return plan


def _place_together(
    need: Need, ranked: list[Candidate], left: Mapping[str, int], room: Callable[[str], int]
) -> list[tuple[Candidate, int]] | None:
    """The whole group in the best-ranked facility that has room for all of it (over its pools that fit, best
    pool first), or None: a group is never split across facilities."""
    by_facility: dict[str, list[Candidate]] = {}
    for cand in ranked:  # dicts keep insertion order: facilities come in the order of their best pool
        by_facility.setdefault(cand.facility.id, []).append(cand)
    for facility_id, cands in by_facility.items():
        free = sum(max(0, left[c.pool.id]) for c in cands)
        if free < need.count or room(facility_id) < need.count:
            continue
        placed, remaining = [], need.count
        for cand in cands:
            take = min(left[cand.pool.id], remaining)
            if take > 0:
                placed.append((cand, take))
                remaining -= take
            if remaining == 0:
                return placed
    return None


def trim(plan: Plan, max_beds: int) -> Plan:
    """The plan cut down to at most `max_beds` beds, in its own order (groups kept together first, then specific
    profiles, best pools first); what is cut is added to what is missing, per need. A group kept together is kept
    whole or cut whole. For a partial allocation under a hold limit."""
    group_beds: dict[str, int] = {}
    for proposal in plan.proposals:
        if proposal.keep_together:
            group_beds[proposal.need_profile] = group_beds.get(proposal.need_profile, 0) + proposal.beds
    kept: list[Proposal] = []
    cut: dict[str, int] = {}
    together: dict[str, bool] = {}  # a group's fate, decided at its first proposal
    room = max(0, max_beds)
    for proposal in plan.proposals:
        if proposal.keep_together:
            if proposal.need_profile not in together:
                together[proposal.need_profile] = group_beds[proposal.need_profile] <= room
                if together[proposal.need_profile]:
                    room -= group_beds[proposal.need_profile]
            take = proposal.beds if together[proposal.need_profile] else 0
        else:
            take = min(proposal.beds, room)
            room -= take
        if take:
            kept.append(replace(proposal, beds=take))
        if take < proposal.beds:
            cut[proposal.need_profile] = cut.get(proposal.need_profile, 0) + proposal.beds - take
    missing = {m.profile: m for m in plan.missing}
    for profile, count in cut.items():
        before = missing.get(profile)
        if before is not None:
            missing[profile] = replace(before, count=before.count + count)
        else:
            missing[profile] = Need(profile, count, keep_together=profile in group_beds)
    return Plan(kept, list(missing.values()))
