"""Writing an HSDS import plan (beds/directory.py `plan_import`) in one transaction, or only saying what it would do.

Organisations and facilities are found by their HSDS ids through `directory_link`; a record whose content hash is
unchanged is not touched, a changed one gets only the fields that differ. Pools are created once, with the
package's capacity; an existing pool is never changed (its counts are the shelter's). A dry run computes every
change the same way and rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.directory import FacilityPlan, ImportPlan, Note, OrganisationPlan, stable_id
from beds.directory_models import DirectoryLink, DirectoryListing
from beds.models import BedPool, Facility, FacilityKind, Profile, SecurityLevel
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind

ORGANIZATION = "organization"
SERVICE_AT_LOCATION = "service_at_location"


@dataclass(frozen=True)
class Change:
    action: str  # created | updated | unchanged
    what: str  # organisation | facility
    name: str
    fields: tuple[str, ...] = ()


@dataclass
class ImportReport:
    changes: list[Change] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    dry_run: bool = False

    def count(self, action: str, what: str | None = None) -> int:
        return sum(1 for c in self.changes if c.action == action and (what is None or c.what == what))

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]


async def _links(session: AsyncSession) -> dict[tuple[str, str], DirectoryLink]:
    rows = (await session.execute(select(DirectoryLink))).scalars().all()
    return {(link.kind, link.hsds_id): link for link in rows}


async def apply_plan(
    session: AsyncSession,
    plan: ImportPlan,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update what `plan` says, all in this session's one transaction: committed at the end, or rolled
    back for a dry run or on any error."""
    report = ImportReport(notes=list(plan.notes), dry_run=dry_run)
    try:
        links = await _links(session)
        organisations = {o.id: o for o in (await session.execute(select(Organisation))).scalars().all()}
        by_name = {o.name: o for o in organisations.values()}
        org_of: dict[str, Organisation] = {}
        for org_plan in plan.organisations:
            org_of[org_plan.hsds_id] = _organisation(session, org_plan, links, organisations, by_name, report)
        await session.flush()
        facility_ids = [links[k].local_id for k in links if k[0] == SERVICE_AT_LOCATION]
        facilities: dict[str, Facility] = {}
        pools: dict[str, set[str]] = {}
        listings: dict[str, DirectoryListing] = {}
        if facility_ids:
            for chunk in _chunks(facility_ids, 500):
                found = await session.execute(select(Facility).where(Facility.id.in_(chunk)))  # type: ignore[attr-defined]
                facilities.update({f.id: f for f in found.scalars()})
                rows = await session.execute(
                    select(BedPool.facility_id, BedPool.profile).where(BedPool.facility_id.in_(chunk))  # type: ignore[attr-defined]
                )
                for facility_id, profile in rows.all():
                    pools.setdefault(facility_id, set()).add(str(profile))
                found_listings = await session.execute(
                    select(DirectoryListing).where(DirectoryListing.facility_id.in_(chunk))  # type: ignore[attr-defined]
                )
                listings.update({row.facility_id: row for row in found_listings.scalars()})
        own = await _own_published_ids(session)
        # Rows that point at a facility are written after the facilities (the tables have no ORM relationships to
        # order the inserts by).
        later: list[Any] = []
        for index, facility_plan in enumerate(plan.facilities, start=1):
            organisation = org_of[facility_plan.organization_hsds_id]
            if (SERVICE_AT_LOCATION, facility_plan.hsds_id) not in links and facility_plan.hsds_id in own:
                # This exchange's own export read back: the facility is already here. Linked, never overwritten (the
                # export leaves a confidential address out; importing it would erase the address).
                _link(
                    session,
                    links,
                    SERVICE_AT_LOCATION,
                    facility_plan.hsds_id,
                    own[facility_plan.hsds_id],
                    facility_plan.content_hash,
                )
                report.notes.append(Note(facility_plan.path, "linked to the facility this exchange published it as"))
                report.changes.append(Change("unchanged", "facility", facility_plan.fields["name"]))
            else:
                _facility(session, facility_plan, organisation, links, facilities, pools, listings, report, later)
            if progress is not None:
                progress(index)
        await session.flush()
        session.add_all(later)
        await session.flush()
        if dry_run:
            await session.rollback()
        else:
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return report


async def _own_published_ids(session: AsyncSession) -> dict[str, str]:
    """{service_at_location id this exchange publishes a facility under: the facility's id} (beds/directory.py
    `published`), so that importing the exchange's own export finds its facilities."""
    listed = {
        facility_id: sal_id
        for facility_id, sal_id in (
            await session.execute(select(DirectoryListing.facility_id, DirectoryListing.service_at_location_id))
        ).all()
    }
    own: dict[str, str] = {}
    for (facility_id,) in (await session.execute(select(Facility.id))).all():
        own[listed.get(facility_id) or stable_id("service_at_location", facility_id)] = facility_id
    return own


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _link(session: AsyncSession, links: dict, kind: str, hsds_id: str, local_id: str, digest: str) -> None:
    link = links.get((kind, hsds_id))
    if link is None:
        link = DirectoryLink(kind=kind, hsds_id=hsds_id, local_id=local_id, content_hash=digest)
        links[(kind, hsds_id)] = link
    else:
        link.local_id, link.content_hash, link.updated_at = local_id, digest, utcnow()
    session.add(link)


def _organisation(
    session: AsyncSession,
    plan: OrganisationPlan,
    links: dict[tuple[str, str], DirectoryLink],
    organisations: dict[str, Organisation],
    by_name: dict[str, Organisation],
    report: ImportReport,
) -> Organisation:
    link = links.get((ORGANIZATION, plan.hsds_id))
    organisation = organisations.get(link.local_id) if link else None
    if organisation is not None and link is not None:
        if link.content_hash == plan.content_hash:
            report.changes.append(Change("unchanged", "organisation", organisation.name))
            return organisation
        changed = []
        if organisation.name != plan.name and plan.name in by_name:
            report.notes.append(
                Note(plan.path, f"name {plan.name!r} belongs to another organisation: kept {organisation.name!r}")
            )
        elif organisation.name != plan.name:
            by_name.pop(organisation.name, None)
            organisation.name = plan.name
            by_name[plan.name] = organisation
            changed.append("name")
        if plan.province and organisation.province != plan.province:
            organisation.province = plan.province
            changed.append("province")
        session.add(organisation)
        _link(session, links, ORGANIZATION, plan.hsds_id, organisation.id, plan.content_hash)
        report.changes.append(Change("updated" if changed else "unchanged", "organisation", plan.name, tuple(changed)))
        return organisation
    existing = by_name.get(plan.name)
    if existing is not None:
        # Names are unique here: the organisation already in the network is the one the directory describes.
        report.notes.append(Note(plan.path, f"linked to the existing organisation {plan.name!r}"))
        _link(session, links, ORGANIZATION, plan.hsds_id, existing.id, plan.content_hash)
        report.changes.append(Change("unchanged", "organisation", existing.name))
        return existing
    organisation = Organisation(name=plan.name, kind=OrgKind(plan.kind), province=plan.province)
    session.add(organisation)
    organisations[organisation.id] = by_name[plan.name] = organisation
    _link(session, links, ORGANIZATION, plan.hsds_id, organisation.id, plan.content_hash)
    report.changes.append(Change("created", "organisation", plan.name))
    return organisation


def _facility(
    session: AsyncSession,
    plan: FacilityPlan,
    organisation: Organisation,
    links: dict[tuple[str, str], DirectoryLink],
    facilities: dict[str, Facility],
    pools: dict[str, set[str]],
    listings: dict[str, DirectoryListing],
    report: ImportReport,
    later: list[Any],
) -> None:
    link = links.get((SERVICE_AT_LOCATION, plan.hsds_id))
    facility = facilities.get(link.local_id) if link else None
    name = plan.fields["name"]
    if facility is None:
        facility = Facility(organisation_id=organisation.id, **_typed(plan.fields))
        session.add(facility)
        facilities[facility.id] = facility
        for profile, capacity in plan.pools:
            later.append(BedPool(facility_id=facility.id, profile=Profile(profile), capacity=capacity))
        pools[facility.id] = {profile for profile, _ in plan.pools}
        listing = DirectoryListing(facility_id=facility.id, **plan.listing)
        later.append(listing)
        listings[facility.id] = listing
        _link(session, links, SERVICE_AT_LOCATION, plan.hsds_id, facility.id, plan.content_hash)
        report.changes.append(Change("created", "facility", name))
        return
    assert link is not None
    if link.content_hash == plan.content_hash:
        report.changes.append(Change("unchanged", "facility", facility.name))
        return
    changed = [key for key, value in plan.fields.items() if _value(getattr(facility, key)) != _value(value)]
    typed = _typed(plan.fields)
    for key in changed:
        setattr(facility, key, typed[key])
    if facility.organisation_id != organisation.id:
        facility.organisation_id = organisation.id
        changed.append("organisation")
    if changed:
        facility.updated_at = utcnow()
        session.add(facility)
    for profile, capacity in plan.pools:
        if profile not in pools.setdefault(facility.id, set()):
            session.add(BedPool(facility_id=facility.id, profile=Profile(profile), capacity=capacity))
            pools[facility.id].add(profile)
            changed.append("pool " + profile)
    listing = listings.get(facility.id)
    if listing is None:
        listing = DirectoryListing(facility_id=facility.id, **plan.listing)
        listings[facility.id] = listing
    else:
        for key, value in plan.listing.items():
            setattr(listing, key, value)
    session.add(listing)
    _link(session, links, SERVICE_AT_LOCATION, plan.hsds_id, facility.id, plan.content_hash)
    report.changes.append(Change("updated" if changed else "unchanged", "facility", name, tuple(changed)))


def _value(value: Any) -> Any:
    """Enums and their values compare equal: a stored `FacilityKind` and the plan's text."""
    return value.value if hasattr(value, "value") else value


def _typed(fields: dict[str, Any]) -> dict[str, Any]:
    """The plan's text as the table's enums (table models do not convert what they are given)."""
    return {**fields, "kind": FacilityKind(fields["kind"]), "security_level": SecurityLevel(fields["security_level"])}
