"""The facilities API's placement-fit filters: Indigenous-led or culturally specific support, and `near` a city
(each facility's distance at city precision, nearest first: beds/geo.py)."""

from __future__ import annotations

from typing import Any

from beds.board import FacilityListing
from beds.errors import Invalid
from beds.geo import nearest_first, place_named
from exchange.board.schemas import FacilityOut

__all__ = ["facility_place", "fit_criteria", "near_place", "nearest_first", "with_distance"]


def fit_criteria(indigenous_led: bool, culturally_specific: bool) -> list[tuple[str, bool]]:
    """The board's criteria (beds/board.py `CRITERIA`) the API's flags stand for."""
    return [("indigenous_led", indigenous_led), ("culturally_specific", culturally_specific)]


def near_place(near: str | None, province: str | None) -> tuple[str, str] | None:
    """The place `near` names, or None when not asked; 422 `unknown_city` when there is no telling where it is."""
    if near is None or not near.strip():
        return None
    place = place_named(near, province)
    if place is None:
        raise Invalid(
            "unknown_city",
            f"No known city {near!r}: give a Canadian city, with its province (province=NB) if it is a small one.",
            field="near",
        )
    return place


def facility_place(listing: FacilityListing | Any) -> tuple[str, str]:
    return listing.facility.province, listing.facility.city


def with_distance(out: FacilityOut, km: int | None) -> FacilityOut:
    out.distance_km = km
    return out
