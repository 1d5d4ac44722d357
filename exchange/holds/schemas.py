"""Request bodies of the holds API (unknown fields are refused) and the forms of the holds pages (which
also carry the CSRF token). Where both take the same fields, the API's body is the form's, made strict."""

from __future__ import annotations

from datetime import datetime

import msgspec
from msgspec import Struct

from beds.errors import Invalid
from beds.holds import NewHold
from beds.models import Profile
from beds.operations import NewOperation
from beds.planner import Need, PlanOptions
from exchange.holds.fit import FitFields, plan_options
from exchange.web import localtime
from exchange.web.schemas import Body


def local_time(value: str, province: str, field: str = "window_start") -> datetime:
    """A `datetime-local` value, read on the clock of the operation's province (exchange/web/localtime.py: a
    time the clocks skip is refused, the first of a time they pass twice is taken), or as written with an offset."""
    try:
        return localtime.parse_local(value, localtime.zone_for(province))
    except Invalid as exc:
        raise Invalid(exc.code, exc.detail, field=field) from exc


ALLOCATION_MODES = ("all_or_none", "partial")


class PlanForm(Struct):
    allow_other_cities: bool = False
    allow_other_provinces: bool = False
    # API.md: `all_or_none` (the default) places every proposed hold or none; `partial` places the part of the
    # plan that exists and says what is still missing. `"partial": true` says the same.
    mode: str = "all_or_none"
    partial: bool = False
    # API.md: a cap on the distance, and a limit per facility stricter than the operation's own (exchange/holds/fit.py).
    max_distance_km: int | None = None
    max_per_facility: int | None = None

    def options(self) -> PlanOptions:
        return plan_options(
            self.allow_other_cities, self.allow_other_provinces, self.max_distance_km, self.max_per_facility
        )

    def is_partial(self) -> bool:
        if self.mode not in ALLOCATION_MODES:
            raise Invalid("invalid_mode", "mode is all_or_none or partial.")
        return self.partial or self.mode == "partial"


class PlanRequest(PlanForm, Body):
    """The plan form's fields, and no other, as a JSON body."""


class AllocateForm(PlanForm):
    """The allocate button's form: the plan's options, and the key generated when the page was rendered, so a
    double click places the holds once."""

    idempotency_key: str = ""


class AgreementForm(Struct):
    pool_id: str
    beds: int
    # The organisation the beds are kept for (API.md); only its holds are confirmed at once.
    partner_org_id: str = ""
    scope: str = "all"
    note: str = ""


class AgreementRequest(AgreementForm, Body):
    """The agreement form's fields, and no other, as a JSON body."""


class KeptForm(Struct):
    """How many beds an agreement keeps from now on (the agreements page's field)."""

    beds: int


class KeptRequest(KeptForm, Body):
    """`POST /api/v1/agreements/{id}/kept`: `{"beds": n}`."""


class KeptPageForm(Struct):
    """The agreements page's change of K: typed text (a wrong entry comes back beside the field), and `confirm`
    once the person said yes to lowering it."""

    beds: str = ""
    confirm: str = ""


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
    # Placement fit (exchange/holds/fit.py): a language the facility's staff speak, the group in one facility,
    # a preference for Indigenous-led or culturally specific support.
    language: str = ""
    keep_together: bool = False
    prefer_culturally_specific: bool = False


class OperationRequest(Body):
    code_name: str
    province: str
    window_start: datetime
    window_end: datetime
    needs: list[NeedIn]
    city: str = ""
    notes: str = ""
    max_per_facility: int | None = None

    def new_operation(self) -> NewOperation:
        needs = [
            Need(n.profile, n.count, n.language, n.keep_together, n.prefer_culturally_specific) for n in self.needs
        ]
        return NewOperation(
            self.code_name,
            self.province,
            self.window_start,
            self.window_end,
            needs,
            self.city,
            self.notes,
            self.max_per_facility,
        )


def parse_count(text: str, field_name: str) -> int:
    """A typed count of beds: blank is 0; anything but a whole number from 0 up is refused, naming the field."""
    text = (text or "").strip()
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise Invalid("invalid_count", "Counts are whole numbers from 0 up.", field=field_name)
    return int(text)


class OperationForm(FitFields):
    """Every field a string, so that whatever was typed (a blank count, a missing field) comes back to the form
    with a message beside it instead of failing to parse."""

    code_name: str = ""
    province: str = ""
    window_start: str = ""
    window_end: str = ""
    city: str = ""
    notes: str = ""
    need_women: str = ""
    need_men: str = ""
    need_youth: str = ""
    need_family: str = ""
    need_any: str = ""
    # Generated when the form was rendered: a double submit records one operation.
    idempotency_key: str = ""

    def typed(self) -> dict[str, str]:
        """What the person typed, to fill the form again."""
        values = msgspec.structs.asdict(self)
        values.pop("idempotency_key")
        return values

    def new_operation(self) -> NewOperation:
        counts = {
            profile.value: parse_count(getattr(self, f"need_{profile.value}"), f"need_{profile.value}")
            for profile in Profile
        }
        return NewOperation(
            code_name=self.code_name,
            province=self.province,
            city=self.city,
            window_start=local_time(self.window_start, self.province, "window_start"),
            window_end=local_time(self.window_end, self.province, "window_end"),
            needs=[self.fit_need(profile, count) for profile, count in counts.items() if count > 0],
            notes=self.notes,
            max_per_facility=self.cap(),
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
