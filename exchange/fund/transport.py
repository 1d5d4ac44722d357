"""Travel to a bed: the link between a fund request (ledger) and the hold or placement it serves (beds).

The ledger keeps the ids only; the shell checks them here against the beds, since only it may read both
domains. What a request's readers learn of the bed is its facility's city and province, never its address
(approvers may never see one, DESIGN.md's visibility table; the requester finds it on the hold's own page).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.holds import is_holder
from beds.holds_models import Hold
from beds.models import Facility
from beds.placements import is_case_side
from beds.placements_models import Placement
from exchange.accounts.models import User
from exchange.web.auth import viewer_for
from ledger.disbursements import NewDisbursement
from ledger.errors import Invalid, NotFound
from ledger.models import Disbursement

HOLD = "hold"
PLACEMENT = "placement"


def same_case(a: str | None, b: str) -> bool:
    return a is not None and a.strip().upper() == b.strip().upper()


async def check_bed_link(db: AsyncSession, user: User, new: NewDisbursement) -> None:
    """The hold or placement exists, the requester's organisation holds it (404 alike when it does not, so
    nothing about another organisation's beds is revealed) and it serves the request's case (422)."""
    if new.hold_id is not None and new.placement_id is not None:
        raise Invalid("one_bed_link", "Name the hold or the placement the request serves, not both.", path="hold_id")
    viewer = viewer_for(user)
    if new.hold_id is not None:
        hold = await db.get(Hold, new.hold_id)
        if hold is None or not is_holder(viewer, hold):
            raise NotFound("hold_not_found", "No such hold among your organisation's.", path="hold_id")
        if not same_case(hold.case_code, new.case_code):
            raise Invalid("hold_other_case", "This hold is for another case than the request's.", path="hold_id")
    if new.placement_id is not None:
        placement = await db.get(Placement, new.placement_id)
        if placement is None or not is_case_side(viewer, placement):
            raise NotFound("placement_not_found", "No such placement among your cases'.", path="placement_id")
        if not same_case(placement.case_code, new.case_code):
            raise Invalid(
                "placement_other_case", "This placement is for another case than the request's.", path="placement_id"
            )


async def beds_served(db: AsyncSession, found: Sequence[Disbursement]) -> dict[str, dict[str, Any]]:
    """For each request linked to a bed: {"kind", "id", "city", "province"} (three queries for the list)."""
    hold_ids = {d.hold_id for d in found if d.hold_id}
    placement_ids = {d.placement_id for d in found if d.placement_id}
    if not hold_ids and not placement_ids:
        return {}
    facility_of: dict[tuple[str, str], str] = {}
    if hold_ids:
        rows = await db.execute(select(Hold.id, Hold.facility_id).where(Hold.id.in_(hold_ids)))  # type: ignore[attr-defined]
        facility_of.update({(HOLD, i): f for i, f in rows.all()})
    if placement_ids:
        rows = await db.execute(
            select(Placement.id, Placement.facility_id).where(Placement.id.in_(placement_ids))  # type: ignore[attr-defined]
        )
        facility_of.update({(PLACEMENT, i): f for i, f in rows.all()})
    places = {
        i: (city, province)
        for i, city, province in (
            await db.execute(
                select(Facility.id, Facility.city, Facility.province).where(
                    Facility.id.in_(set(facility_of.values()))  # type: ignore[attr-defined]
                )
            )
        ).all()
    }
    served: dict[str, dict[str, Any]] = {}
    for d in found:
        key = (HOLD, d.hold_id) if d.hold_id else (PLACEMENT, d.placement_id) if d.placement_id else None
        facility_id = facility_of.get(key) if key else None  # type: ignore[arg-type]
        if key is None or facility_id is None or facility_id not in places:
            continue
        city, province = places[facility_id]
        served[d.id] = {"kind": key[0], "id": key[1], "city": city, "province": province}
    return served
