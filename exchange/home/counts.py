"""The navigation's counts: fund requests waiting for an approval (fund approvers), hold requests waiting for an
answer (shelter staff). Who may see each, their numbers (one query each), and the hook that reads them before a
page, so that exchange/web/nav.py `page_context` shows them beside their entries on every page.

They change live: exchange/home/live.py tells each page's socket when to read them again.
"""

from __future__ import annotations

from datetime import datetime

from litestar import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.holds_models import Hold, HoldStatus
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.web.nav import NAV_COUNTS_STATE_KEY
from ledger.models import Disbursement, Status

# The counts, by name, and the role that may see each: nobody else is told them, on a page or over a socket.
APPROVALS = "approvals"
REQUESTS = "requests"
COUNT_ROLES: dict[str, Role] = {APPROVALS: Role.FUND_APPROVER, REQUESTS: Role.SHELTER_STAFF}


def counts_for(user: User | None) -> list[str]:
    """The counts this user may see (none for anyone without the role)."""
    if user is None:
        return []
    return [name for name, role in COUNT_ROLES.items() if user.has(role)]


async def waiting_approvals(db: AsyncSession) -> int:
    """Fund requests waiting for an approval: what the approvers' inbox lists."""
    query = select(func.count()).select_from(Disbursement).where(Disbursement.status == Status.PENDING_APPROVAL.value)
    return int(await db.scalar(query) or 0)


async def open_requests(db: AsyncSession, organisation_id: str, now: datetime) -> int:
    """Hold requests asked of the organisation's facilities still waiting for an answer (an overdue one has
    lapsed, whether or not the sweeper has written it yet)."""
    query = (
        select(func.count())
        .select_from(Hold)
        .where(
            Hold.facility_org_id == organisation_id,
            Hold.status == HoldStatus.REQUESTED.value,
            Hold.expires_at > now,  # type: ignore[operator]
        )
    )
    return int(await db.scalar(query) or 0)


async def nav_counts(db: AsyncSession, user: User | None) -> dict[str, int]:
    """{count name: number} for the counts this user may see; one query each, none for other users."""
    counts: dict[str, int] = {}
    if user is None:
        return counts
    for name in counts_for(user):
        if name == APPROVALS:
            counts[name] = await waiting_approvals(db)
        elif name == REQUESTS:
            counts[name] = await open_requests(db, user.organisation_id, utcnow())
    return counts


def shows_navigation(request: Request) -> bool:
    """A page a browser reads whole (its navigation with it): not the API, a static file, a form's post or an
    htmx fragment."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and not path.startswith(("/api/", "/static/", "/webhooks/"))
        and request.headers.get("hx-request") != "true"
    )


async def load_nav_counts(request: Request) -> None:
    """Before a page: its user's counts into the request's state, for `page_context`. Costs nothing for
    anyone without a count, for the API and for fragments."""
    user: User | None = request.scope.get("user")
    if not counts_for(user) or not shows_navigation(request):
        return
    async with request.app.state.sessionmaker() as db:
        request.scope.setdefault("state", {})[NAV_COUNTS_STATE_KEY] = await nav_counts(db, user)
