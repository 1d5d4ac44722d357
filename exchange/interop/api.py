"""The public directory in HSDS 3.0 and availability in EDXL-HAVE 2.0, for any user with a token (API.md)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import Controller, Response, get

from beds.timeutil import utcnow
from exchange.accounts.models import Role
from exchange.interop.have import MEDIA_TYPE
from exchange.interop.service import PER_PAGE_DEFAULT, SERVICE, InteropService, page_of
from exchange.web.auth import requires_roles


class HsdsController(Controller):
    """Paged as HSDS 3.0's API: `page`, `per_page`; `full=true` gives nested services."""

    path = "/api/v1/hsds"
    tags = ["directory"]
    opt = {"partner": True}  # the public directory (DESIGN.md: partners read it)
    dependencies = SERVICE

    @get("/organizations")
    async def organizations(
        self, service: InteropService, page: int = 1, per_page: int = PER_PAGE_DEFAULT, full_service: bool = False
    ) -> dict[str, Any]:
        return page_of(await service.organizations(full_service=full_service), page, per_page)

    @get("/services")
    async def services(
        self,
        service: InteropService,
        page: int = 1,
        per_page: int = PER_PAGE_DEFAULT,
        full: bool = False,
        organization_id: str | None = None,
    ) -> dict[str, Any]:
        return page_of(await service.services(full=full, organization_id=organization_id), page, per_page)

    @get("/package.zip", media_type="application/zip")
    async def package(self, service: InteropService) -> Response[bytes]:
        return Response(
            await service.package(),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="refuge-exchange-hsds.zip"'},
        )


class HaveController(Controller):
    path = "/api/v1"
    tags = ["directory"]
    opt = {"partner": True}  # aggregated availability (DESIGN.md: partners read it)
    dependencies = SERVICE

    @get(["/edxl/have", "/availability.have.xml"], media_type=MEDIA_TYPE)
    async def availability(self, service: InteropService) -> Response[bytes]:
        return Response(await service.availability(), media_type=MEDIA_TYPE)


class OccupancyController(Controller):
    """Occupancy per night for the coalition's funders: capacity, occupied and held beds by facility or city."""

    path = "/api/v1/occupancy.csv"
    tags = ["reports"]
    guards = [requires_roles(Role.COORDINATOR)]
    dependencies = SERVICE

    @get("/", media_type="text/csv")
    async def occupancy(
        self, service: InteropService, start: date | None = None, end: date | None = None, by: str = "facility"
    ) -> Response[str]:
        # By default the 30 nights up to the last one over in every Canadian zone (Pacific's midnight: 08:00 UTC).
        last = end or (utcnow() - timedelta(hours=8)).date() - timedelta(days=1)
        first = start or last - timedelta(days=29)
        return Response(
            await service.occupancy_csv(first, last, by=by),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="occupancy-{first}-{last}.csv"'},
        )
