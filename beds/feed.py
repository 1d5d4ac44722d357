"""The partner feed's rule (DESIGN.md: a `partner` reads aggregated availability, nothing else): free beds summed
per city and profile, never a facility's name, so a confidential shelter is not singled out; and the cursor a
partner polls with.

Pure: it takes pools as some viewer sees them (`beds/board.py` `as_seen`, for a viewer party to nothing, so beds
held for police and beds kept for partners are already not free) and returns plain values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beds.errors import Invalid
from beds.places import city_key

# A write's time is taken before it commits, so a change can land with a time a little before the moment a partner
# read the feed: the cursor never goes past `SETTLE` before that moment, so such a change is still after it (a city
# changed in the last seconds comes again on the next poll: a harmless repeat, never a miss). On a quiet network the
# cursor is the latest change itself, so the body, and its ETag, stay the same from poll to poll.
SETTLE = timedelta(seconds=5)


@dataclass
class CityAvailability:
    province: str
    city: str
    free: dict[str, int] = field(default_factory=dict)  # profile -> free beds
    changed_at: datetime | None = None  # the latest change of any of its pools

    def as_json(self) -> dict[str, Any]:
        return {
            "province": self.province,
            "city": self.city,
            "free": dict(sorted(self.free.items())),
            "total_free": sum(self.free.values()),
        }


@dataclass(frozen=True)
class Feed:
    cities: list[CityAvailability]
    cursor: datetime | None  # the latest change of any pool: the next poll's `since`

    def as_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor.isoformat() if self.cursor else None,
            "cities": [c.as_json() for c in self.cities],
        }


def aggregate(facilities: Iterable[tuple[Any, Iterable[Any]]]) -> list[CityAvailability]:
    """(facility, its pools as seen) -> free beds per city and profile, cities in province then city order.
    Cities compare by `city_key`, so "Montreal" and "Montréal" are one city (the first spelling met is kept)."""
    by_city: dict[tuple[str, str], CityAvailability] = {}
    for facility, pools in facilities:
        key = (facility.province, city_key(facility.city))
        city = by_city.setdefault(key, CityAvailability(facility.province, facility.city))
        for pool in pools:
            profile = str(getattr(pool.profile, "value", pool.profile))
            city.free[profile] = city.free.get(profile, 0) + max(int(pool.free), 0)
            if city.changed_at is None or pool.updated_at > city.changed_at:
                city.changed_at = pool.updated_at
    return [by_city[k] for k in sorted(by_city, key=lambda k: (k[0], k[1]))]


def feed(cities: list[CityAvailability], now: datetime, since: datetime | None = None) -> Feed:
    """The whole feed, or with `since` only the cities changed after it."""
    latest = max((c.changed_at for c in cities if c.changed_at is not None), default=None)
    cursor = min(latest, now - SETTLE) if latest is not None else None
    if since is not None:
        cities = [c for c in cities if c.changed_at is not None and c.changed_at > since]
        cursor = max(cursor, since) if cursor is not None else since
    return Feed(cities, cursor)


def parse_since(text: str | None) -> datetime | None:
    """A cursor from a previous answer: an ISO-8601 time with its offset."""
    if text is None or text == "":
        return None
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise Invalid(
            "invalid_since",
            "since must be the cursor of a previous answer: an ISO-8601 time with its offset, "
            "e.g. 2026-12-01T21:00:00+00:00.",
        )
    return at


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def body_of(document: dict[str, Any]) -> bytes:
    """One spelling per document, so equal feeds have equal ETags."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison over a list of tags, or `*`."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


class LiveFeed:
    """The feed kept up to date by pool changes, for one partner's stream: each change gives its city's new counts.

    Built from the pools as a viewer party to nothing sees them, then fed the `pool.updated` payloads that such a
    viewer receives (so police-held and kept beds stay not free). A change older than the pool's known version is a
    repeat and gives nothing; a pool of a facility unknown when the stream opened gives None (read the feed)."""

    def __init__(self, facilities: Iterable[tuple[Any, Iterable[Any]]]) -> None:
        self._place: dict[str, tuple[str, str]] = {}  # facility id -> (province, city as first spelled)
        self._pools: dict[str, tuple[tuple[str, str], str, int, int]] = {}  # pool id -> (city, profile, free, version)
        self._cities: dict[tuple[str, str], tuple[str, str]] = {}  # (province, city_key) -> the city as first spelled
        for facility, pools in facilities:
            place = self._city_of(facility.province, facility.city)
            self._place[facility.id] = place
            for pool in pools:
                profile = str(getattr(pool.profile, "value", pool.profile))
                self._pools[pool.id] = (place, profile, max(int(pool.free), 0), int(pool.version))

    def _city_of(self, province: str, city: str) -> tuple[str, str]:
        return self._cities.setdefault((province, city_key(city)), (province, city))

    def apply(self, facility_id: str, pool: dict[str, Any]) -> CityAvailability | None:
        place = self._place.get(facility_id)
        if place is None:
            return None
        known = self._pools.get(pool["id"])
        if known is not None and known[3] >= int(pool["version"]):
            return None
        self._pools[pool["id"]] = (place, str(pool["profile"]), max(int(pool["free"]), 0), int(pool["version"]))
        city = CityAvailability(*place)
        for where, profile, free, _ in self._pools.values():
            if where == place:
                city.free[profile] = city.free.get(profile, 0) + free
        return city

    def knows(self, facility_id: str) -> bool:
        return facility_id in self._place
