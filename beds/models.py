"""Tables of the bed inventory: facilities, bed pools, their history and surge beds."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from beds.timeutil import UTCDateTime, utcnow


def new_id() -> str:
    return uuid.uuid4().hex


class FacilityKind(StrEnum):
    VAW_SHELTER = "vaw_shelter"
    TRAFFICKING_SHELTER = "trafficking_shelter"
    YOUTH = "youth"
    MEN = "men"
    FAMILY = "family"
    MIGRANT_REFUGEE = "migrant_refugee"
    HOMELESS = "homeless"
    TRANSITION_HOUSING = "transition_housing"
    ROTATING_SAFE_HOUSE = "rotating_safe_house"
    PARTNER_HOTEL = "partner_hotel"


class Profile(StrEnum):
    WOMEN = "women"
    MEN = "men"
    YOUTH = "youth"
    FAMILY = "family"
    ANY = "any"
    YOUNG_ADULT = "young_adult"  # 18-25 (beds/fit.py)


class SecurityLevel(StrEnum):
    STANDARD = "standard"
    HEIGHTENED = "heightened"
    HIGH = "high"


PROVINCES: dict[str, str] = {
    "AB": "Alberta",
    "BC": "British Columbia",
    "MB": "Manitoba",
    "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador",
    "NS": "Nova Scotia",
    "NT": "Northwest Territories",
    "NU": "Nunavut",
    "ON": "Ontario",
    "PE": "Prince Edward Island",
    "QC": "Quebec",
    "SK": "Saskatchewan",
    "YT": "Yukon",
}


class Facility(SQLModel, table=True):
    __tablename__ = "facility"

    id: str = Field(default_factory=new_id, primary_key=True)
    organisation_id: str = Field(foreign_key="organisation.id", index=True)
    name: str
    kind: FacilityKind
    province: str = Field(index=True)
    city: str
    area: str = ""  # coarse public area, e.g. "East end"; never the address
    address: str = ""  # confidential
    intake_phone: str = ""  # confidential
    oncall_email: str = ""
    security_level: SecurityLevel = SecurityLevel.STANDARD
    genders: str = "women"  # comma-separated: women, men, nonbinary
    age_min: int = 18
    age_max: int | None = None
    sobriety_required: bool = False
    asylum_seekers_only: bool = False
    accepts_trafficking: bool = True
    accepts_worker_referral: bool = True
    languages: str = "en"  # comma-separated ISO codes
    accessible: bool = False
    children_accompanied: bool = False
    max_stay_nights: int | None = None
    # Culturally specific help (beds/fit.py): Indigenous-led, or offering culturally specific support, said in
    # a short description the board shows.
    indigenous_led: bool = False
    culturally_specific: bool = False
    cultural_support: str = ""
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

    @property
    def gender_list(self) -> list[str]:
        return [g for g in self.genders.split(",") if g]

    @property
    def language_list(self) -> list[str]:
        return [lang for lang in self.languages.split(",") if lang]


class BedPool(SQLModel, table=True):
    """Beds of one profile in one facility. Free is derived and the database refuses to let it go negative."""

    __tablename__ = "bed_pool"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_nonneg"),
        CheckConstraint("occupied >= 0", name="occupied_nonneg"),
        CheckConstraint("out_of_service >= 0", name="out_of_service_nonneg"),
        CheckConstraint("held >= 0", name="held_nonneg"),
        CheckConstraint("kept >= 0", name="kept_nonneg"),
        CheckConstraint("kept_in_use >= 0 AND kept_in_use <= kept", name="kept_in_use_range"),
        # Kept beds not in use (standing agreements, beds/agreements.py) are not free either.
        CheckConstraint("occupied + out_of_service + held + kept - kept_in_use <= capacity", name="no_overbooking"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    facility_id: str = Field(foreign_key="facility.id", index=True)
    profile: Profile
    capacity: int = 0
    occupied: int = 0
    out_of_service: int = 0
    held: int = 0
    # Beds standing agreements keep (the sum of their K), and how many of them are in use: held by the
    # partner's holds, or occupied and not yet back (beds/agreements.py). The unused ones are not free.
    kept: int = 0
    kept_in_use: int = 0
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

    @property
    def kept_unused(self) -> int:
        return self.kept - self.kept_in_use

    @property
    def free(self) -> int:
        return self.capacity - self.occupied - self.out_of_service - self.held - self.kept_unused


class PoolChange(SQLModel, table=True):
    """One row per change of a pool: who, when, why, and the counts before and after."""

    __tablename__ = "pool_change"
    __table_args__ = (
        Index("ix_pool_change_pool_at", "pool_id", "at"),
        UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_pool_change_idempotency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool_id: str = Field(foreign_key="bed_pool.id")
    actor_user_id: str | None = None
    reason: str
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    capacity_before: int
    occupied_before: int
    out_of_service_before: int
    held_before: int
    capacity_after: int
    occupied_after: int
    out_of_service_after: int
    held_after: int
    # The pool's version after the change: with the counts after, the answer a replayed request gets again.
    version_after: int | None = None
    # A shelter's +1/-1 or surge sent with an Idempotency-Key (scoped to the user) acts once: HACKING.md.
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


class SurgeBeds(SQLModel, table=True):
    """Temporary beds (extreme weather, a mass rescue) that leave the pool on their own at `expires_at`."""

    __tablename__ = "surge_beds"

    id: str = Field(default_factory=new_id, primary_key=True)
    pool_id: str = Field(foreign_key="bed_pool.id", index=True)
    beds: int
    # Surge beds still counted in the pool's capacity; reaches 0 once every one has been withdrawn.
    beds_remaining: int
    reason: str = ""
    created_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
