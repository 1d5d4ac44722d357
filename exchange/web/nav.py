"""The navigation a user sees, from their roles, with its live counts. Pages pass `page_context(request)` to
templates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request

from exchange.accounts.models import Role, User
from exchange.web.i18n import N_
from exchange.web.i18n import gettext as _

# Where exchange/home/counts.py `load_nav_counts` leaves the counts in a request's state.
NAV_COUNTS_STATE_KEY = "nav_counts"


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    current: bool
    # The name of the live count shown beside the entry (NAV_COUNTS), "" for none; its number, None if unread.
    count_name: str = ""
    count: int | None = None


# (path, label, roles that see it; empty = everyone): the page each role starts its work from, in menu order.
NAV_ENTRIES: list[tuple[str, str, tuple[Role, ...]]] = [
    ("/", N_("Board"), ()),
    ("/admin", N_("Admin"), (Role.NETWORK_ADMIN,)),
    ("/operations", N_("Operations"), (Role.POLICE_PLANNER, Role.COORDINATOR)),
    ("/requests", N_("Hold requests"), (Role.SHELTER_STAFF,)),
    ("/agreements", N_("Agreements"), (Role.SHELTER_STAFF,)),
    ("/placements", N_("Stays"), (Role.SHELTER_STAFF, Role.CASE_WORKER, Role.COORDINATOR)),
    ("/holds/incident", N_("Hold incidents"), (Role.COORDINATOR,)),
    ("/reports/occupancy", N_("Occupancy"), (Role.SHELTER_STAFF, Role.COORDINATOR, Role.NETWORK_ADMIN)),
    ("/ledger/request", N_("Fund request"), (Role.CASE_WORKER,)),
    ("/ledger/inbox", N_("Approvals"), (Role.FUND_APPROVER,)),
    ("/ledger/journal", N_("Journal"), (Role.AUDITOR,)),
    ("/ledger/report", N_("Spending"), (Role.AUDITOR, Role.FUND_APPROVER, Role.NETWORK_ADMIN)),
    ("/ledger/rules", N_("Fund rules"), (Role.NETWORK_ADMIN, Role.FUND_APPROVER)),
    ("/oncall/roster", N_("On-call roster"), (Role.FUND_APPROVER, Role.NETWORK_ADMIN)),
    ("/stripe/cards", N_("Card payments"), (Role.CASE_WORKER, Role.FUND_APPROVER)),
    ("/stripe/reconcile", N_("Reconciliation"), (Role.AUDITOR,)),
    # Someone of an account's organisation approves the roles an admin asked for it (exchange/admin/grants.py).
    (
        "/admin/grants",
        N_("Role approvals"),
        (Role.SHELTER_STAFF, Role.POLICE_PLANNER, Role.FUND_APPROVER, Role.COORDINATOR, Role.AUDITOR),
    ),
]


# The live count beside an entry, by the entry's path: the number of what waits there. The role of the entry is the
# one that may see the count (exchange/home/counts.py reads them before each page; exchange/home/live.py has
# each page read them again when they change).
NAV_COUNTS: dict[str, str] = {"/ledger/inbox": "approvals", "/requests": "requests"}


def nav_for(user: User | None, path: str, counts: Mapping[str, int] | None = None) -> list[NavItem]:
    if user is None:
        return []
    counts = counts or {}
    items = []
    for href, label, roles in NAV_ENTRIES:
        if roles and not user.has(*roles):
            continue
        current = path == href if href == "/" else path.startswith(href)
        count_name = NAV_COUNTS.get(href, "")
        items.append(NavItem(href, _(label), current, count_name, counts.get(count_name)))
    return items


def page_context(request: Request, **context: Any) -> dict[str, Any]:
    user: User | None = request.scope.get("user")
    counts = request.scope.get("state", {}).get(NAV_COUNTS_STATE_KEY)
    context.setdefault("nav", nav_for(user, request.url.path, counts))
    context.setdefault("nav_user", user.display_name if user else "")
    context.setdefault("user", user)
    return context
