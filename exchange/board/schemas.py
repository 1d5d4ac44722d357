"""What the board's API and pages read from a request, and the bodies the beds API answers with.

Unknown body fields are refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar.di import Provide

from beds.board import CRITERIA, BoardFilter, FacilityListing, PoolView, kept_shown
from beds.fit import valid_language
from beds.models import BedPool, FacilityKind, PoolChange
from exchange.web.schemas import Body


@dataclass(frozen=True)
class BoardQuery:
    """The filters the board page and the facilities API both take from the query string; None is any."""

    province: str | None = None
    city: str | None = None
    profile: str | None = None
    kind: str | None = None
    language: str | None = None

    def to_filter(self, *, criteria: Iterable[str] = (), min_free: int = 0, lenient: bool = False) -> BoardFilter:
        """The domain's filter. The API refuses an unknown kind or criterion (422); the board page (`lenient`,
        where an old bookmark may carry one) drops it and shows the board without that filter."""
        kind, wanted, language = self.kind, frozenset(criteria), self.language
        if lenient:
            kind = kind if kind in FacilityKind.__members__.values() else None
            wanted &= CRITERIA.keys()
            language = language if language and valid_language(language) else None
        return BoardFilter(
            province=self.province,
            city=self.city,
            profile=self.profile,
            kind=kind,
            criteria=wanted,
            min_free=min_free,
            language=language,
        )


def board_query(
    province: str | None = None,
    city: str | None = None,
    profile: str | None = None,
    kind: str | None = None,
    language: str | None = None,
) -> BoardQuery:
    """Dependency of the board's list handlers; an empty field (a form's "All") is no filter."""
    return BoardQuery(province or None, city or None, profile or None, kind or None, language or None)


# The board's list handlers declare this and take `where: BoardQuery`.
WHERE = {"where": Provide(board_query, sync_to_thread=False)}


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


class KeptOut(msgspec.Struct):
    """Unused beds a standing agreement keeps for one partner: shown to the partner, the facility's organisation
    and the coordinators only."""

    organisation_id: str
    name: str
    beds: int


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
    # Unused kept beds this caller may know of (others see them in out_of_service: not free), and for whom.
    kept: int = 0
    kept_for: list[KeptOut] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, pool: BedPool) -> PoolOut:
        """From a pool as seen (beds/board.py `as_seen`), or a pool its own staff wrote (every kept bed shown)."""
        shown = kept_shown(pool)
        kept = sum(k.beds for k in shown) if isinstance(pool, PoolView) else pool.kept - pool.kept_in_use
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
            kept=kept,
            kept_for=[KeptOut(k.organisation_id, k.name, k.beds) for k in shown],
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
    indigenous_led: bool
    culturally_specific: bool
    cultural_support: str

    @classmethod
    def of(cls, facility: Any) -> Criteria:
        """From a facility row: the criteria are its columns of the same names, the lists split on commas."""
        fields = {name: getattr(facility, name) for name in cls.__struct_fields__}
        for name in ("genders", "languages"):
            fields[name] = [item for item in fields[name].split(",") if item]
        return cls(**fields)


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
    # From the place the caller asked for (`near`), at city precision (beds/geo.py); absent otherwise.
    distance_km: int | None = None

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
            criteria=Criteria.of(f),
            updated_at=f.updated_at,
            stale=listing.stale,
            pools=[PoolOut.of(p) for p in listing.pools],
            address=f.address if with_contact else None,
            intake_phone=f.intake_phone if with_contact else None,
        )


class PoolChangeOut(msgspec.Struct):
    at: datetime
    reason: str
    actor_user_id: str | None
    before: dict[str, int]
    after: dict[str, int]

    @classmethod
    def of(cls, change: PoolChange) -> PoolChangeOut:
        return cls(
            at=change.at,
            reason=change.reason,
            actor_user_id=change.actor_user_id,
            before=_counts(change, "before"),
            after=_counts(change, "after"),
        )


def _counts(change: PoolChange, side: str) -> dict[str, int]:
    return {name: getattr(change, f"{name}_{side}") for name in ("capacity", "occupied", "out_of_service", "held")}
