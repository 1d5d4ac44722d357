"""The public directory in HSDS 3.0 (issue 14): valid against the official schemas, paged as HSDS's API, and never
an address, a postal code, a phone or a point of a confidential facility."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from litestar.testing import AsyncTestClient
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.directory_models import DirectoryListing
from beds.models import BedPool, Facility, FacilityKind, Profile
from tests.conftest import Network

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "standards" / "hsds" / "schema"
BASE = "https://schemas.hsds.test/"


def _resource(name: str, schema: dict[str, Any]) -> Resource:
    # The schemas name no draft and no $id: each is read as draft 2020-12 under its file's own address, so that
    # a "$ref": "phone.json" finds its neighbour.
    return Resource.from_contents({**schema, "$id": BASE + name}, default_specification=DRAFT202012)


def _registry() -> Registry:
    # The per-table schemas refer to each other by file name, from the schema folder and from compiled/.
    tables = [(p.name, json.loads(p.read_text())) for p in SCHEMAS.glob("*.json")]
    return Registry().with_resources(
        [(BASE + name, _resource(name, schema)) for name, schema in tables]
        + [(BASE + "compiled/" + name, _resource("compiled/" + name, schema)) for name, schema in tables]
    )


REGISTRY = _registry()


def validator(name: str) -> Draft202012Validator:
    schema = {**json.loads((SCHEMAS / name).read_text()), "$id": BASE + name}
    return Draft202012Validator(schema, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid(schema: str, records: list[dict[str, Any]]) -> None:
    check = validator(schema)
    errors = [f"{schema} {list(e.absolute_path)}: {e.message}" for r in records for e in check.iter_errors(r)]
    assert not errors, "\n".join(errors)


PAGE_KEYS = {"total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty", "contents"}


async def test_the_validator_refuses_what_the_schemas_refuse() -> None:
    """The check below can fail: a service without its status, with a bad id, or with a phone without a number."""
    check = validator("service.json")
    assert not check.is_valid({"id": "not-a-uuid", "name": "x", "status": "active"})
    assert not check.is_valid({"id": "3f7b145d-84af-42d7-8fae-eaca714b02b2", "name": "x"})
    bad_phone = {"id": "3f7b145d-84af-42d7-8fae-eaca714b02b2", "name": "x", "status": "active", "phones": [{"id": "x"}]}
    assert not check.is_valid(bad_phone)


async def test_services_and_organizations_validate_against_the_official_schemas(
    client: AsyncTestClient, network: Network
) -> None:
    h = network["police"].headers
    services = (await client.get("/api/v1/hsds/services", headers=h)).json()
    assert set(services) == PAGE_KEYS
    assert services["total_items"] == 2
    assert {s["name"] for s in services["contents"]} == {"Maison Alpha", "Bravo House"}
    assert_valid("compiled/service_list.json", services["contents"])
    full = (await client.get("/api/v1/hsds/services", params={"full": "true"}, headers=h)).json()
    assert_valid("service.json", full["contents"])
    alpha = next(s for s in full["contents"] if s["name"] == "Maison Alpha")
    assert [lang["code"] for lang in alpha["languages"]] == ["en"]
    assert alpha["minimum_age"] == 18
    location = alpha["service_at_locations"][0]["location"]
    assert location["addresses"][0]["city"] == "Montréal"
    assert location["addresses"][0]["state_province"] == "QC"
    assert location["addresses"][0]["region"] == "Plateau"
    codes = {a["taxonomy_term"]["code"]: a["value"] for a in alpha["attributes"]}
    assert codes["facility_kind"] == "vaw_shelter"
    assert codes["bed_pool:women"] == "10" and codes["bed_pool:family"] == "3"

    organizations = (await client.get("/api/v1/hsds/organizations", headers=h)).json()
    assert set(organizations) == PAGE_KEYS
    # The organisations that run a listed facility; police and coalition are not part of the directory.
    assert {o["name"] for o in organizations["contents"]} == {"shelter_a org", "shelter_b org"}
    assert_valid("compiled/organization_list.json", organizations["contents"])
    nested = (await client.get("/api/v1/hsds/organizations", params={"full_service": "true"}, headers=h)).json()
    assert_valid("organization.json", nested["contents"])
    assert sum(len(o["services"]) for o in nested["contents"]) == 2


async def test_pages_as_hsds_api(client: AsyncTestClient, network: Network) -> None:
    h = network["shelter_a"].headers
    first = (await client.get("/api/v1/hsds/services", params={"per_page": 1}, headers=h)).json()
    assert (first["total_items"], first["total_pages"], first["size"]) == (2, 2, 1)
    assert first["first_page"] and not first["last_page"] and not first["empty"]
    second = (await client.get("/api/v1/hsds/services", params={"per_page": 1, "page": 2}, headers=h)).json()
    assert second["last_page"] and not second["first_page"]
    assert first["contents"][0]["id"] != second["contents"][0]["id"]
    beyond = (await client.get("/api/v1/hsds/services", params={"per_page": 1, "page": 3}, headers=h)).json()
    assert beyond["empty"] and beyond["contents"] == []
    assert (await client.get("/api/v1/hsds/services")).status_code == 401


def _secrets(network: Network) -> list[str]:
    found = []
    for facility in network.facilities.values():
        found += [facility.address, facility.intake_phone, facility.oncall_email]
    return found


async def test_a_confidential_address_never_appears(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """Whoever asks (the facility's own staff included) and in every form: list, nested, the package, EDXL."""
    async with sessionmaker() as session:
        # Even a listing row that once held a public address does not publish a shelter whose address changed.
        alpha = await session.get(Facility, network.facilities["a"].id)
        session.add(
            DirectoryListing(
                facility_id=alpha.id,
                service_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0001",
                location_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0002",
                service_at_location_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0003",
                address_public=True,
                address_1="1 Old Public Street",
                postal_code="H2X 1Y4",
                latitude=45.5171,
                longitude=-73.5811,
            )
        )
        await session.commit()
    secrets = [*_secrets(network), "1 Old Public Street", "H2X 1Y4", "45.5171"]
    for who in ("shelter_a", "police", "admin", "worker"):
        h = network[who].headers
        bodies = [
            (await client.get(path, params=params, headers=h)).text
            for path, params in (
                ("/api/v1/hsds/services", {"full": "true"}),
                ("/api/v1/hsds/services", {}),
                ("/api/v1/hsds/organizations", {"full_service": "true"}),
                ("/api/v1/edxl/have", {}),
            )
        ]
        package = (await client.get("/api/v1/hsds/package.zip", headers=h)).content
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            bodies += [archive.read(name).decode() for name in archive.namelist()]
        for body in bodies:
            for secret in secrets:
                assert secret not in body, (who, secret)
    full = (await client.get("/api/v1/hsds/services", params={"full": "true"}, headers=h)).json()
    for service in full["contents"]:
        assert "phones" not in service
        location = service["service_at_locations"][0]["location"]
        assert "latitude" not in location and "longitude" not in location
        assert location["addresses"][0]["address_1"] == ""
        assert location["addresses"][0]["postal_code"] == ""


async def test_a_public_address_is_published_whole(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """A listing row marked public (no import does so today: every imported kind stays confidential) publishes the
    address whole, as long as it is still the facility's address."""
    async with sessionmaker() as session:
        hotel = Facility(
            organisation_id=network.orgs["shelter_b"].id,
            name="Hôtel Partenaire",
            kind=FacilityKind.PARTNER_HOTEL,
            province="QC",
            city="Québec",
            address="400 boulevard Laurier, G1R 2L5",
            intake_phone="+1-555-000-9999",
        )
        session.add(hotel)
        await session.flush()
        session.add(BedPool(facility_id=hotel.id, profile=Profile.ANY, capacity=5))
        session.add(
            DirectoryListing(
                facility_id=hotel.id,
                service_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0011",
                location_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0012",
                service_at_location_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0013",
                address_public=True,
                address_1="400 boulevard Laurier",
                postal_code="G1R 2L5",
                latitude=46.8,
                longitude=-71.2,
            )
        )
        await session.commit()
    full = await client.get("/api/v1/hsds/services", params={"full": "true"}, headers=network["police"].headers)
    assert_valid("service.json", full.json()["contents"])
    service = next(s for s in full.json()["contents"] if s["name"] == "Hôtel Partenaire")
    location = service["service_at_locations"][0]["location"]
    assert location["addresses"][0]["address_1"] == "400 boulevard Laurier"
    assert location["addresses"][0]["postal_code"] == "G1R 2L5"
    assert (location["latitude"], location["longitude"]) == (46.8, -71.2)
    assert "+1-555-000-9999" not in full.text  # a phone never leaves, public address or not


async def test_the_package_is_the_tabular_form(client: AsyncTestClient, network: Network) -> None:
    package = await client.get("/api/v1/hsds/package.zip", headers=network["coordinator"].headers)
    assert package.status_code == 200
    assert package.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        names = set(archive.namelist())
        descriptor = json.loads(archive.read("datapackage.json"))
        services = list(csv.DictReader(io.StringIO(archive.read("services.csv").decode())))
        addresses = list(csv.DictReader(io.StringIO(archive.read("addresses.csv").decode())))
    assert {
        "datapackage.json",
        "organizations.csv",
        "services.csv",
        "service_at_location.csv",
        "locations.csv",
    } <= names
    assert {r["path"] for r in descriptor["resources"]} == names - {"datapackage.json"}
    assert {s["name"] for s in services} == {"Maison Alpha", "Bravo House"}
    assert {(a["city"], a["address_1"], a["postal_code"]) for a in addresses} == {
        ("Montréal", "", ""),
        ("Toronto", "", ""),
    }
