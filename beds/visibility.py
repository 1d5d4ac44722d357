"""Who may see what (DESIGN.md, "Visibility"). Every page, API answer and websocket message asks here."""

from __future__ import annotations

from dataclasses import dataclass, field

from beds.holds_models import HoldStatus


@dataclass(frozen=True)
class Viewer:
    """The person looking, in the plain values the domain needs."""

    user_id: str
    organisation_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    # Facilities whose confidential address this viewer may see through a confirmed hold or placement.
    address_grants: frozenset[str] = field(default_factory=frozenset)

    def is_(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def staffs(self, facility_organisation_id: str) -> bool:
        return "shelter_staff" in self.roles and self.organisation_id == facility_organisation_id

    @property
    def is_coordinator(self) -> bool:
        return "coordinator" in self.roles


def may_see_address(viewer: Viewer, facility_id: str, facility_organisation_id: str) -> bool:
    if viewer.organisation_id == facility_organisation_id and viewer.is_("shelter_staff", "network_admin"):
        return True
    # Police planners and case workers see it only through a confirmed hold or a placement.
    return facility_id in viewer.address_grants and viewer.is_("police_planner", "case_worker")


def may_edit_pool(viewer: Viewer, facility_organisation_id: str) -> bool:
    return viewer.staffs(facility_organisation_id)


def on_holders_side(viewer: Viewer, requested_by_org: str) -> bool:
    """The organisation that holds the beds, and the coordinators: the side that knows whose case it is."""
    return viewer.is_coordinator or viewer.organisation_id == requested_by_org


def may_see_case_code(hold_status: str, *, holders_side: bool) -> bool:
    """A case code tells a facility which person is coming: it learns it once the person is placed (claimed)."""
    return holders_side or hold_status == HoldStatus.CLAIMED.value
