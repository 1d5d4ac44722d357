"""Availability as an OASIS EDXL-HAVE 2.0 document (`application/emergency+xml`).

One `facility` per site: a facility whose address is public, or a city standing for the confidential facilities
in it. Each bed profile is a `bedCapacity` with its `availableCount` (free now), `baselineCount` (beds without
surge) and `additionalCapacityCount` (surge beds in place).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from xml.etree import ElementTree as ET

HAVE_NS = "urn:oasis:names:tc:emergency:edxl:have:2.0"
MEDIA_TYPE = "application/emergency+xml"


@dataclass(frozen=True)
class HaveEntry:
    bed_type: str
    baseline: int
    available: int
    surge: int


@dataclass
class HaveSite:
    facility_id: str
    name: str
    facility_type: str
    city: str
    province: str
    address_line: str
    postal_code: str
    updated_at: datetime
    beds: dict[str, HaveEntry] = field(default_factory=dict)

    def add(self, entry: HaveEntry) -> None:
        """Pools of one profile (in one facility, or across a city's confidential facilities) add up."""
        known = self.beds.get(entry.bed_type)
        if known is not None:
            entry = HaveEntry(
                entry.bed_type,
                known.baseline + entry.baseline,
                known.available + entry.available,
                known.surge + entry.surge,
            )
        self.beds[entry.bed_type] = entry


def _el(parent: ET.Element, name: str, text: str | int | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{HAVE_NS}}}{name}")
    if text is not None:
        child.text = str(text)
    return child


def have_document(sites: Iterable[HaveSite], generated_at: datetime) -> bytes:
    ET.register_namespace("have", HAVE_NS)
    root = ET.Element(f"{{{HAVE_NS}}}HAVE")
    _el(root, "lastUpdateTime", generated_at.isoformat())
    for site in sites:
        facility = _el(root, "facility")
        info = _el(facility, "facilityInformation")
        _el(info, "facilityID", site.facility_id)
        _el(info, "facilityName", site.name)
        _el(info, "facilityType", site.facility_type)
        address = _el(info, "facilityAddress")
        if site.address_line:
            _el(address, "addressLine", site.address_line)
        _el(address, "city", site.city)
        _el(address, "stateProvince", site.province)
        if site.postal_code:
            _el(address, "postalCode", site.postal_code)
        _el(address, "country", "CA")
        _el(facility, "lastUpdateTime", site.updated_at.isoformat())
        beds = _el(facility, "bedCapacityList")
        for entry in sorted(site.beds.values(), key=lambda e: e.bed_type):
            bed = _el(beds, "bedCapacity")
            _el(bed, "bedType", entry.bed_type)
            capacity = _el(bed, "capacity")
            _el(capacity, "capacityStatus", "vacantAvailable" if entry.available > 0 else "notAvailable")
            _el(capacity, "availableCount", entry.available)
            _el(capacity, "baselineCount", entry.baseline)
            _el(capacity, "additionalCapacityCount", entry.surge)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
