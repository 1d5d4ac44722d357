"""The directory exchange's rules: facilities to Open Referral HSDS 3.0 and back (issue 14).

Pure: no session, no I/O beyond parsing bytes handed in. The web shell (exchange/interop/) reads the rows, calls
these functions and writes what they decide.

- Export: `organization_record`, `service_record` build the HSDS objects of the public directory. A facility's
  address and intake phone are confidential (DESIGN.md): the directory names its city, province and coarse area
  only, unless its `DirectoryListing` says the address is public (a non-shelter kind imported from a public
  directory) and the address has not been changed here since. Phones are never published.
- Import: `read_package` turns an HSDS data package (the nested JSON form or the tabular CSV form, loose files or a
  zip) into flat `Tables`, or raises `PackageInvalid` with the path and reason of every error; `plan_import` maps
  the tables onto organisation and facility values, and lists every HSDS field that does not fit as a `Note`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from babel import Locale

from beds.models import PROVINCES, FacilityKind, Profile, SecurityLevel

# Ids the export makes for records that were never imported: stable, so a partner sees the same ids every time.
ID_NAMESPACE = uuid.UUID("6f1d8c52-1b7e-4f0a-9a55-3c2b9d0e7a41")
# The taxonomy of this exchange's own attributes: a package exported here re-imports exactly.
TAXONOMY = "refuge-exchange"
COUNTRY = "CA"

# Kinds whose address stays confidential when imported: every place a person in danger sleeps. A partner hotel too:
# its address is public in its own directory, but published by this exchange it says where victims sleep tonight.
SHELTER_KINDS = frozenset(FacilityKind)
BOOLEAN_CRITERIA = (
    "sobriety_required",
    "asylum_seekers_only",
    "accepts_trafficking",
    "accepts_worker_referral",
    "children_accompanied",
    "accessible",
)
# The facility fields an import sets (never counts: a shelter's beds are its own).
IMPORTED_FIELDS = (
    "name",
    "kind",
    "province",
    "city",
    "area",
    "address",
    "intake_phone",
    "oncall_email",
    "security_level",
    "genders",
    "age_min",
    "age_max",
    *BOOLEAN_CRITERIA,
    "languages",
    "max_stay_nights",
    "active",
)
# Service fields with no place in a facility: named in the import report when a package has them.
UNMAPPED_SERVICE_FIELDS = (
    "alternate_name",
    "description",
    "url",
    "interpretation_services",
    "application_process",
    "fees_description",
    "wait_time",
    "fees",
    "accreditations",
    "assured_date",
    "assurer_email",
    "licenses",
    "alert",
    "program_id",
    "schedules",
    "service_areas",
    "funding",
    "cost_options",
    "program",
    "required_documents",
    "contacts",
)
UNMAPPED_ORGANIZATION_FIELDS = (
    "alternate_name",
    "email",
    "website",
    "tax_status",
    "tax_id",
    "year_incorporated",
    "legal_status",
    "logo",
    "uri",
    "parent_organization_id",
    "funding",
    "contacts",
    "programs",
    "organization_identifiers",
)


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, ":".join(parts)))


def as_uuid(local_id: str) -> str:
    """A local id (uuid4 hex) in the canonical UUID form HSDS ids take; any other id gets a stable UUID."""
    try:
        return str(uuid.UUID(local_id))
    except ValueError:
        return stable_id("local", local_id)


# --- export -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The ids a facility is published under, and its public address when it has one."""

    service_id: str
    location_id: str
    service_at_location_id: str
    address_1: str = ""
    address_2: str = ""
    postal_code: str = ""
    latitude: float | None = None
    longitude: float | None = None
    address_public: bool = False


def joined_address(address_1: str, address_2: str, postal_code: str) -> str:
    return ", ".join(part for part in (address_1.strip(), address_2.strip(), postal_code.strip()) if part)


def published(facility: Any, listing: Any | None) -> Published:
    """How `facility` is published. A public address counts only while the facility's address is still the one
    imported: an address changed here since is treated as confidential."""
    if listing is None:
        return Published(
            service_id=as_uuid(facility.id),
            location_id=stable_id("location", facility.id),
            service_at_location_id=stable_id("service_at_location", facility.id),
        )
    public = bool(listing.address_public) and facility.address == joined_address(
        listing.address_1, listing.address_2, listing.postal_code
    )
    if not public:
        return Published(listing.service_id, listing.location_id, listing.service_at_location_id)
    return Published(
        listing.service_id,
        listing.location_id,
        listing.service_at_location_id,
        listing.address_1,
        listing.address_2,
        listing.postal_code,
        listing.latitude,
        listing.longitude,
        True,
    )


def organization_record(hsds_id: str, name: str) -> dict[str, Any]:
    return {"id": hsds_id, "name": name, "description": name}


def _attribute(service_id: str, code: str, value: str) -> dict[str, Any]:
    return {
        "id": stable_id("attribute", service_id, code),
        "link_id": service_id,
        "taxonomy_term_id": stable_id("term", code),
        "link_type": "service",
        "link_entity": "service",
        "value": value,
        "taxonomy_term": {
            "id": stable_id("term", code),
            "code": code,
            "name": code,
            "description": "Refuge Exchange " + code.replace("_", " ").replace(":", ": "),
            "taxonomy": TAXONOMY,
        },
    }


def eligibility_sentence(facility: Any) -> str:
    """A plain sentence of whom the facility takes, for people reading the directory."""
    parts = [f"Takes {facility.genders.replace(',', ', ')}", f"aged {facility.age_min}"]
    if facility.age_max is not None:
        parts[-1] += f" to {facility.age_max}"
    else:
        parts[-1] += " and over"
    if facility.sobriety_required:
        parts.append("sobriety required")
    if facility.asylum_seekers_only:
        parts.append("asylum seekers only")
    if facility.children_accompanied:
        parts.append("children accompanied")
    if facility.accepts_trafficking:
        parts.append("accepts people who were trafficked")
    return "; ".join(parts) + "."


def service_record(
    facility: Any, pools: Iterable[Any], where: Published, organization_id: str, *, full: bool
) -> dict[str, Any]:
    """One facility as an HSDS service: the list form (one-to-one fields), or `full` with its location (city
    precision unless the address is public), languages and this exchange's attributes. Never a phone."""
    record: dict[str, Any] = {
        "id": where.service_id,
        "organization_id": organization_id,
        "name": facility.name,
        "status": "active" if facility.active else "inactive",
        "eligibility_description": eligibility_sentence(facility),
        "minimum_age": facility.age_min,
        "last_modified": facility.updated_at.isoformat(),
    }
    if facility.age_max is not None:
        record["maximum_age"] = facility.age_max
    if not full:
        return record
    location: dict[str, Any] = {
        "id": where.location_id,
        "location_type": "physical",
        "organization_id": organization_id,
        "name": f"{facility.area}, {facility.city}" if facility.area else facility.city,
        "addresses": [
            {
                "id": stable_id("address", where.location_id),
                "location_id": where.location_id,
                "address_1": where.address_1,
                "address_2": where.address_2,
                "city": facility.city,
                "region": facility.area,
                "state_province": facility.province,
                "postal_code": where.postal_code,
                "country": COUNTRY,
                "address_type": "physical",
            }
        ],
        "accessibility": [],
    }
    if not where.address_2:
        del location["addresses"][0]["address_2"]
    if where.address_public and where.latitude is not None and where.longitude is not None:
        location["latitude"], location["longitude"] = where.latitude, where.longitude
    if facility.accessible:
        location["accessibility"].append(
            {
                "id": stable_id("accessibility", where.location_id),
                "location_id": where.location_id,
                "description": "Wheelchair accessible",
            }
        )
    record["languages"] = [
        {"id": stable_id("language", where.service_id, code), "service_id": where.service_id, "code": code}
        for code in (lang for lang in facility.languages.split(",") if lang)
    ]
    attributes = [
        _attribute(where.service_id, "facility_kind", str(facility.kind)),
        _attribute(where.service_id, "security_level", str(facility.security_level)),
        _attribute(where.service_id, "genders", facility.genders),
    ]
    attributes += [
        _attribute(where.service_id, "criterion:" + name, "true" if getattr(facility, name) else "false")
        for name in BOOLEAN_CRITERIA
    ]
    if facility.max_stay_nights is not None:
        attributes.append(_attribute(where.service_id, "max_stay_nights", str(facility.max_stay_nights)))
    attributes += [
        _attribute(where.service_id, "bed_pool:" + str(pool.profile), str(pool.capacity))
        for pool in sorted(pools, key=lambda p: str(p.profile))
    ]
    record["attributes"] = attributes
    record["service_at_locations"] = [
        {
            "id": where.service_at_location_id,
            "service_id": where.service_id,
            "location_id": where.location_id,
            "location": location,
        }
    ]
    return record


# The tabular form: one CSV per table, the columns this exchange writes (a subset of HSDS's, in its order).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "organizations.csv": ("id", "name", "description"),
    "services.csv": (
        "id",
        "organization_id",
        "name",
        "status",
        "eligibility_description",
        "minimum_age",
        "maximum_age",
        "last_modified",
    ),
    "service_at_location.csv": ("id", "service_id", "location_id"),
    "locations.csv": ("id", "location_type", "organization_id", "name", "latitude", "longitude"),
    "addresses.csv": (
        "id",
        "location_id",
        "address_1",
        "address_2",
        "city",
        "region",
        "state_province",
        "postal_code",
        "country",
        "address_type",
    ),
    "languages.csv": ("id", "service_id", "location_id", "name", "code"),
    "accessibility.csv": ("id", "location_id", "description"),
    "attributes.csv": ("id", "link_id", "taxonomy_term_id", "link_type", "link_entity", "value"),
    "taxonomy_terms.csv": ("id", "code", "name", "description", "taxonomy"),
}


def to_tables(organizations: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Nested organizations (each with full `services`) flattened into HSDS's tables."""
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLE_COLUMNS}
    terms: dict[str, dict[str, Any]] = {}
    for org in organizations:
        tables["organizations.csv"].append(org)
        for service in org.get("services", []):
            tables["services.csv"].append(service)
            tables["languages.csv"].extend(service.get("languages", []))
            for attribute in service.get("attributes", []):
                tables["attributes.csv"].append(attribute)
                terms[attribute["taxonomy_term"]["id"]] = attribute["taxonomy_term"]
            for sal in service.get("service_at_locations", []):
                tables["service_at_location.csv"].append(sal)
                location = sal["location"]
                tables["locations.csv"].append(location)
                tables["addresses.csv"].extend(location.get("addresses", []))
                tables["accessibility.csv"].extend(location.get("accessibility", []))
    tables["taxonomy_terms.csv"] = list(terms.values())
    return tables


def tables_to_csv(tables: Mapping[str, list[dict[str, Any]]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, rows in tables.items():
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS[name], extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in TABLE_COLUMNS[name]})
        out[name] = buffer.getvalue()
    return out


def datapackage(title: str) -> dict[str, Any]:
    """The Frictionless data package descriptor of the tabular form."""
    return {
        "name": "refuge-exchange-directory",
        "title": title,
        "profile": "tabular-data-package",
        "resources": [
            {
                "name": name.removesuffix(".csv"),
                "path": name,
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "schema": {"fields": [{"name": column, "type": "string"} for column in columns]},
            }
            for name, columns in TABLE_COLUMNS.items()
        ],
    }


# --- reading a package ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageError:
    path: str
    reason: str


class PackageInvalid(Exception):
    """The package cannot be imported; nothing was written."""

    def __init__(self, errors: list[PackageError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the package")
        self.errors = errors


@dataclass
class Row:
    data: dict[str, Any]
    path: str


@dataclass
class Tables:
    organizations: dict[str, Row] = field(default_factory=dict)
    services: dict[str, Row] = field(default_factory=dict)
    service_at_locations: dict[str, Row] = field(default_factory=dict)
    locations: dict[str, Row] = field(default_factory=dict)
    addresses: list[Row] = field(default_factory=list)
    phones: list[Row] = field(default_factory=list)
    languages: list[Row] = field(default_factory=list)
    accessibility: list[Row] = field(default_factory=list)
    attributes: list[Row] = field(default_factory=list)
    taxonomy_terms: dict[str, Row] = field(default_factory=dict)


# Files of the tabular form this exchange reads, and the table each fills; the others are listed as unread.
CSV_TABLES = {
    "organizations.csv": "organizations",
    "services.csv": "services",
    "service_at_location.csv": "service_at_locations",
    "service_at_locations.csv": "service_at_locations",
    "locations.csv": "locations",
    "addresses.csv": "addresses",
    "phones.csv": "phones",
    "languages.csv": "languages",
    "accessibility.csv": "accessibility",
    "attributes.csv": "attributes",
    "taxonomy_terms.csv": "taxonomy_terms",
}
REQUIRED = {
    "organizations": ("id", "name"),
    "services": ("id", "name", "status"),
    "service_at_locations": ("id", "service_id", "location_id"),
    "locations": ("id",),
    "addresses": ("id", "city", "state_province"),
    "phones": ("id", "number"),
    "languages": ("id",),
    "accessibility": ("id",),
    "attributes": ("id",),
    "taxonomy_terms": ("id",),
}
NUMBERS = {
    "services": ("minimum_age", "maximum_age"),
    "locations": ("latitude", "longitude"),
}
STATUSES = ("active", "inactive", "defunct", "temporarily closed")
# Nested JSON: the arrays under each kind of object, and what they hold.
NESTED: dict[str, dict[str, str]] = {
    "organizations": {"services": "services", "locations": "locations", "phones": "phones"},
    "services": {
        "service_at_locations": "service_at_locations",
        "phones": "phones",
        "languages": "languages",
        "attributes": "attributes",
    },
    "service_at_locations": {"phones": "phones", "attributes": "attributes"},
    "locations": {
        "addresses": "addresses",
        "phones": "phones",
        "languages": "languages",
        "accessibility": "accessibility",
        "attributes": "attributes",
    },
}
# The key a child record points at its parent with.
PARENT_KEY = {
    "organizations": "organization_id",
    "services": "service_id",
    "service_at_locations": "service_at_location_id",
    "locations": "location_id",
}
MAX_ERRORS = 200


class _Reader:
    def __init__(self) -> None:
        self.tables = Tables()
        self.errors: list[PackageError] = []
        self.seen: set[str] = set()
        self.rejected: set[str] = set()

    def error(self, path: str, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(PackageError(path, reason))

    def add(self, table: str, data: dict[str, Any], path: str) -> None:
        if not self._valid(table, data, path):
            if isinstance(data.get("id"), str):
                # Its own errors are reported: what points at it is not reported a second time.
                self.rejected.add(data["id"])
            return
        row = Row(data, path)
        target = getattr(self.tables, table)
        if isinstance(target, dict):
            existing = target.get(data["id"])
            if existing is None:
                target[data["id"]] = row
            else:
                # The nested form repeats a record (a location under its organization and under each service):
                # one record, whatever it said first completed by what it says later.
                for key, value in data.items():
                    existing.data.setdefault(key, value)
        else:
            # The nested form repeats a record under each parent that shows it: keep one copy of each.
            key = json.dumps([table, data], sort_keys=True, default=str)
            if key not in self.seen:
                self.seen.add(key)
                target.append(row)

    def _valid(self, table: str, data: dict[str, Any], path: str) -> bool:
        ok = True
        for name in REQUIRED[table]:
            value = data.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                self.error(f"{path}.{name}", "required, missing or empty")
                ok = False
            elif not isinstance(value, str):
                self.error(f"{path}.{name}", "must be text")
                ok = False
        for name in NUMBERS.get(table, ()):
            value = data.get(name)
            if value is None:
                continue
            if isinstance(value, str):
                try:
                    data[name] = float(value) if "." in value else int(value)
                except ValueError:
                    self.error(f"{path}.{name}", f"must be a number, not {value[:40]!r}")
                    ok = False
            elif isinstance(value, bool) or not isinstance(value, int | float):
                self.error(f"{path}.{name}", "must be a number")
                ok = False
        if table == "services" and isinstance(data.get("status"), str) and data["status"] not in STATUSES:
            self.error(f"{path}.status", "must be one of " + ", ".join(STATUSES))
            ok = False
        return ok

    def walk(self, table: str, data: Any, path: str, parent: tuple[str, str] | None = None) -> None:
        if not isinstance(data, dict):
            self.error(path, "must be an object")
            return
        record = {k: v for k, v in data.items() if k not in NESTED.get(table, {}) and not isinstance(v, dict)}
        if parent is not None:
            record.setdefault(parent[0], parent[1])
        # A nested record names its one-to-one neighbours by object: their ids are the foreign keys.
        for key in ("organization", "location", "service", "taxonomy_term"):
            nested = data.get(key)
            if isinstance(nested, dict) and isinstance(nested.get("id"), str):
                record.setdefault(key + "_id", nested["id"])
        self.add(table, record, path)
        own_id = data.get("id") if isinstance(data.get("id"), str) else None
        link = (PARENT_KEY[table], own_id) if own_id and table in PARENT_KEY else None
        if table == "services" and isinstance(data.get("organization"), dict):
            self.walk("organizations", data["organization"], f"{path}.organization")
        if table == "service_at_locations" and isinstance(data.get("location"), dict):
            self.walk("locations", data["location"], f"{path}.location")
        if table == "attributes" and isinstance(data.get("taxonomy_term"), dict):
            self.walk("taxonomy_terms", data["taxonomy_term"], f"{path}.taxonomy_term")
        for key, child_table in NESTED.get(table, {}).items():
            children = data.get(key)
            if children is None:
                continue
            if not isinstance(children, list):
                self.error(f"{path}.{key}", "must be a list")
                continue
            for index, child in enumerate(children):
                self.walk(child_table, child, f"{path}.{key}[{index}]", link)


def _json_top(reader: _Reader, document: Any, name: str) -> None:
    if isinstance(document, dict) and isinstance(document.get("contents"), list):  # a page of the HSDS API
        document = document["contents"]
    # A container of both tables ({"organizations": [...], "services": [...]}), not an organization record.
    if isinstance(document, dict) and "id" not in document and ("organizations" in document or "services" in document):
        for key in ("organizations", "services"):
            items = document.get(key, [])
            if not isinstance(items, list):
                reader.error(f"{name}:{key}", "must be a list")
                continue
            for index, item in enumerate(items):
                reader.walk(key, item, f"{name}:{key}[{index}]")
        return
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        path = f"{name}:[{index}]" if isinstance(document, list) else name
        # A service has a status and no services of its own; anything else is read as an organization.
        is_service = isinstance(item, dict) and "status" in item and "services" not in item
        reader.walk("services" if is_service else "organizations", item, path)


# An archive is read into memory: its members and their declared sizes are bounded before anything is read (a
# small zip can declare gigabytes; the reader never reads past a member's declared size).
ZIP_MEMBERS_MAX = 100
ZIP_TOTAL_BYTES_MAX = 100 * 1024 * 1024


def _unzip(content: bytes, errors: list[PackageError], name: str) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir() and info.filename.lower().endswith((".csv", ".json"))
            ]
            if len(members) > ZIP_MEMBERS_MAX:
                errors.append(PackageError(name, f"more than {ZIP_MEMBERS_MAX} files in the archive"))
                return {}
            if sum(info.file_size for info in members) > ZIP_TOTAL_BYTES_MAX:
                limit = ZIP_TOTAL_BYTES_MAX // (1024 * 1024)
                errors.append(PackageError(name, f"more than {limit} MB once unpacked"))
                return {}
            return {info.filename.rsplit("/", 1)[-1]: archive.read(info) for info in members}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error):
        errors.append(PackageError(name, "not a readable zip archive"))
        return {}


def read_package(files: Mapping[str, bytes]) -> Tables:
    """An HSDS package from its files (name → bytes): `*.json` (the nested form), `*.csv` (the tabular form) or a
    `*.zip` of either. Raises `PackageInvalid` with every error found (up to `MAX_ERRORS`)."""
    reader = _Reader()
    expanded: dict[str, bytes] = {}
    for name, content in files.items():
        if name.lower().endswith(".zip"):
            expanded.update(_unzip(content, reader.errors, name))
        else:
            expanded[name.rsplit("/", 1)[-1]] = content
    csv_files = {n: c for n, c in expanded.items() if n.lower().endswith(".csv")}
    json_files = {n: c for n, c in expanded.items() if n.lower().endswith(".json") and n != "datapackage.json"}
    if not csv_files and not json_files and not reader.errors:
        reader.error("package", "no HSDS data: expected .json files or the .csv tables")
    for name, content in json_files.items():
        try:
            document = json.loads(content.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reader.error(name, f"not valid JSON: {exc}")
            continue
        _json_top(reader, document, name)
    for name, content in sorted(csv_files.items()):
        table = CSV_TABLES.get(name.lower())
        if table is None:
            continue
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            reader.error(name, "not UTF-8 text")
            continue
        rows = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in REQUIRED[table] if c not in (rows.fieldnames or [])]
        if missing:
            reader.error(name, "missing columns: " + ", ".join(missing))
            continue
        for number, raw in enumerate(rows, start=2):
            if None in raw:
                reader.error(f"{name} row {number}", "more values than columns")
                continue
            data = {k: v for k, v in raw.items() if v not in (None, "")}
            reader.add(table, data, f"{name} row {number}")
    _check_references(reader)
    if reader.errors:
        raise PackageInvalid(reader.errors)
    return reader.tables


def _check_references(reader: _Reader) -> None:
    t, rejected = reader.tables, reader.rejected
    for service in t.services.values():
        org_id = service.data.get("organization_id")
        if not org_id:
            reader.error(f"{service.path}.organization_id", "required: the organization that provides the service")
        elif org_id not in t.organizations and org_id not in rejected:
            reader.error(f"{service.path}.organization_id", f"names no organization of the package ({org_id})")
    for sal in t.service_at_locations.values():
        if sal.data.get("service_id") not in t.services and sal.data.get("service_id") not in rejected:
            reader.error(f"{sal.path}.service_id", "names no service of the package")
        if sal.data.get("location_id") not in t.locations and sal.data.get("location_id") not in rejected:
            reader.error(f"{sal.path}.location_id", "names no location of the package")


# --- mapping onto organisations and facilities -------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """Something of the package that does not fit the exchange, and what became of it."""

    path: str
    message: str


@dataclass(frozen=True)
class OrganisationPlan:
    hsds_id: str
    name: str
    kind: str  # shelter when it runs a facility of the package, else community
    province: str
    content_hash: str
    path: str


@dataclass(frozen=True)
class FacilityPlan:
    hsds_id: str  # the service_at_location's id
    organization_hsds_id: str
    fields: dict[str, Any]
    pools: tuple[tuple[str, int], ...]
    listing: dict[str, Any]
    content_hash: str
    path: str


@dataclass
class ImportPlan:
    organisations: list[OrganisationPlan] = field(default_factory=list)
    facilities: list[FacilityPlan] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def content_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


PROVINCE_NAMES = {_plain(name): code for code, name in PROVINCES.items()} | {
    _plain(name): code
    for name, code in {
        "Québec": "QC",
        "Colombie-Britannique": "BC",
        "Nouvelle-Écosse": "NS",
        "Nouveau-Brunswick": "NB",
        "Terre-Neuve-et-Labrador": "NL",
        "Île-du-Prince-Édouard": "PE",
        "Territoires du Nord-Ouest": "NT",
        "PQ": "QC",
    }.items()
}


def province_code(text: str) -> str | None:
    text = (text or "").strip()
    if text.upper() in PROVINCES:
        return text.upper()
    return PROVINCE_NAMES.get(_plain(text))


LANGUAGE_CODES = {
    "eng": "en", "fra": "fr", "fre": "fr", "spa": "es", "ara": "ar", "zho": "zh", "chi": "zh", "por": "pt",
    "pan": "pa", "urd": "ur", "tgl": "tl", "fas": "fa", "per": "fa", "rus": "ru", "ukr": "uk", "ita": "it",
    "deu": "de", "ger": "de", "vie": "vi", "kor": "ko", "hin": "hi", "tam": "ta", "som": "so", "tir": "ti",
    "amh": "am", "swa": "sw", "iku": "iu", "cre": "cr", "oji": "oj",
    "english": "en", "french": "fr", "francais": "fr", "anglais": "en", "spanish": "es", "espagnol": "es",
    "arabic": "ar", "arabe": "ar",
}  # fmt: skip


# The ISO 639-1 codes CLDR names (Cree, Ojibwe and Inuktitut included).
ISO_639_1 = frozenset(code for code in Locale("en").languages if re.fullmatch(r"[a-z]{2}", code))


def language_code(code: str | None, name: str | None) -> str | None:
    for text in (code, name):
        if not text:
            continue
        plain = _plain(text).split("-")[0].split("_")[0]
        if plain in ISO_639_1:
            return plain
        if plain in LANGUAGE_CODES:
            return LANGUAGE_CODES[plain]
    return None


# Words that say what a service is, checked in this order (the first that matches decides).
KIND_WORDS: tuple[tuple[FacilityKind, tuple[str, ...]], ...] = (
    (FacilityKind.TRAFFICKING_SHELTER, ("traffick", "traite")),
    (FacilityKind.ROTATING_SAFE_HOUSE, ("safe house", "maison refuge")),
    (FacilityKind.PARTNER_HOTEL, ("hotel", "motel")),
    (FacilityKind.TRANSITION_HOUSING, ("transition", "second stage", "second-stage", "deuxieme etape")),
    (FacilityKind.YOUTH, ("youth", "jeunesse", "jeunes")),
    (FacilityKind.MIGRANT_REFUGEE, ("refugee", "refugie", "migrant", "newcomer", "asylum")),
    (FacilityKind.FAMILY, ("family shelter", "families", "familles")),
    (FacilityKind.VAW_SHELTER, ("women's shelter", "violence", "femmes")),
    (FacilityKind.MEN, ("men's shelter", "men's residence", "hommes")),
    (FacilityKind.HOMELESS, ("shelter", "refuge", "hebergement", "itinerance", "homeless", "housing")),
)
DEFAULT_PROFILE = {
    FacilityKind.VAW_SHELTER: Profile.WOMEN,
    FacilityKind.TRAFFICKING_SHELTER: Profile.WOMEN,
    FacilityKind.TRANSITION_HOUSING: Profile.WOMEN,
    FacilityKind.MEN: Profile.MEN,
    FacilityKind.YOUTH: Profile.YOUTH,
    FacilityKind.FAMILY: Profile.FAMILY,
}
DEFAULT_GENDERS = {
    FacilityKind.VAW_SHELTER: "women",
    FacilityKind.TRAFFICKING_SHELTER: "women",
    FacilityKind.TRANSITION_HOUSING: "women",
    FacilityKind.MEN: "men",
}
DEFAULT_SECURITY = {
    FacilityKind.TRAFFICKING_SHELTER: SecurityLevel.HIGH,
    FacilityKind.ROTATING_SAFE_HOUSE: SecurityLevel.HIGH,
    FacilityKind.VAW_SHELTER: SecurityLevel.HEIGHTENED,
}
DEFAULT_AGE_MIN = {FacilityKind.FAMILY: 0, FacilityKind.YOUTH: 16}
ACCESSIBLE_WORDS = ("wheelchair", "accessible", "step-free", "step free", "ramp", "fauteuil", "elevator", "lift")


def kind_of(text: str) -> FacilityKind | None:
    plain = _plain(text)
    for kind, words in KIND_WORDS:
        if any(word in plain for word in words):
            return kind
    return None


def _genders_in(text: str) -> str | None:
    plain = _plain(text)
    found = []
    if re.search(r"\b(women|woman|female|femmes?|girls?)\b", plain):
        found.append("women")
    if re.search(r"\b(men|man|male|hommes?|boys?)\b", plain):
        found.append("men")
    if re.search(r"\b(non-?binary|2slgbtq\w*|trans)\b", plain):
        found.append("nonbinary")
    return ",".join(found) or None


def _eligibility(text: str, path: str, notes: list[Note]) -> dict[str, Any]:
    """Criteria a free-text eligibility description states plainly; the rest is reported, not guessed."""
    plain = _plain(text)
    fields: dict[str, Any] = {}
    genders = _genders_in(text)
    if genders:
        fields["genders"] = genders
    if re.search(r"\bsob(er|riety)\b", plain) and not re.search(
        r"no sobriety|not (need to be|required to be) sober", plain
    ):
        fields["sobriety_required"] = True
    if "asylum seekers only" in plain or "demandeurs d'asile seulement" in plain:
        fields["asylum_seekers_only"] = True
    if re.search(r"\bchildren\b|\benfants\b", plain):
        fields["children_accompanied"] = True
    if "traffick" in plain:
        fields["accepts_trafficking"] = True
    read = ", ".join(f"{k}={v}" for k, v in sorted(fields.items())) or "nothing the board filters on"
    notes.append(Note(f"{path}.eligibility_description", f"read as: {read}; the text itself is not kept"))
    return fields


def _ours(attributes: list[Row], terms: dict[str, Row]) -> tuple[dict[str, str], list[Row]]:
    """This exchange's own attributes ({code: value}) and the others."""
    ours: dict[str, str] = {}
    others: list[Row] = []
    for row in attributes:
        term = terms.get(row.data.get("taxonomy_term_id", ""))
        term_data = term.data if term else {}
        if term_data.get("taxonomy") == TAXONOMY and term_data.get("code"):
            ours[term_data["code"]] = str(row.data.get("value", ""))
        else:
            others.append(row)
    return ours, others


def _int(value: Any) -> int:
    return int(float(value))


def plan_import(tables: Tables) -> ImportPlan:
    """What importing `tables` means for the exchange: organisations, facilities (one per service at a location),
    their pools, and a note for everything that does not fit."""
    plan = ImportPlan()
    notes = plan.notes
    t = tables
    by_link: dict[str, list[Row]] = {}
    for row in t.attributes:
        if row.data.get("link_id"):
            by_link.setdefault(row.data["link_id"], []).append(row)
    # Attributes nested under a service carry its id as the parent key instead of link_id.
    for row in t.attributes:
        if not row.data.get("link_id") and row.data.get("service_id"):
            by_link.setdefault(row.data["service_id"], []).append(row)
    languages: dict[str, list[Row]] = {}
    for row in t.languages:
        for key in ("service_id", "location_id"):
            if row.data.get(key):
                languages.setdefault(row.data[key], []).append(row)
    addresses: dict[str, list[Row]] = {}
    for row in t.addresses:
        addresses.setdefault(row.data.get("location_id", ""), []).append(row)
    accessibility: dict[str, list[Row]] = {}
    for row in t.accessibility:
        accessibility.setdefault(row.data.get("location_id", ""), []).append(row)
    phones: dict[str, list[Row]] = {}
    for row in t.phones:
        for key in ("service_at_location_id", "location_id", "service_id"):
            if row.data.get(key):
                phones.setdefault(row.data[key], []).append(row)
    sals_of: dict[str, list[Row]] = {}
    for sal in t.service_at_locations.values():
        sals_of.setdefault(sal.data["service_id"], []).append(sal)

    provinces: dict[str, str] = {}
    for service in t.services.values():
        s = service.data
        unmapped = [name for name in UNMAPPED_SERVICE_FIELDS if s.get(name) not in (None, "", [])]
        if unmapped:
            notes.append(Note(service.path, "not carried over: " + ", ".join(unmapped)))
        sals = sals_of.get(s["id"], [])
        if not sals:
            notes.append(Note(service.path, "no location: not placed on the board"))
            continue
        ours, others = _ours(by_link.get(s["id"], []), t.taxonomy_terms)
        for row in others:
            term = t.taxonomy_terms.get(row.data.get("taxonomy_term_id", ""))
            label = (term.data.get("name") if term else None) or row.data.get("value") or row.data["id"]
            notes.append(Note(row.path, f"taxonomy term {label!r} not mapped"))
        term_text = " ".join(
            str(t.taxonomy_terms[r.data["taxonomy_term_id"]].data.get("name", ""))
            for r in others
            if r.data.get("taxonomy_term_id") in t.taxonomy_terms
        )
        kind_value = ours.get("facility_kind")
        kind = FacilityKind(kind_value) if kind_value in set(FacilityKind) else None
        if kind is None:
            kind = kind_of(" ".join([s.get("name", ""), term_text, str(s.get("description", ""))]))
        if kind is None:
            notes.append(
                Note(
                    service.path,
                    "not a housing service the board knows (no shelter, housing or hotel "
                    "in its name, description or taxonomy): not placed on the board",
                )
            )
            continue
        for sal in sals:
            facility = _facility_plan(
                service, sal, kind, ours, t, languages, addresses, accessibility, phones, notes, several=len(sals) > 1
            )
            if facility is not None:
                plan.facilities.append(facility)
                provinces.setdefault(facility.organization_hsds_id, facility.fields["province"])

    for org in t.organizations.values():
        o = org.data
        unmapped = [name for name in UNMAPPED_ORGANIZATION_FIELDS if o.get(name) not in (None, "", [])]
        if unmapped:
            notes.append(Note(org.path, "not carried over: " + ", ".join(unmapped)))
        name = " ".join(str(o["name"]).split())
        kind = "shelter" if o["id"] in provinces else "community"
        province = provinces.get(o["id"], "")
        plan.organisations.append(
            OrganisationPlan(o["id"], name, kind, province, content_hash([name, kind, province]), org.path)
        )
    return plan


def _facility_plan(
    service: Row,
    sal: Row,
    kind: FacilityKind,
    ours: dict[str, str],
    t: Tables,
    languages: dict[str, list[Row]],
    addresses: dict[str, list[Row]],
    accessibility: dict[str, list[Row]],
    phones: dict[str, list[Row]],
    notes: list[Note],
    *,
    several: bool,
) -> FacilityPlan | None:
    s = service.data
    location = t.locations[sal.data["location_id"]]
    loc = location.data
    candidates = addresses.get(loc["id"], [])
    if not candidates:
        notes.append(Note(location.path, "no address: not placed on the board (a facility needs its city)"))
        return None
    address = next((a for a in candidates if a.data.get("address_type") == "physical"), candidates[0])
    a = address.data
    province = province_code(str(a.get("state_province", "")))
    country = str(a.get("country", COUNTRY)).strip().upper()
    if country not in ("CA", "CAN", "CANADA") or province is None:
        notes.append(
            Note(
                f"{address.path}.state_province",
                f"{a.get('state_province')!r}, {a.get('country', '')!r} is not a Canadian province or territory: "
                "not placed on the board",
            )
        )
        return None
    name = " ".join(str(s["name"]).split())
    if several:
        name = f"{name} — {loc.get('name') or a['city']}"
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind.value,
        "province": province,
        "city": " ".join(str(a["city"]).split()),
        "area": str(a.get("region", "")).strip(),
        "address": joined_address(
            str(a.get("address_1", "")), str(a.get("address_2", "")), str(a.get("postal_code", ""))
        ),
        "intake_phone": "",
        "oncall_email": str(s.get("email", "")).strip(),
        "security_level": DEFAULT_SECURITY.get(kind, SecurityLevel.STANDARD).value,
        "genders": DEFAULT_GENDERS.get(kind, "women,men,nonbinary"),
        "age_min": DEFAULT_AGE_MIN.get(kind, 18),
        "age_max": None,
        "sobriety_required": False,
        "asylum_seekers_only": False,
        "accepts_trafficking": kind != FacilityKind.HOMELESS,
        "accepts_worker_referral": True,
        "children_accompanied": kind == FacilityKind.FAMILY,
        "accessible": False,
        "languages": "en",
        "max_stay_nights": None,
        "active": s.get("status") == "active",
    }
    for row in (*phones.get(sal.data["id"], []), *phones.get(loc["id"], []), *phones.get(s["id"], [])):
        fields["intake_phone"] = str(row.data["number"]).strip().strip('"').strip()
        break
    if s.get("minimum_age") is not None:
        fields["age_min"] = max(0, min(120, _int(s["minimum_age"])))
        if float(s["minimum_age"]) != fields["age_min"]:
            notes.append(Note(f"{service.path}.minimum_age", f"rounded to {fields['age_min']}"))
    if s.get("maximum_age") is not None:
        maximum = _int(s["maximum_age"])
        fields["age_max"] = maximum if maximum < 120 else None
        if fields["age_max"] is not None and fields["age_max"] < fields["age_min"]:
            notes.append(Note(f"{service.path}.maximum_age", "below the minimum age: no maximum kept"))
            fields["age_max"] = None
    if s.get("eligibility_description") and "genders" not in ours:
        fields.update(_eligibility(str(s["eligibility_description"]), service.path, notes))
    codes: list[str] = []
    for row in (*languages.get(s["id"], []), *languages.get(loc["id"], [])):
        code = language_code(row.data.get("code"), row.data.get("name"))
        if code is None:
            notes.append(Note(row.path, f"language {row.data.get('code') or row.data.get('name')!r} not recognised"))
        elif code not in codes:
            codes.append(code)
    if codes:
        fields["languages"] = ",".join(codes)
    for row in accessibility.get(loc["id"], []):
        text = " ".join(str(row.data.get(k, "")) for k in ("description", "details"))
        if any(word in _plain(text) for word in ACCESSIBLE_WORDS):
            fields["accessible"] = True
        else:
            notes.append(Note(row.path, "accessibility details not mapped: " + text.strip()[:120]))
    # This exchange's own attributes say exactly what the text could only suggest.
    if ours.get("security_level") in set(SecurityLevel):
        fields["security_level"] = ours["security_level"]
    if ours.get("genders"):
        fields["genders"] = ours["genders"]
    for name in BOOLEAN_CRITERIA:
        if "criterion:" + name in ours:
            fields[name] = ours["criterion:" + name] == "true"
    if ours.get("max_stay_nights", "").isdigit():
        fields["max_stay_nights"] = int(ours["max_stay_nights"])
    pools = tuple(
        sorted(
            (code.split(":", 1)[1], int(value))
            for code, value in ours.items()
            if code.startswith("bed_pool:") and code.split(":", 1)[1] in set(Profile) and value.isdigit()
        )
    )
    if not pools:
        pools = ((DEFAULT_PROFILE.get(kind, Profile.ANY).value, 0),)
        notes.append(Note(service.path, "no bed count in HSDS: one pool of 0 beds; the shelter sets its beds"))
    lat, lon = loc.get("latitude"), loc.get("longitude")
    public = kind not in SHELTER_KINDS
    if not public and (lat is not None or fields["address"]):
        notes.append(Note(location.path, "address and point kept confidential (a shelter's)"))
    listing = {
        "service_id": s["id"] if not several else stable_id("service", s["id"], sal.data["id"]),
        "location_id": loc["id"],
        "service_at_location_id": sal.data["id"],
        "address_public": public,
        "address_1": str(a.get("address_1", "")).strip(),
        "address_2": str(a.get("address_2", "")).strip(),
        "postal_code": str(a.get("postal_code", "")).strip(),
        "latitude": float(lat) if lat is not None and -90 <= float(lat) <= 90 else None,
        "longitude": float(lon) if lon is not None and -180 <= float(lon) <= 180 else None,
    }
    digest = content_hash([fields, pools, listing, s["organization_id"]])
    return FacilityPlan(sal.data["id"], s["organization_id"], fields, pools, listing, digest, sal.path)
