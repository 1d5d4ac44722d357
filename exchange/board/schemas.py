"""Request and response bodies of the beds API. Unknown fields are refused."""

from __future__ import annotations

from datetime import datetime

import msgspec

from beds.board import FacilityListing
from beds.models import BedPool


class Body(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TokenRequest(Body):
    username: str
    password: str


class AdjustRequest(Body):
    occupied_delta: int = 0
    out_of_service_delta: int = 0


class PutPoolRequest(Body):
    capacity: int
    occupied: int
    out_of_service: int
    version: int


class SurgeRequest(Body):
    beds: int
    expires_at: datetime
    reason: str = ""


class PoolOut(msgspec.Struct):
    id: str
    profile: str
    capacity: int
    occupied: int
    out_of_service: int
    held: int
    free: int
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, pool: BedPool) -> PoolOut:
        return cls(
            id=pool.id,
            profile=str(pool.profile),
            capacity=pool.capacity,
            occupied=pool.occupied,
            out_of_service=pool.out_of_service,
            held=pool.held,
            free=pool.free,
            version=pool.version,
            updated_at=pool.updated_at,
        )


class Criteria(msgspec.Struct):
    genders: list[str]
    age_min: int
    age_max: int | None
    sobriety_required: bool
    asylum_seekers_only: bool
    accepts_trafficking: bool
    accepts_worker_referral: bool
    languages: list[str]
    accessible: bool
    children_accompanied: bool
    max_stay_nights: int | None


class FacilityOut(msgspec.Struct, omit_defaults=True):
    id: str
    organisation_id: str
    name: str
    kind: str
    province: str
    city: str
    area: str
    security_level: str
    criteria: Criteria
    updated_at: datetime
    stale: bool
    pools: list[PoolOut]
    # Present only where the caller may see them (DESIGN.md, Visibility).
    address: str | None = None
    intake_phone: str | None = None

    @classmethod
    def of(cls, listing: FacilityListing, *, with_contact: bool) -> FacilityOut:
        f = listing.facility
        return cls(
            id=f.id,
            organisation_id=f.organisation_id,
            name=f.name,
            kind=str(f.kind),
            province=f.province,
            city=f.city,
            area=f.area,
            security_level=str(f.security_level),
            criteria=Criteria(
                genders=[g for g in f.genders.split(",") if g],
                age_min=f.age_min,
                age_max=f.age_max,
                sobriety_required=f.sobriety_required,
                asylum_seekers_only=f.asylum_seekers_only,
                accepts_trafficking=f.accepts_trafficking,
                accepts_worker_referral=f.accepts_worker_referral,
                languages=[lang for lang in f.languages.split(",") if lang],
                accessible=f.accessible,
                children_accompanied=f.children_accompanied,
                max_stay_nights=f.max_stay_nights,
            ),
            updated_at=f.updated_at,
            stale=listing.stale,
            pools=[PoolOut.of(p) for p in listing.pools],
            address=f.address if with_contact else None,
            intake_phone=f.intake_phone if with_contact else None,
        )


class UserOut(msgspec.Struct):
    id: str
    username: str
    display_name: str
    organisation_id: str
    roles: list[str]


class TokenResponse(msgspec.Struct):
    token: str
    user: UserOut


class PoolChangeOut(msgspec.Struct):
    at: datetime
    reason: str
    actor_user_id: str | None
    before: dict[str, int]
    after: dict[str, int]
