"""Creating and changing facilities and their pools (network admin)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import Invalid, NotFound
from beds.fit import CULTURAL_SUPPORT_MAX
from beds.models import PROVINCES, BedPool, Facility, FacilityKind, Profile, SecurityLevel

EDITABLE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "province",
        "city",
        "area",
        "address",
        "intake_phone",
        "oncall_email",
        "security_level",
        "genders",
        "age_min",
        "age_max",
        "sobriety_required",
        "asylum_seekers_only",
        "accepts_trafficking",
        "accepts_worker_referral",
        "languages",
        "accessible",
        "children_accompanied",
        "max_stay_nights",
        "indigenous_led",
        "culturally_specific",
        "cultural_support",
        "active",
    }
)


def _validate(fields: dict[str, Any]) -> None:
    if "kind" in fields and fields["kind"] not in set(FacilityKind):
        raise Invalid("invalid_kind", f"Unknown facility kind {fields['kind']!r}.")
    if "province" in fields and fields["province"] not in PROVINCES:
        raise Invalid("invalid_province", f"Unknown province code {fields['province']!r}.")
    if "security_level" in fields and fields["security_level"] not in set(SecurityLevel):
        raise Invalid("invalid_security_level", "Security level is standard, heightened or high.")
    if "name" in fields and not str(fields["name"]).strip():
        raise Invalid("invalid_name", "A facility needs a name.")
    age_min, age_max = fields.get("age_min"), fields.get("age_max")
    if age_min is not None and not 0 <= int(age_min) <= 120:
        raise Invalid("invalid_age", "Minimum age must be between 0 and 120.")
    if age_max is not None and age_min is not None and int(age_max) < int(age_min):
        raise Invalid("invalid_age", "Maximum age is below minimum age.")
    if len(str(fields.get("cultural_support") or "")) > CULTURAL_SUPPORT_MAX:
        raise Invalid(
            "invalid_cultural_support",
            f"Describe the culturally specific support in {CULTURAL_SUPPORT_MAX} characters at most.",
        )


async def create_facility(session: AsyncSession, *, organisation_id: str, **fields: Any) -> Facility:
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise Invalid("unknown_fields", f"Unknown facility fields: {', '.join(sorted(unknown))}.")
    _validate(fields)
    facility = Facility(organisation_id=organisation_id, **fields)
    session.add(facility)
    await session.commit()
    return facility


async def update_facility(session: AsyncSession, facility_id: str, **fields: Any) -> Facility:
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise Invalid("unknown_fields", f"Unknown facility fields: {', '.join(sorted(unknown))}.")
    _validate(fields)
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise NotFound("not_found", "No such facility.")
    for name, value in fields.items():
        setattr(facility, name, value)
    session.add(facility)
    await session.commit()
    return facility


async def add_pool(session: AsyncSession, facility_id: str, *, profile: str, capacity: int) -> BedPool:
    if profile not in set(Profile):
        raise Invalid("invalid_profile", f"Unknown bed profile {profile!r}.")
    if not 0 <= capacity <= 2000:
        raise Invalid("invalid_capacity", "Capacity must be between 0 and 2000.")
    if await session.get(Facility, facility_id) is None:
        raise NotFound("not_found", "No such facility.")
    pool = BedPool(facility_id=facility_id, profile=Profile(profile), capacity=capacity)
    session.add(pool)
    await session.commit()
    return pool


async def facility_ids_of(session: AsyncSession, organisation_id: str) -> frozenset[str]:
    """The facilities an organisation runs (its staff change their counts)."""
    rows = await session.execute(select(Facility.id).where(Facility.organisation_id == organisation_id))
    return frozenset(rows.scalars().all())


async def all_facilities(session: AsyncSession) -> list[Facility]:
    """Every facility, listed or not, by province then name."""
    rows = await session.execute(select(Facility).order_by(Facility.province, Facility.name))
    return list(rows.scalars().all())


async def pool_counts(session: AsyncSession) -> dict[str, int]:
    """How many bed pools each facility has (a facility without one is absent)."""
    rows = await session.execute(select(BedPool.facility_id, func.count()).group_by(BedPool.facility_id))
    return {facility_id: count for facility_id, count in rows.all()}
