"""Occupancy reports from the pool history: a shelter's own facilities, or the network for coordinators."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from beds.models import PROVINCES
from beds.reports import daily_occupancy
from exchange.accounts.models import Role, User
from exchange.web.auth import requires_roles
from exchange.web.nav import page_context


class ReportPages(Controller):
    path = "/reports"
    guards = [requires_roles(Role.SHELTER_STAFF, Role.COORDINATOR, Role.NETWORK_ADMIN)]

    @get("/occupancy")
    async def occupancy(
        self, request: Request[User, str, object], db: AsyncSession, province: str | None = None, days: int = 14
    ) -> Template:
        days = min(max(days, 1), 90)
        network_wide = request.user.has(Role.COORDINATOR, Role.NETWORK_ADMIN)
        report = await daily_occupancy(
            db,
            organisation_id=None if network_wide else request.user.organisation_id,
            province=province if province in PROVINCES else None,
            days=days,
        )
        peak = max((d.occupancy_percent for d in report), default=0)
        return Template(
            "occupancy.html",
            context=page_context(
                request,
                report=report,
                peak=peak,
                network_wide=network_wide,
                province=province if province in PROVINCES else "",
                provinces=PROVINCES,
                days=days,
            ),
        )
