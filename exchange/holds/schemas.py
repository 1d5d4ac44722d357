"""Request bodies of the holds API (unknown fields are refused) and the forms of the holds pages (which
also carry the CSRF token). Where both take the same fields, the API's body is the form's, made strict."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from msgspec import Struct

from beds.errors import Invalid
from beds.holds import NewHold
from beds.operations import NewOperation
from beds.planner import Need, PlanOptions
from exchange.web.schemas import Body

# Planners type local times; each province's main time zone reads them (the operation's own province).
PROVINCE_TZ = {
    "AB": "America/Edmonton",
    "BC": "America/Vancouver",
    "MB": "America/Winnipeg",
    "NB": "America/Moncton",
    "NL": "America/St_Johns",
    "NS": "America/Halifax",
    "NT": "America/Yellowknife",
    "NU": "America/Iqaluit",
    "ON": "America/Toronto",
    "PE": "America/Halifax",
    "QC": "America/Toronto",
    "SK": "America/Regina",
    "YT": "America/Whitehorse",
}


def local_time(value: str, province: str) -> datetime:
    """A `datetime-local` value, read in the province's time zone (or taken as is when it has an offset)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("invalid_window", "Dates must look like 2026-05-01T21:30.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(PROVINCE_TZ.get(province, "America/Toronto")))
    return parsed


class PlanForm(Struct):
    allow_other_cities: bool = False
    allow_other_provinces: bool = False

    def options(self) -> PlanOptions:
        return PlanOptions(self.allow_other_cities, self.allow_other_provinces)


class PlanRequest(PlanForm, Body):
    """The plan form's fields, and no other, as a JSON body."""


class AgreementForm(Struct):
    pool_id: str
    beds: int
    # The organisation the beds are kept for (API.md); only its holds are confirmed at once.
    partner_org_id: str = ""
    scope: str = "all"
    note: str = ""


class AgreementRequest(AgreementForm, Body):
    """The agreement form's fields, and no other, as a JSON body."""


class HoldRequest(Body):
    pool_id: str
    beds: int
    expires_at: datetime
    operation_id: str | None = None
    case_code: str | None = None

    def new_hold(self) -> NewHold:
        return NewHold(self.pool_id, self.beds, self.expires_at, self.operation_id, self.case_code)


class DeclineRequest(Body):
    reason: str = ""


class ClaimRequest(Body):
    beds_used: int


class DeclineRequesterRequest(Body):
    """A shelter declines every open request of one requester (a user id, `requested_by` on its holds)."""

    requested_by: str
    reason: str = ""


class ReleaseAllRequest(Body):
    """A coordinator releases every active hold of one user or one organisation (exactly one of them)."""

    user_id: str | None = None
    organisation_id: str | None = None
    reason: str = ""


class NeedIn(Body):
    profile: str
    count: int


class OperationRequest(Body):
    code_name: str
    province: str
    window_start: datetime
    window_end: datetime
    needs: list[NeedIn]
    city: str = ""
    notes: str = ""

    def new_operation(self) -> NewOperation:
        needs = [Need(n.profile, n.count) for n in self.needs]
        return NewOperation(
            self.code_name, self.province, self.window_start, self.window_end, needs, self.city, self.notes
        )


class OperationForm(Struct):
    code_name: str
    province: str
    window_start: str
    window_end: str
    city: str = ""
    notes: str = ""
    need_women: int = 0
    need_men: int = 0
    need_youth: int = 0
    need_family: int = 0
    need_any: int = 0

    def new_operation(self) -> NewOperation:
        counts = {
            "women": self.need_women,
            "men": self.need_men,
            "youth": self.need_youth,
            "family": self.need_family,
            "any": self.need_any,
        }
        if any(c < 0 for c in counts.values()):
            raise Invalid("invalid_needs", "Counts cannot be negative.")
        return NewOperation(
            code_name=self.code_name,
            province=self.province,
            city=self.city,
            window_start=local_time(self.window_start, self.province),
            window_end=local_time(self.window_end, self.province),
            needs=[Need(profile, count) for profile, count in counts.items() if count > 0],
            notes=self.notes,
        )


class NextForm(Struct):
    next: str = "/requests"


class DeclineForm(Struct):
    reason: str = ""
    next: str = "/requests"


class ClaimForm(Struct):
    beds_used: int
    next: str = "/requests"


class DeclineRequesterForm(Struct):
    requested_by: str
    reason: str = ""
    # The box the person ticks to say they mean it (the page asks before a bulk step).
    confirm: str = ""


class IncidentForm(Struct):
    # "user:<id>" or "org:<id>"
    target: str
    reason: str = ""
    confirm: str = ""

    def whom(self) -> dict[str, str]:
        kind, _, ident = self.target.partition(":")
        if kind == "user" and ident:
            return {"user_id": ident}
        if kind == "org" and ident:
            return {"organisation_id": ident}
        raise Invalid("invalid_target", "Choose a user or an organisation.")
