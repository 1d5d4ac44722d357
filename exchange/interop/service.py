"""The directory exchange for one request's user: the public directory in HSDS 3.0, availability in EDXL-HAVE 2.0,
and the HSDS import of a network admin.

What leaves: the public directory (DESIGN.md's first visibility row: names, kinds, criteria, city) and aggregate
counts; never an address or a phone of a shelter (beds/directory.py `published`), and for EDXL confidential
facilities are summed per city. exchange/interop/api.py and pages.py reach it as `service` (`SERVICE`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from litestar import Request
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.board import BoardFilter, FacilityListing, list_facilities
from beds.directory import (
    Published,
    as_uuid,
    datapackage,
    organization_record,
    plan_import,
    published,
    read_package,
    service_record,
    stable_id,
    tables_to_csv,
    to_tables,
)
from beds.directory_models import DirectoryLink, DirectoryListing
from beds.models import SurgeBeds
from beds.occupancy_export import COLUMNS as OCCUPANCY_COLUMNS
from beds.occupancy_export import nightly_occupancy
from beds.places import city_key
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, Role, User
from exchange.interop.have import HaveEntry, HaveSite, have_document
from exchange.interop.importer import ORGANIZATION, ImportReport, apply_plan
from exchange.web.localtime import zone_for

PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 500


@dataclass(frozen=True)
class Listed:
    """A facility of the public directory, with how it is published and its organisation's HSDS id."""

    listing: FacilityListing
    where: Published
    organization_id: str


@dataclass(frozen=True)
class Directory:
    facilities: list[Listed]
    organisations: list[tuple[str, Organisation]]  # (HSDS id, organisation), those that run a listed facility


def page_of(items: list[Any], page: int, per_page: int) -> dict[str, Any]:
    """HSDS 3.0's `Page`: total_items, total_pages, page_number, size, first_page, last_page, empty, contents."""
    per_page = max(1, min(per_page, PER_PAGE_MAX))
    page = max(1, page)
    total_pages = max(1, math.ceil(len(items) / per_page))
    contents = items[(page - 1) * per_page : page * per_page]
    return {
        "total_items": len(items),
        "total_pages": total_pages,
        "page_number": page,
        "size": len(contents),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not contents,
        "contents": contents,
    }


@dataclass
class InteropService:
    db: AsyncSession
    user: User

    async def directory(self) -> Directory:
        listings = await list_facilities(self.db, BoardFilter())
        rows = (await self.db.execute(select(DirectoryListing))).scalars().all()
        published_as = {row.facility_id: row for row in rows}
        links = await self.db.execute(select(DirectoryLink).where(DirectoryLink.kind == ORGANIZATION))
        hsds_of_org = {link.local_id: link.hsds_id for link in links.scalars()}
        organisations = {o.id: o for o in (await self.db.execute(select(Organisation))).scalars()}
        listed: list[Listed] = []
        used: dict[str, Organisation] = {}
        for listing in listings:
            facility = listing.facility
            org = organisations.get(facility.organisation_id)
            if org is None:
                continue
            used[org.id] = org
            org_hsds = hsds_of_org.get(org.id) or as_uuid(org.id)
            listed.append(Listed(listing, published(facility, published_as.get(facility.id)), org_hsds))
        ordered = sorted(used.values(), key=lambda o: o.name)
        return Directory(listed, [(hsds_of_org.get(o.id) or as_uuid(o.id), o) for o in ordered])

    # HSDS export

    async def organizations(self, *, full_service: bool = False) -> list[dict[str, Any]]:
        directory = await self.directory()
        records = []
        for hsds_id, org in directory.organisations:
            record = organization_record(hsds_id, org.name)
            if full_service:
                record["services"] = [
                    service_record(item.listing.facility, item.listing.pools, item.where, hsds_id, full=True)
                    for item in directory.facilities
                    if item.organization_id == hsds_id
                ]
            records.append(record)
        return records

    async def services(self, *, full: bool = False, organization_id: str | None = None) -> list[dict[str, Any]]:
        directory = await self.directory()
        return [
            service_record(item.listing.facility, item.listing.pools, item.where, item.organization_id, full=full)
            for item in directory.facilities
            if organization_id is None or item.organization_id == organization_id
        ]

    async def package(self) -> bytes:
        """The whole public directory as an HSDS data package: a zip of the tabular CSV form with its
        datapackage.json, and the nested JSON form beside it (`organizations.json`)."""
        organizations = await self.organizations(full_service=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("datapackage.json", json.dumps(datapackage("Refuge Exchange directory"), indent=2))
            for name, text in tables_to_csv(to_tables(organizations)).items():
                archive.writestr(name, text)
        return buffer.getvalue()

    # EDXL-HAVE

    async def availability(self) -> bytes:
        """Each facility with a public address on its own; confidential ones summed per city, no name."""
        directory = await self.directory()
        surge_rows = await self.db.execute(
            select(SurgeBeds.pool_id, func.sum(SurgeBeds.beds_remaining))
            .where(SurgeBeds.beds_remaining > 0)
            .group_by(SurgeBeds.pool_id)
        )
        surge = {pool_id: int(beds or 0) for pool_id, beds in surge_rows.all()}
        sites: dict[str, HaveSite] = {}
        for item in directory.facilities:
            facility = item.listing.facility
            if item.where.address_public:
                key = item.where.service_id
                site = sites.setdefault(
                    key,
                    HaveSite(
                        key,
                        facility.name,
                        str(facility.kind),
                        facility.city,
                        facility.province,
                        item.where.address_1,
                        item.where.postal_code,
                        facility.updated_at,
                    ),
                )
            else:
                key = f"city:{facility.province}:{facility.city}"
                site = sites.setdefault(
                    key,
                    HaveSite(
                        "urn:refuge-exchange:city:" + as_uuid_city(facility.province, facility.city),
                        f"{facility.city}, {facility.province}",
                        "confidential",
                        facility.city,
                        facility.province,
                        "",
                        "",
                        facility.updated_at,
                    ),
                )
                site.updated_at = max(site.updated_at, facility.updated_at)
            for pool in item.listing.pools:
                extra = surge.get(pool.id, 0)
                site.add(HaveEntry(str(pool.profile), pool.capacity - extra, pool.free, extra))
        return have_document(sorted(sites.values(), key=lambda s: (s.province, s.city, s.name)), utcnow())

    # Occupancy for funders (coordinators, who see every hold)

    async def occupancy_csv(self, start: date, end: date, *, by: str) -> str:
        if not self.user.has(Role.COORDINATOR):
            raise PermissionDeniedException("Only coordinators export occupancy.")
        rows = await nightly_occupancy(self.db, start, end, by=by, zone_of=zone_for, now=utcnow())
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(OCCUPANCY_COLUMNS)
        writer.writerows(row.as_csv() for row in rows)
        return buffer.getvalue()

    # HSDS import (network admin)

    async def import_package(
        self,
        files: Mapping[str, bytes],
        *,
        dry_run: bool,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Raises beds.directory.PackageInvalid (nothing written) for a malformed package."""
        if not self.user.has(Role.NETWORK_ADMIN):
            raise PermissionDeniedException("Only a network admin imports a directory.")
        plan = plan_import(read_package(files))
        return await apply_plan(self.db, plan, dry_run=dry_run, progress=progress)


def as_uuid_city(province: str, city: str) -> str:
    return stable_id("city", province, city_key(city))


def provide_interop_service(request: Request[User, str, object], db: AsyncSession) -> InteropService:
    return InteropService(db, request.user)


SERVICE = {"service": Provide(provide_interop_service, sync_to_thread=False)}
