"""Availability in EDXL-HAVE 2.0 (issue 14): well-formed, parsed back, its counts equal the board's; confidential
facilities only as their city's sums; any user with a token, nobody without."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from xml.etree import ElementTree as ET

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.directory_models import DirectoryListing
from beds.models import BedPool, Facility, FacilityKind, Profile
from beds.timeutil import utcnow
from tests.conftest import Network

NS = {"have": "urn:oasis:names:tc:emergency:edxl:have:2.0"}


def parse(xml: bytes) -> dict[str, dict[str, dict[str, int]]]:
    """{facility name: {bed type: {available, baseline, surge}}}, read back with a parser."""
    root = ET.fromstring(xml)
    assert root.tag == "{urn:oasis:names:tc:emergency:edxl:have:2.0}HAVE"
    sites: dict[str, dict[str, dict[str, int]]] = {}
    for facility in root.findall("have:facility", NS):
        name = facility.findtext("have:facilityInformation/have:facilityName", namespaces=NS)
        beds = {}
        for bed in facility.findall("have:bedCapacityList/have:bedCapacity", NS):
            capacity = bed.find("have:capacity", NS)
            beds[bed.findtext("have:bedType", namespaces=NS)] = {
                "available": int(capacity.findtext("have:availableCount", namespaces=NS)),
                "baseline": int(capacity.findtext("have:baselineCount", namespaces=NS)),
                "surge": int(capacity.findtext("have:additionalCapacityCount", namespaces=NS)),
            }
        sites[name] = beds
    return sites


async def board_by_city(client: AsyncTestClient, headers: dict[str, str]) -> dict[str, dict[str, int]]:
    free: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for facility in (await client.get("/api/v1/facilities", headers=headers)).json():
        for pool in facility["pools"]:
            free[f"{facility['city']}, {facility['province']}"][pool["profile"]] += pool["free"]
    return {city: dict(profiles) for city, profiles in free.items()}


async def test_the_document_parses_and_its_counts_equal_the_board(client: AsyncTestClient, network: Network) -> None:
    h = network["police"].headers
    answer = await client.get("/api/v1/edxl/have", headers=h)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/emergency+xml")
    sites = parse(answer.content)
    # Both shelters are confidential: each appears as its city, with no name, street or phone.
    assert sites == {
        "Montréal, QC": {
            "family": {"available": 3, "baseline": 3, "surge": 0},
            "women": {"available": 6, "baseline": 10, "surge": 0},
        },
        "Toronto, ON": {"men": {"available": 6, "baseline": 8, "surge": 0}},
    }
    assert {city: {t: c["available"] for t, c in beds.items()} for city, beds in sites.items()} == await board_by_city(
        client, h
    )
    for secret in ("Maison Alpha", "Bravo House", "123 rue Secrète", "77 Hidden Lane", "555-000"):
        assert secret not in answer.text
    # API.md's path answers the same document.
    alias = await client.get("/api/v1/availability.have.xml", headers=h)
    assert parse(alias.content) == sites


async def test_holds_and_surge_beds_move_the_counts(client: AsyncTestClient, network: Network) -> None:
    pool = network.pools["a"].id
    surge = await client.post(
        f"/api/v1/pools/{pool}/surge",
        json={"beds": 4, "expires_at": (utcnow() + timedelta(hours=6)).isoformat(), "reason": "cold night"},
        headers=network["shelter_a"].headers,
    )
    assert surge.status_code == 201, surge.text
    case = await client.post("/api/v1/cases", json={}, headers=network["worker"].headers)
    hold = await client.post(
        "/api/v1/holds",
        json={
            "pool_id": pool,
            "beds": 2,
            "case_code": case.json()["code"],
            "expires_at": (utcnow() + timedelta(hours=2)).isoformat(),
        },
        headers=network["worker"].headers,
    )
    assert hold.status_code == 201, hold.text
    h = network["approver"].headers
    sites = parse((await client.get("/api/v1/edxl/have", headers=h)).content)
    # 10 beds + 4 surge, 4 occupied, 2 held: 8 free; the baseline is the capacity without surge.
    assert sites["Montréal, QC"]["women"] == {"available": 8, "baseline": 10, "surge": 4}
    assert sites["Montréal, QC"]["women"]["available"] == (await board_by_city(client, h))["Montréal, QC"]["women"]


async def test_confidential_facilities_sum_per_city_and_public_ones_stand_alone(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    async with sessionmaker() as session:
        second = Facility(
            organisation_id=network.orgs["shelter_a"].id,
            name="Maison Beta",
            kind=FacilityKind.TRAFFICKING_SHELTER,
            province="QC",
            city="Montréal",
            address="9 rue Cachée",
        )
        hotel = Facility(
            organisation_id=network.orgs["shelter_b"].id,
            name="Hôtel Partenaire",
            kind=FacilityKind.PARTNER_HOTEL,
            province="QC",
            city="Montréal",
            address="400 rue Publique, H2X 1Y4",
        )
        session.add_all([second, hotel])
        await session.flush()
        session.add_all(
            [
                BedPool(facility_id=second.id, profile=Profile.WOMEN, capacity=5, occupied=1),
                BedPool(facility_id=hotel.id, profile=Profile.ANY, capacity=7, occupied=2),
                DirectoryListing(
                    facility_id=hotel.id,
                    service_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0021",
                    location_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0022",
                    service_at_location_id="0d7c1f8e-51f4-4c36-9f3e-1f3b8c6a0023",
                    address_public=True,
                    address_1="400 rue Publique",
                    postal_code="H2X 1Y4",
                ),
            ]
        )
        await session.commit()
    answer = await client.get("/api/v1/edxl/have", headers=network["worker"].headers)
    sites = parse(answer.content)
    assert sites["Montréal, QC"]["women"] == {"available": 6 + 4, "baseline": 15, "surge": 0}
    assert sites["Hôtel Partenaire"] == {"any": {"available": 5, "baseline": 7, "surge": 0}}
    assert "400 rue Publique" in answer.text  # a public address is public
    assert "Maison Beta" not in answer.text and "9 rue Cachée" not in answer.text


async def test_only_with_a_token(client: AsyncTestClient, network: Network) -> None:
    assert (await client.get("/api/v1/edxl/have")).status_code == 401
    bad = await client.get("/api/v1/edxl/have", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
