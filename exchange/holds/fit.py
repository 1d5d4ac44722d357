"""Placement fit in the operation's form, body and answer: per needed group a language, "keep together" and
"prefers culturally specific support", and the operation's limit of people per facility (beds/planner.py).

The form's fields are strings, like the rest of `OperationForm` (exchange/holds/schemas.py derives from
`FitFields`), so whatever was typed comes back to the form beside its message.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from beds.errors import Invalid
from beds.holds_models import OperationNeed
from beds.planner import Need, PlanOptions, Proposal
from exchange.web.i18n import gettext as _

# A ticked checkbox sends its value; an unticked one sends nothing.
TICKED = ("true", "on", "yes", "1")
# Farther than across the country is no cap at all: the page's "any distance" sends it (a select cannot send
# nothing, and an empty number is not one).
MAX_DISTANCE_KM = 10_000
DISTANCE_CHOICES = (50, 100, 300, 500, 1000)


class FitFields(Struct):
    """The young adults' count (the profile came after the form's first fields) and the fit of each group."""

    need_young_adult: str = ""
    max_per_facility: str = ""
    need_women_language: str = ""
    need_women_together: str = ""
    need_women_cultural: str = ""
    need_men_language: str = ""
    need_men_together: str = ""
    need_men_cultural: str = ""
    need_youth_language: str = ""
    need_youth_together: str = ""
    need_youth_cultural: str = ""
    need_young_adult_language: str = ""
    need_young_adult_together: str = ""
    need_young_adult_cultural: str = ""
    need_family_language: str = ""
    need_family_together: str = ""
    need_family_cultural: str = ""
    need_any_language: str = ""
    need_any_together: str = ""
    need_any_cultural: str = ""

    def fit_need(self, profile: str, count: int) -> Need:
        """The group of `profile` with what the form asks of its facility."""
        language = str(getattr(self, f"need_{profile}_language", "")).strip().lower()
        together = str(getattr(self, f"need_{profile}_together", "")).strip().lower() in TICKED
        cultural = str(getattr(self, f"need_{profile}_cultural", "")).strip().lower() in TICKED
        return Need(profile, count, language, together, cultural)

    def cap(self) -> int | None:
        """The typed limit of people per facility: blank is no limit; anything but a whole number is refused."""
        text = self.max_per_facility.strip()
        if not text:
            return None
        if not text.isascii() or not text.isdigit() or len(text) > 6:
            raise Invalid(
                "invalid_max_per_facility", "The limit per facility is a whole number.", field="max_per_facility"
            )
        return int(text)


def fit_form_error(exc: Exception) -> dict[str, str] | None:
    """The message beside its field for the domain's placement-fit refusals; None for any other error."""
    code, extra = getattr(exc, "code", ""), getattr(exc, "extra", {}) or {}
    if code == "invalid_max_per_facility":
        return {
            "max_per_facility": _(
                "Write how many people may go to one facility at most (1 or more), or leave it blank."
            )
        }
    if code == "group_over_limit":
        return {
            "max_per_facility": _(
                "A group kept together is larger than this limit: raise the limit or do not keep the group together."
            )
        }
    if code == "invalid_language":
        return {f"need_{extra.get('profile', 'women')}": _("Choose a language from the list.")}
    return None


def need_json(need: OperationNeed) -> dict[str, Any]:
    """A need in the API: its profile and count, and what it asks of a facility only when it asks something."""
    out: dict[str, Any] = {"profile": need.profile, "count": need.count}
    if need.language:
        out["language"] = need.language
    if need.keep_together:
        out["keep_together"] = True
    if need.prefer_culturally_specific:
        out["prefer_culturally_specific"] = True
    return out


def plan_options(
    other_cities: bool, other_provinces: bool, max_distance_km: int | None, max_per_facility: int | None
) -> PlanOptions:
    """A plan request's options; a cap or a limit below 1 is refused (422), naming its field."""
    if max_distance_km is not None and not 1 <= max_distance_km <= MAX_DISTANCE_KM:
        raise Invalid(
            "invalid_max_distance",
            f"max_distance_km is a whole number of kilometres from 1 to {MAX_DISTANCE_KM}.",
            field="max_distance_km",
        )
    if max_per_facility is not None and max_per_facility < 1:
        raise Invalid(
            "invalid_max_per_facility", "max_per_facility is a whole number from 1 up.", field="max_per_facility"
        )
    cap = None if max_distance_km == MAX_DISTANCE_KM else max_distance_km
    return PlanOptions(other_cities, other_provinces, max_per_facility=max_per_facility, max_km=cap)


def nearest_first(proposals: list[Proposal]) -> list[Proposal]:
    """The plan's proposals nearest first (API.md), in the planner's order between equals; an unknown distance
    last."""
    return sorted(proposals, key=lambda p: (p.distance_km is None, p.distance_km or 0))
