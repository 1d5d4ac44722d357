"""The navigation a user sees, from their roles. Pages pass `page_context(request)` to templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from exchange.accounts.models import Role, User
from exchange.web.i18n import N_
from exchange.web.i18n import gettext as _


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    current: bool


# (path, label, roles that see it; empty = everyone): the page each role starts its work from, in menu order.
NAV_ENTRIES: list[tuple[str, str, tuple[Role, ...]]] = [
    ("/", N_("Board"), ()),
    ("/admin", N_("Admin"), (Role.NETWORK_ADMIN,)),
    ("/operations", N_("Operations"), (Role.POLICE_PLANNER, Role.COORDINATOR)),
    ("/requests", N_("Hold requests"), (Role.SHELTER_STAFF,)),
    ("/agreements", N_("Agreements"), (Role.SHELTER_STAFF,)),
    ("/holds/incident", N_("Hold incidents"), (Role.COORDINATOR,)),
    ("/reports/occupancy", N_("Occupancy"), (Role.SHELTER_STAFF, Role.COORDINATOR, Role.NETWORK_ADMIN)),
    ("/ledger/request", N_("Fund request"), (Role.CASE_WORKER,)),
    ("/ledger/inbox", N_("Approvals"), (Role.FUND_APPROVER,)),
    ("/ledger/journal", N_("Journal"), (Role.AUDITOR,)),
    ("/ledger/report", N_("Spending"), (Role.AUDITOR, Role.FUND_APPROVER, Role.NETWORK_ADMIN)),
    ("/ledger/rules", N_("Fund rules"), (Role.NETWORK_ADMIN, Role.FUND_APPROVER)),
    ("/stripe/cards", N_("Card payments"), (Role.CASE_WORKER, Role.FUND_APPROVER)),
    ("/stripe/reconcile", N_("Reconciliation"), (Role.AUDITOR,)),
]


def nav_for(user: User | None, path: str) -> list[NavItem]:
    if user is None:
        return []
    items = []
    for href, label, roles in NAV_ENTRIES:
        if roles and not user.has(*roles):
            continue
        current = path == href if href == "/" else path.startswith(href)
        items.append(NavItem(href, _(label), current))
    return items


def page_context(request: Request, **context: Any) -> dict[str, Any]:
    user: User | None = request.scope.get("user")
    context.setdefault("nav", nav_for(user, request.url.path))
    context.setdefault("nav_user", user.display_name if user else "")
    context.setdefault("user", user)
    return context
