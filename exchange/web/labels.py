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
}
SECURITY_LABELS = {
    SecurityLevel.STANDARD: N_("Standard security"),
    SecurityLevel.HEIGHTENED: N_("Heightened security"),
    SecurityLevel.HIGH: N_("High security"),
}


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
            "accepts_trafficking": _("Accepts trafficking victims"),
            "worker_referral": _("Worker referral accepted"),
            "self_referral": _("Person must call herself"),
            "sobriety_required": _("Sobriety required"),
            "asylum_only": _("Asylum seekers only"),
            "accessible": _("Accessible"),
            "children": _("Children accompanied"),
            "kinds": {code: _(label) for code, label in KIND_LABELS.items()},
            "profiles": {code: _(label) for code, label in PROFILE_LABELS.items()},
            "security": {code: _(label) for code, label in SECURITY_LABELS.items()},
        }
        _translated[locale] = cached
    return cached
