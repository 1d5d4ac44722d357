"""The planner: which pools could cover an operation's needs, best first. Pure (no session, no I/O), so
beds/operations.py feeds it the candidates it read and tests call it with plain objects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel
from beds.places import same_city


@dataclass(frozen=True)
class Need:
    profile: str
    count: int


@dataclass(frozen=True)
class PlanOptions:
    allow_other_cities: bool = False
    allow_other_provinces: bool = False


@dataclass(frozen=True)
class Candidate:
    pool: BedPool
    facility: Facility


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


@dataclass
class Plan:
    proposals: list[Proposal] = field(default_factory=list)
    missing: list[Need] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return not self.missing


def admits(facility: Facility, pool: BedPool, need_profile: str) -> bool:
    """Whether this pool may take a trafficking victim of this profile (DESIGN.md admission criteria)."""
    if not facility.active or not facility.accepts_trafficking or facility.asylum_seekers_only:
        return False
    if pool.profile not in (need_profile, Profile.ANY.value):
        return False
    genders = set(facility.gender_list)
    age_max = facility.age_max
    if need_profile == Profile.WOMEN.value:
        return "women" in genders and (age_max is None or age_max >= 18)
    if need_profile == Profile.MEN.value:
        return "men" in genders and (age_max is None or age_max >= 18)
    if need_profile == Profile.YOUTH.value:
        # 16 and 17-year-olds: the facility's age range must reach down to them.
        return facility.age_min <= 17 and (age_max is None or age_max >= 16)
    if need_profile == Profile.FAMILY.value:
        return pool.profile == Profile.FAMILY.value or facility.children_accompanied
    return True  # "any": whatever the pool takes


_SECURITY_RANK = {SecurityLevel.HIGH.value: 0, SecurityLevel.HEIGHTENED.value: 1, SecurityLevel.STANDARD.value: 2}


def _rank(candidate: Candidate, province: str, city: str, need_profile: str) -> tuple:
    f, p = candidate.facility, candidate.pool
    in_city = f.province == province and city and same_city(f.city, city)
    locality = 0 if in_city else 1 if f.province == province else 2
    return (
        locality,
        _SECURITY_RANK.get(str(f.security_level), 3),
        0 if f.kind == FacilityKind.TRAFFICKING_SHELTER.value else 1,
        0 if p.profile == need_profile else 1,  # keep "any" pools for needs nothing else covers
        -p.free,
        p.id,
    )


def in_reach(facility: Facility, province: str, city: str, options: PlanOptions) -> bool:
    if options.allow_other_provinces:
        return True
    if facility.province != province:
        return False
    return options.allow_other_cities or not city or same_city(facility.city, city)


def propose(
    needs: Iterable[Need], candidates: list[Candidate], *, province: str, city: str, options: PlanOptions
) -> Plan:
    """Greedy cover of each need by the best-ranked pools in reach; pure, so it is tested on its own.

    Specific profiles are placed before "any" so a flexible pool is not used up by a need that
    had other options.
    """
    plan = Plan()
    left = {c.pool.id: c.pool.free for c in candidates}
    ordered = sorted(needs, key=lambda n: (n.profile == Profile.ANY.value, n.profile))
    for need in ordered:
        remaining = need.count
        pool_cands = [
            c
            for c in candidates
            if admits(c.facility, c.pool, need.profile) and in_reach(c.facility, province, city, options)
        ]
        pool_cands.sort(key=lambda c: _rank(c, province, city, need.profile))
        for cand in pool_cands:
            if remaining == 0:
                break
            take = min(left[cand.pool.id], remaining)
            if take <= 0:
                continue
            left[cand.pool.id] -= take
            remaining -= take
            f = cand.facility
            plan.proposals.append(
                Proposal(
                    pool_id=cand.pool.id,
                    facility_id=f.id,
                    facility_name=f.name,
                    province=f.province,
                    city=f.city,
                    security_level=str(f.security_level),
                    kind=str(f.kind),
                    pool_profile=str(cand.pool.profile),
                    need_profile=need.profile,
                    beds=take,
                    genders=f.gender_list,
                    age_min=f.age_min,
                    age_max=f.age_max,
                    children_accompanied=f.children_accompanied,
                )
            )
        if remaining:
            plan.missing.append(Need(need.profile, remaining))
    return plan


def trim(plan: Plan, max_beds: int) -> Plan:
    """The plan cut down to at most `max_beds` beds, in its own order (specific profiles first, best pools
    first); what is cut is added to what is missing, per need. For a partial allocation under a hold limit."""
    kept: list[Proposal] = []
    cut: dict[str, int] = {}
    room = max(0, max_beds)
    for proposal in plan.proposals:
        take = min(proposal.beds, room)
        room -= take
        if take:
            kept.append(replace(proposal, beds=take))
        if take < proposal.beds:
            cut[proposal.need_profile] = cut.get(proposal.need_profile, 0) + proposal.beds - take
    missing = {m.profile: m.count for m in plan.missing}
    for profile, count in cut.items():
        missing[profile] = missing.get(profile, 0) + count
    order = [m.profile for m in plan.missing] + [p for p in cut if p not in {m.profile for m in plan.missing}]
    return Plan(kept, [Need(profile, missing[profile]) for profile in order])
