"""Places as people type them: a city matches whatever its accents, case, hyphens or spacing.

"Montreal", "montréal" and "MONTRÉAL" are one city; "Saint-Jean" and "saint jean" too. The board, the API's
filters and the planner all compare cities through `city_key`, so a search never depends on the keyboard.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Spaces, hyphens and dashes of any kind (U+2010 to U+2014), underscores.
_SEPARATORS = re.compile("[\\s\\-\u2010-\u2014_]+")
# Marks people type or leave out at will: "St. John's", "St Johns" and "st johns" are one city.
_DROPPED = re.compile("[.'\u2019]")


# A network has a few hundred city names; the board keys each facility's city on every read.
@lru_cache(maxsize=8192)
def city_key(text: str | None) -> str:
    """The comparable form of a city's name: no accents, case folded, no dots or apostrophes, hyphens and runs of
    spaces as one space."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", _DROPPED.sub("", bare.casefold())).strip()


def same_city(a: str | None, b: str | None) -> bool:
    return city_key(a) == city_key(b)


def closest_city(typed: str, cities: Iterable[str]) -> str | None:
    """The existing city a mistyped name most likely meant ("Montrea" → "Montréal"), or None if none is close."""
    by_key = {city_key(city): city for city in cities}
    wanted = city_key(typed)
    if not wanted or not by_key:
        return None
    prefixed = sorted(key for key in by_key if key.startswith(wanted))
    if prefixed:
        return by_key[prefixed[0]]
    close = difflib.get_close_matches(wanted, list(by_key), n=1, cutoff=0.6)
    return by_key[close[0]] if close else None
