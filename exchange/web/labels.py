"""Words shown for the domain's codes. Marked for the catalogue here, translated where shown."""

from __future__ import annotations

from typing import Any

from beds.models import FacilityKind, Profile, SecurityLevel
from exchange.web.i18n import N_, get_locale
from exchange.web.i18n import gettext as _

KIND_LABELS = {
    FacilityKind.VAW_SHELTER: N_("Violence-against-women shelter"),
    FacilityKind.TRAFFICKING_SHELTER: N_("Trafficking-specific shelter"),
    FacilityKind.YOUTH: N_("Youth resource"),
    FacilityKind.MEN: N_("Men's resource"),
    FacilityKind.FAMILY: N_("Family shelter"),
    FacilityKind.MIGRANT_REFUGEE: N_("Migrant and refugee shelter"),
    FacilityKind.HOMELESS: N_("Homeless shelter"),
    FacilityKind.TRANSITION_HOUSING: N_("Transition housing"),
    FacilityKind.ROTATING_SAFE_HOUSE: N_("Rotating safe house"),
    FacilityKind.PARTNER_HOTEL: N_("Partner hotel"),
}
PROFILE_LABELS = {
    Profile.WOMEN: N_("Women"),
    Profile.MEN: N_("Men"),
    Profile.YOUTH: N_("Youth 16-18"),
    Profile.YOUNG_ADULT: N_("Young adults 18-25"),
    Profile.FAMILY: N_("Family room"),
    Profile.ANY: N_("Any"),
}
CRITERIA_LABELS = {
    "accepts_trafficking": N_("Accepts trafficking victims"),
    "accepts_worker_referral": N_("Worker referral accepted"),
    "no_sobriety_required": N_("Sobriety not required"),
    "not_asylum_only": N_("Not asylum seekers only"),
    "accessible": N_("Accessible"),
    "children_accompanied": N_("Children accompanied"),
    "heightened_security": N_("Heightened security"),
    "indigenous_led": N_("Indigenous-led"),
    "culturally_specific": N_("Culturally specific support"),
    "answers_now": N_("Answers now"),
}
SECURITY_LABELS = {
    SecurityLevel.STANDARD: N_("Standard security"),
    SecurityLevel.HEIGHTENED: N_("Heightened security"),
    SecurityLevel.HIGH: N_("High security"),
}

# Provinces and territories by their postal code, named in the page's language.
PROVINCE_LABELS = {
    "AB": N_("Alberta"),
    "BC": N_("British Columbia"),
    "MB": N_("Manitoba"),
    "NB": N_("New Brunswick"),
    "NL": N_("Newfoundland and Labrador"),
    "NS": N_("Nova Scotia"),
    "NT": N_("Northwest Territories"),
    "NU": N_("Nunavut"),
    "ON": N_("Ontario"),
    "PE": N_("Prince Edward Island"),
    "QC": N_("Quebec"),
    "SK": N_("Saskatchewan"),
    "YT": N_("Yukon"),
}

# Roles as people read them (keys are exchange/accounts/models.py `Role` values; beds may not import it).
ROLE_LABELS = {
    "shelter_staff": N_("Shelter staff"),
    "police_planner": N_("Police planner"),
    "case_worker": N_("Case worker"),
    "fund_approver": N_("Fund approver"),
    "auditor": N_("Auditor"),
    "network_admin": N_("Network admin"),
    "coordinator": N_("Coordinator"),
    "partner": N_("Partner system"),
    "lead_worker": N_("Lead worker (fast path)"),
}
ORG_KIND_LABELS = {
    "shelter": N_("Shelter"),
    "police": N_("Police service"),
    "coalition": N_("Coalition"),
    "community": N_("Community organisation"),
}

# Why a pool's counts changed (beds/pools.py `record_change` reasons; holds write `hold_<status>`).
CHANGE_REASON_LABELS = {
    "seed": N_("First counts"),
    "set": N_("Counts set by the shelter"),
    "adjust": N_("Arrival or departure"),
    "surge_added": N_("Surge beds added"),
    "surge_expired": N_("Surge beds ended"),
    "closed": N_("Facility closed"),
    "expired": N_("Hold expired"),
    "hold_requested": N_("Beds requested"),
    "hold_confirmed": N_("Request confirmed"),
    "hold_claimed": N_("Person arrived"),
    "hold_released": N_("Beds released"),
    "hold_declined": N_("Request declined"),
    "hold_expired": N_("Hold expired"),
    "kept_set": N_("Beds kept for a partner changed"),
    "kept_ended": N_("Agreement ended: kept beds freed"),
    "kept_refilled": N_("A freed bed kept for a partner again"),
}


def change_reason(reason: str) -> str:
    """A pool history reason in words; one this table does not know yet reads as a plain "Other change"."""
    return _(CHANGE_REASON_LABELS.get(reason, N_("Other change")))


_translated: dict[str, dict[str, Any]] = {}


def translated() -> dict[str, Any]:
    """Every label the board repeats for each facility and pool, translated once per language.

    The board renders thousands of rows; asking gettext for "Free" in each one costs more than the row.
    """
    locale = get_locale()
    cached = _translated.get(locale)
    if cached is None:
        cached = {
            "free": _("Free"),
            "held": _("Held"),
            "occupied": _("Occupied"),
            "out_of_service": _("Out of service"),
            "beds": _("Beds"),
            "update": _("Update"),
            "stale": _("Stale"),
            "one_more": _("One more bed occupied"),
            "one_freed": _("One bed freed"),
            "arrival": _("Arrival"),
            "arrival_hint": _("+1 occupied"),
            "departure": _("Departure"),
            "departure_hint": _("\u22121 occupied"),  # a minus sign, not a hyphen
            "undo_arrival": _("Undo the arrival"),
            "undo_departure": _("Undo the departure"),
            "provinces": {code: _(label) for code, label in PROVINCE_LABELS.items()},
            "accepts_trafficking": _("Accepts trafficking victims"),
            "worker_referral": _("Worker referral accepted"),
            "self_referral": _("Person must call herself"),
            "sobriety_required": _("Sobriety required"),
            "asylum_only": _("Asylum seekers only"),
            "accessible": _("Accessible"),
            "children": _("Children accompanied"),
            "indigenous_led": _("Indigenous-led"),
            "culturally_specific": _("Culturally specific support"),
            "kinds": {code: _(label) for code, label in KIND_LABELS.items()},
            "profiles": {code: _(label) for code, label in PROFILE_LABELS.items()},
            "security": {code: _(label) for code, label in SECURITY_LABELS.items()},
        }
        _translated[locale] = cached
    return cached
