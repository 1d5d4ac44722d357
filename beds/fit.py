"""Whether a facility fits a person: the one eligibility rule the board's filters and the planner share.

Pure: it reads a facility's admission criteria from any object with the facility's attributes (an ORM
`Facility` or a plain row of the board's query), so the board and the planner cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from beds.models import Profile

# Ages each profile stands for (DESIGN.md: youth are 16-18; young adults, 18-25, fit neither youth nor general
# shelters and are named by the field research).
YOUTH_AGES = (16, 17)
YOUNG_ADULT_AGES = (18, 25)
ADULT_AGE = 18

# Languages the forms offer, as ISO 639 codes (the board shows them as facilities list them: "fr", "en"):
# Canada's two official languages, the most spoken others, and Indigenous languages of the network's regions.
LANGUAGES: tuple[str, ...] = (
    "en",
    "fr",
    "es",
    "ar",
    "zh",
    "pa",
    "tl",
    "pt",
    "uk",
    "ru",
    "vi",
    "ko",
    "fa",
    "hi",
    "ur",
    "ta",
    "so",
    "ti",
    "am",
    "sw",
    "ht",
    "cr",
    "iu",
    "oj",
    "mic",
)
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
CULTURAL_SUPPORT_MAX = 200


def valid_language(code: str) -> bool:
    """A language code as facilities list them: two or three lowercase letters (ISO 639-1 or -3)."""
    return bool(_LANGUAGE_CODE.fullmatch(code))


def genders_of(facility: Any) -> set[str]:
    return {g for g in str(facility.genders or "").split(",") if g}


def languages_of(facility: Any) -> list[str]:
    return [lang.strip().lower() for lang in str(facility.languages or "").split(",") if lang.strip()]


def speaks(facility: Any, language: str) -> bool:
    """Whether the facility's staff serve people in this language; no language asked is always true."""
    return not language or language.lower() in languages_of(facility)


def culturally_specific(facility: Any) -> bool:
    """Indigenous-led, or offering culturally specific support: what a group that prefers it looks for."""
    return bool(getattr(facility, "indigenous_led", False) or getattr(facility, "culturally_specific", False))


def _ages_overlap(facility: Any, low: int, high: int) -> bool:
    age_max = facility.age_max
    return facility.age_min <= high and (age_max is None or age_max >= low)


def profile_fits(facility: Any, pool_profile: str, profile: str) -> bool:
    """Whether a pool of `pool_profile` in this facility may take a person of `profile`: its own profile's pools,
    or an "any" pool of a facility whose genders and ages admit the person (an 18+ hotel's "any" beds are not
    youth beds). Admission of trafficking victims is the planner's own further rule (beds/planner.py `admits`)."""
    if pool_profile not in (profile, Profile.ANY.value):
        return False
    if profile == Profile.WOMEN.value:
        return "women" in genders_of(facility) and _ages_overlap(facility, ADULT_AGE, 200)
    if profile == Profile.MEN.value:
        return "men" in genders_of(facility) and _ages_overlap(facility, ADULT_AGE, 200)
    if profile == Profile.YOUTH.value:
        return _ages_overlap(facility, *YOUTH_AGES)
    if profile == Profile.YOUNG_ADULT.value:
        return _ages_overlap(facility, *YOUNG_ADULT_AGES)
    if profile == Profile.FAMILY.value:
        return pool_profile == Profile.FAMILY.value or bool(facility.children_accompanied)
    return True  # "any": whatever the pool takes
