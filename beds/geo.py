"""Where places are: a point for each Canadian city the network works in, and distances between places.

Points are at city precision only (a city's centre, never an address), so a confidential facility's point says
no more than its city already does. The table is static and offline: a city it does not know falls back to
its province's centroid, which is coarse but keeps a neighbouring province nearer than one across the country.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from math import asin, cos, radians, sin, sqrt
from typing import Any, Protocol, TypeVar

from beds.places import city_key

Point = tuple[float, float]  # latitude, longitude, in degrees
T = TypeVar("T")
S = TypeVar("S", bound="_Summary")

# Geographic centroids of the provinces and territories: the point of a city this table does not know.
PROVINCE_CENTROIDS: dict[str, Point] = {
    "AB": (53.93, -116.58),
    "BC": (53.73, -127.65),
    "MB": (53.76, -98.81),
    "NB": (46.57, -66.46),
    "NL": (53.14, -57.66),
    "NS": (44.68, -63.74),
    "NT": (64.83, -124.85),
    "NU": (70.30, -83.11),
    "ON": (51.25, -85.32),
    "PE": (46.51, -63.42),
    "QC": (52.94, -73.55),
    "SK": (52.94, -106.45),
    "YT": (64.28, -135.00),
}

# City centres, by province; names as people write them (compared through beds/places.py `city_key`).
_CITIES: dict[str, dict[str, Point]] = {
    "QC": {
        "Montréal": (45.5017, -73.5673),
        "Québec": (46.8139, -71.2080),
        "Gatineau": (45.4765, -75.7013),
        "Sherbrooke": (45.4042, -71.8929),
        "Laval": (45.6066, -73.7124),
        "Longueuil": (45.5312, -73.5181),
        "Trois-Rivières": (46.3432, -72.5477),
        "Saguenay": (48.4284, -71.0687),
        "Lévis": (46.8032, -71.1779),
        "Rimouski": (48.4490, -68.5230),
        "Rouyn-Noranda": (48.2366, -79.0231),
        "Val-d'Or": (48.0975, -77.7828),
        "Saint-Jérôme": (45.7804, -74.0036),
        "Drummondville": (45.8838, -72.4843),
        "Saint-Jean-sur-Richelieu": (45.3071, -73.2626),
        "Terrebonne": (45.7000, -73.6333),
        "Granby": (45.4000, -72.7333),
        "Sept-Îles": (50.2169, -66.3810),
        "Chibougamau": (49.9167, -74.3667),
        "Kuujjuaq": (58.1047, -68.3984),
    },
    "ON": {
        "Toronto": (43.6532, -79.3832),
        "Ottawa": (45.4215, -75.6972),
        "Hamilton": (43.2557, -79.8711),
        "London": (42.9849, -81.2453),
        "Windsor": (42.3149, -83.0364),
        "Mississauga": (43.5890, -79.6441),
        "Brampton": (43.7315, -79.7624),
        "Markham": (43.8561, -79.3370),
        "Vaughan": (43.8361, -79.4983),
        "Oshawa": (43.8971, -78.8658),
        "Kitchener": (43.4516, -80.4925),
        "Waterloo": (43.4643, -80.5204),
        "Guelph": (43.5448, -80.2482),
        "St. Catharines": (43.1594, -79.2469),
        "Niagara Falls": (43.0896, -79.0849),
        "Barrie": (44.3894, -79.6903),
        "Peterborough": (44.3091, -78.3197),
        "Kingston": (44.2312, -76.4860),
        "Belleville": (44.1628, -77.3832),
        "Cornwall": (45.0213, -74.7303),
        "Sudbury": (46.4917, -80.9930),
        "North Bay": (46.3091, -79.4608),
        "Sault Ste. Marie": (46.5219, -84.3461),
        "Timmins": (48.4758, -81.3305),
        "Thunder Bay": (48.3809, -89.2477),
        "Kenora": (49.7670, -94.4894),
    },
    "BC": {
        "Vancouver": (49.2827, -123.1207),
        "Victoria": (48.4284, -123.3656),
        "Surrey": (49.1913, -122.8490),
        "Burnaby": (49.2488, -122.9805),
        "Richmond": (49.1666, -123.1336),
        "Abbotsford": (49.0504, -122.3045),
        "Nanaimo": (49.1659, -123.9401),
        "Kelowna": (49.8880, -119.4960),
        "Kamloops": (50.6745, -120.3273),
        "Prince George": (53.9171, -122.7497),
        "Prince Rupert": (54.3150, -130.3208),
    },
    "AB": {
        "Calgary": (51.0447, -114.0719),
        "Edmonton": (53.5461, -113.4938),
        "Red Deer": (52.2681, -113.8112),
        "Lethbridge": (49.6956, -112.8451),
        "Medicine Hat": (50.0405, -110.6766),
        "Fort McMurray": (56.7267, -111.3810),
        "Grande Prairie": (55.1707, -118.7947),
    },
    "SK": {
        "Regina": (50.4452, -104.6189),
        "Saskatoon": (52.1332, -106.6700),
        "Prince Albert": (53.2033, -105.7531),
        "Moose Jaw": (50.3934, -105.5519),
        "North Battleford": (52.7575, -108.2861),
    },
    "MB": {
        "Winnipeg": (49.8951, -97.1384),
        "Brandon": (49.8485, -99.9501),
        "Steinbach": (49.5258, -96.6845),
        "Thompson": (55.7435, -97.8558),
    },
    "NB": {
        "Moncton": (46.0878, -64.7782),
        "Dieppe": (46.0984, -64.7242),
        "Saint John": (45.2733, -66.0633),
        "Fredericton": (45.9636, -66.6431),
        "Bathurst": (47.6186, -65.6513),
        "Miramichi": (47.0296, -65.5016),
        "Edmundston": (47.3737, -68.3251),
    },
    "NS": {
        "Halifax": (44.6488, -63.5752),
        "Dartmouth": (44.6713, -63.5772),
        "Truro": (45.3650, -63.2863),
        "Sydney": (46.1368, -60.1942),
        "Yarmouth": (43.8375, -66.1174),
    },
    "PE": {"Charlottetown": (46.2382, -63.1311), "Summerside": (46.3934, -63.7902)},
    "NL": {
        "St. John's": (47.5615, -52.7126),
        "Corner Brook": (48.9500, -57.9333),
        "Gander": (48.9569, -54.6089),
        "Happy Valley-Goose Bay": (53.3017, -60.3261),
        "Labrador City": (52.9463, -66.9114),
    },
    "YT": {"Whitehorse": (60.7212, -135.0568), "Dawson City": (64.0601, -139.4320)},
    "NT": {"Yellowknife": (62.4540, -114.3718), "Hay River": (60.8156, -115.7999), "Inuvik": (68.3607, -133.7230)},
    "NU": {"Iqaluit": (63.7467, -68.5170), "Rankin Inlet": (62.8090, -92.0853), "Cambridge Bay": (69.1169, -105.0597)},
}

_BY_KEY: dict[tuple[str, str], Point] = {
    (province, city_key(city)): point for province, cities in _CITIES.items() for city, point in cities.items()
}

EARTH_RADIUS_KM = 6371.0


def known_city(province: str, city: str) -> bool:
    """Whether the table has this city's own point (not only its province's centroid)."""
    return (province, city_key(city)) in _BY_KEY


@lru_cache(maxsize=4096)
def point_of(province: str, city: str = "") -> Point | None:
    """The city's centre, else its province's centroid; None for a province code nobody knows."""
    return _BY_KEY.get((province, city_key(city))) or PROVINCE_CENTROIDS.get(province)


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance (haversine): roads are longer, but the order of places is what the planner needs."""
    lat1, lon1, lat2, lon2 = map(radians, (*a, *b))
    h = sin((lat2 - lat1) / 2) ** 2 + cos(lat1) * cos(lat2) * sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))


def km_between(province_a: str, city_a: str, province_b: str, city_b: str) -> int | None:
    """Whole kilometres between two places (0 within one city); None when either province is unknown."""
    if province_a == province_b and city_key(city_a) == city_key(city_b) and city_a:
        return 0
    a, b = point_of(province_a, city_a), point_of(province_b, city_b)
    if a is None or b is None:
        return None
    return round(distance_km(a, b))


_NAMES: dict[tuple[str, str], str] = {
    (province, city_key(city)): city for province, cities in _CITIES.items() for city in cities
}


def place_named(city: str, province: str | None = None) -> tuple[str, str] | None:
    """(province, city) of a city as typed ("moncton" → ("NB", "Moncton")), in `province` when given, where a city
    this table does not know stands for its province's centroid; None when there is no telling where it is."""
    key = city_key(city)
    if province:
        if province not in PROVINCE_CENTROIDS:
            return None
        return province, _NAMES.get((province, key), city.strip())
    found = sorted(p for (p, k) in _NAMES if k == key)
    return (found[0], _NAMES[(found[0], key)]) if key and found else None


def nearest_first(
    items: list[T], place: tuple[str, str], where: Callable[[T], tuple[str, str]]
) -> list[tuple[T, int | None]]:
    """The items with their distance from `place` in whole kilometres, nearest first (a stable sort, so equals keep
    their order); an item whose province nobody knows goes last."""
    province, city = place
    measured = [(item, km_between(province, city, *where(item))) for item in items]
    measured.sort(key=lambda pair: (pair[1] is None, pair[1] or 0))
    return measured


class _Summary(Protocol):
    province: str
    cities: list[Any]


def nearest_summaries(summaries: list[S], home: tuple[str, str]) -> list[S]:
    """The board's summary (beds/board.py `summarize`) nearest first from `home` (province, city): each province's
    cities by distance, and the provinces by their nearest city. Without a home, as it was."""
    province, city = home
    if not province:
        return summaries

    def km(place_province: str, place_city: str) -> float:
        found = km_between(province, city, place_province, place_city)
        return float("inf") if found is None else found

    for summary in summaries:
        summary.cities.sort(key=lambda c: (km(c.province, c.city), city_key(c.city)))

    def nearest(summary: S) -> tuple[float, str]:
        first = summary.cities[0] if summary.cities else None
        return (km(first.province, first.city) if first else float("inf"), summary.province)

    return sorted(summaries, key=nearest)
